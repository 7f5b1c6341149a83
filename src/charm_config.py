"""The charm's options, and the reconciler environment they become.

Each option sets the reconciler's environment variable of the same name in upper snake case
(`pod-cpu-limit` sets POD_CPU_LIMIT), except `kafka-credentials`, a Juju secret whose keys set the
three KAFKA_* credential variables, and `locust-image`, the run-test action's default image.
Validation is the reconciler's own (`OperatorConfig.from_env`),
so the charm accepts exactly what the workload accepts; its problems, keyed by variable, are
reported back under the option a user can change. No ops imports: the charm reads the secret and
hands its content in.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.config import SETTINGS, ConfigError, OperatorConfig

HEALTH_PORT = 8081
METRICS_PORT = 8080
# The conversion webhook: the CRD sends the apiserver to this port of the application's Service,
# and every unit pushes the serving certificate and key (tls.crt, tls.key) into this directory.
WEBHOOK_PORT = 9443
WEBHOOK_CERT_DIR = "/etc/locust-operator/webhook"

SECRET_OPTION = "kafka-credentials"
# The image run-test gives a test when its `image` parameter is empty: the charm's own default,
# not a reconciler setting, so it sets no variable.
LOCUST_IMAGE_OPTION = "locust-image"
DEFAULT_LOCUST_IMAGE = "locustio/locust:2.47.0"
CHARM_ONLY_OPTIONS = (LOCUST_IMAGE_OPTION,)
# Secret key -> variable. Juju secret keys are lowercase with dashes, hence not the variable names.
SECRET_KEYS = {
    "username": "KAFKA_USERNAME",
    "password": "KAFKA_PASSWORD",
    "sasl-jaas-config": "KAFKA_SASL_JAAS_CONFIG",
}
REQUIRED_SECRET_KEYS = ("username", "password")

# Set by the charm from the model, never by a user: one Lease per application elects the active
# reconciler among the units, the ports are the ones the Pebble checks, set_ports and the CRD's
# conversion webhook use, and the certificate directory is where the charm pushes the certificate.
FIXED_VARIABLES = (
    "LEADER_ELECTION",
    "LEASE_NAME",
    "LEASE_NAMESPACE",
    "HEALTH_PORT",
    "METRICS_PORT",
    "ENABLE_WEBHOOKS",
    "WEBHOOK_PORT",
    "WEBHOOK_CERT_DIR",
)

# Read by the reconciler but deliberately not options: their defaults suit every deployment, the
# Lease timings must stay consistent with each other across units, the pod health grace period
# (upstream's fixed two minutes) is a knob for tests, not for users, and results go through the
# pod proxy, which works whatever network policies the cluster has.
NOT_OPTIONS = (
    "MAX_CONCURRENT_RECONCILES",
    "LEASE_DURATION_SECONDS",
    "LEASE_RENEW_DEADLINE_SECONDS",
    "LEASE_RETRY_PERIOD_SECONDS",
    "POD_HEALTH_GRACE_SECONDS",
    "RESULTS_VIA",
)


class InvalidConfigError(ValueError):
    """Some options are invalid; `problems` maps each option name to a one-line reason."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(problems.values()))

    def status_message(self) -> str:
        """A short status line: the first problem in full, then the other options by name."""
        first, *others = self.problems
        message = f"invalid config: {self.problems[first]}"
        if others:
            message += f" (also invalid: {', '.join(others)})"
        return message


@dataclass(frozen=True, kw_only=True)
class CharmConfig:
    """The options in config.yaml, loaded with `CharmBase.load_config` (dashes become underscores).

    Defaults repeat config.yaml's so the class can be built without Juju (in tests); the values
    themselves are checked by the reconciler, see `operator_env`.
    """

    pod_cpu_request: str = "250m"
    pod_mem_request: str = "128Mi"
    pod_ephemeral_request: str = "30M"
    pod_cpu_limit: str = "1000m"
    pod_mem_limit: str = "1024Mi"
    pod_ephemeral_limit: str = "50M"
    # Per-role overrides: empty falls back, field by field, to the pod-* value.
    master_pod_cpu_request: str = ""
    master_pod_mem_request: str = ""
    master_pod_ephemeral_request: str = ""
    master_pod_cpu_limit: str = ""
    master_pod_mem_limit: str = ""
    master_pod_ephemeral_limit: str = ""
    worker_pod_cpu_request: str = ""
    worker_pod_mem_request: str = ""
    worker_pod_ephemeral_request: str = ""
    worker_pod_cpu_limit: str = ""
    worker_pod_mem_limit: str = ""
    worker_pod_ephemeral_limit: str = ""
    # Empty: Locust pods get no runtime class unless their LocustTest names one.
    default_runtime_class_name: str = ""
    metrics_exporter_image: str = "containersol/locust_exporter:v0.5.0"
    metrics_exporter_port: int = 9646
    metrics_exporter_image_pull_policy: str = "IfNotPresent"
    metrics_exporter_cpu_request: str = "100m"
    metrics_exporter_mem_request: str = "64Mi"
    metrics_exporter_ephemeral_request: str = "30M"
    metrics_exporter_cpu_limit: str = "250m"
    metrics_exporter_mem_limit: str = "128Mi"
    metrics_exporter_ephemeral_limit: str = "50M"
    # No default: unset means "no TTL", and the variable is left out.
    job_ttl_seconds_after_finished: int | None = None
    enable_affinity_cr_injection: bool = False
    enable_taint_tolerations_cr_injection: bool = False
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_enabled: bool = False
    kafka_security_protocol_config: str = "SASL_PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    # An ops.Secret when set; the charm reads it (see LocustOperatorCharm._kafka_credentials).
    kafka_credentials: Any = None
    log_level: str = "info"
    watch_namespaces: str = ""
    results_interval_seconds: int = 10
    locust_image: str = DEFAULT_LOCUST_IMAGE

    def plain_options(self) -> dict[str, Any]:
        """Every option that sets a variable, except the secret, by option name."""
        skipped = {SECRET_OPTION, *CHARM_ONLY_OPTIONS}
        return {
            field.name.replace("_", "-"): getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.name.replace("_", "-") not in skipped
        }


def variable_for(option: str) -> str:
    """The environment variable an option sets: `pod-cpu-limit` -> POD_CPU_LIMIT."""
    return option.replace("-", "_").upper()


# A variable the reconciler names in a reason (`POD_CPU_REQUEST="2" is more than ...`).
_VARIABLE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")


def _option_named(variable: str) -> str:
    return (
        option_for(variable)
        if variable in SETTINGS and variable not in FIXED_VARIABLES
        else variable
    )


def option_for(variable: str) -> str:
    """The option a user changes to fix a variable: POD_CPU_LIMIT -> pod-cpu-limit."""
    if variable in SECRET_KEYS.values():
        return SECRET_OPTION
    return variable.lower().replace("_", "-")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def operator_env(
    config: CharmConfig,
    credentials: Mapping[str, str] | None,
    *,
    app: str,
    namespace: str,
) -> dict[str, str]:
    """The reconciler's environment: one variable per option, plus the ones the charm fixes.

    An empty option stays an empty variable: for pod-* and metrics-exporter-* resources the
    reconciler then omits that request or limit, for master-pod-* and worker-pod-* it falls back to
    the pod-* value. An unset TTL or secret leaves its variables out.
    """
    env = {
        variable_for(option): _env_value(value)
        for option, value in config.plain_options().items()
        if value is not None
    }
    for key, variable in SECRET_KEYS.items():
        if credentials is not None and key in credentials:
            env[variable] = credentials[key]
    env.update(
        LEADER_ELECTION="true",
        LEASE_NAME=app,
        LEASE_NAMESPACE=namespace,
        HEALTH_PORT=str(HEALTH_PORT),
        METRICS_PORT=str(METRICS_PORT),
        ENABLE_WEBHOOKS="true",
        WEBHOOK_PORT=str(WEBHOOK_PORT),
        WEBHOOK_CERT_DIR=WEBHOOK_CERT_DIR,
    )
    return env


@dataclass(frozen=True)
class WorkloadConfig:
    """A validated configuration: the reconciler's environment and what it will make of it."""

    env: dict[str, str] = dataclasses.field(repr=False)  # holds the Kafka credentials
    operator: OperatorConfig


def load(
    config: CharmConfig,
    *,
    app: str,
    namespace: str,
    read_credentials: Callable[[Any], Mapping[str, str]] | None = None,
) -> WorkloadConfig:
    """Build and validate the reconciler's environment.

    `read_credentials` turns the `kafka-credentials` secret into its content, raising
    InvalidConfigError if it cannot. Raises InvalidConfigError listing every invalid option.
    """
    problems: dict[str, str] = {}
    credentials = None
    if config.kafka_credentials is not None and read_credentials is not None:
        try:
            credentials = read_credentials(config.kafka_credentials)
            check_credentials(credentials)
        except InvalidConfigError as error:
            problems, credentials = error.problems, None
    env = operator_env(config, credentials, app=app, namespace=namespace)
    try:
        operator = validate(env)
    except InvalidConfigError as error:
        raise InvalidConfigError(error.problems | problems) from None
    if problems:
        raise InvalidConfigError(problems)
    return WorkloadConfig(env=env, operator=operator)


def check_credentials(content: Mapping[str, str]) -> None:
    """Raise InvalidConfigError if the Kafka secret lacks a required key (values never shown)."""
    missing = [key for key in REQUIRED_SECRET_KEYS if not content.get(key)]
    if missing:
        raise InvalidConfigError(
            {SECRET_OPTION: f"{SECRET_OPTION}: the secret has no {' or '.join(missing)} key"}
        )


def validate(env: Mapping[str, str]) -> OperatorConfig:
    """Check the environment exactly as the reconciler will at startup.

    Raises InvalidConfigError naming options, not variables, since options are what users set.
    """
    try:
        return OperatorConfig.from_env(env)
    except ConfigError as error:
        problems: dict[str, str] = {}
        for variable, reason in error.problems.items():
            option = option_for(variable)
            if variable in FIXED_VARIABLES:
                option, reason = variable, f"{reason} (set by the charm: please report a bug)"
            elif option == SECRET_OPTION:
                # The reason may quote the value: never let a credential reach a status or log.
                key = next(k for k, v in SECRET_KEYS.items() if v == variable)
                reason = f"{SECRET_OPTION}: invalid {key} (value not shown)"
            else:
                named = _VARIABLE.sub(lambda m: _option_named(m[0]), reason)
                reason = named if named.startswith(option) else f"{option}: {named}"
            problems.setdefault(option, reason)
        raise InvalidConfigError(problems) from None
