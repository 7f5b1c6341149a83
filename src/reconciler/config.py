"""Operator settings, read once from environment variables and validated at startup.

The variable names are upstream's (POD_CPU_REQUEST, METRICS_EXPORTER_IMAGE, KAFKA_*, ...) so that
an existing deployment's environment carries over; LOG_LEVEL, WATCH_NAMESPACES, the health and
metrics ports, the leader-election settings and POD_HEALTH_GRACE_SECONDS are ours. Three rules
decide what an empty value means:

* a resource quantity set to "" is omitted from the pods (no request or limit), as upstream
  documents;
* a per-role quantity (MASTER_POD_*, WORKER_POD_*) set to "" falls back to the unified POD_* value,
  as upstream: the role settings refine the unified ones, they cannot remove a request or limit;
* any other empty value means "use the default", so a blank line in a manifest never breaks the
  operator.

Every invalid value is reported at once, naming the variable and the value, so a user fixes them
all in one go instead of one restart at a time.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .api.syntax import dns1123_problem, is_dns1123_label, is_quantity, quantity_value

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# What Go's strconv.Atoi accepts: Python's int() would also take "1_000" and non-ASCII digits.
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
# The forms Go's strconv.ParseBool accepts, so values that worked upstream keep working.
_TRUE = {"1", "t", "true"}
_FALSE = {"0", "f", "false"}
# Where controller-runtime operators (upstream's included) look for their webhook certificate.
DEFAULT_WEBHOOK_CERT_DIR = "/tmp/k8s-webhook-server/serving-certs"
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
RESULTS_VIA = ("proxy", "pod-ip")
_Default = TypeVar("_Default", str, None)


class ConfigError(ValueError):
    """One or more settings are invalid; `problems` maps each variable to its reason."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        lines = "\n".join(f"  - {reason}" for reason in problems.values())
        super().__init__(f"invalid operator configuration:\n{lines}")


@dataclass(frozen=True)
class ResourceSettings:
    """Requests and limits for one container; an empty string leaves that key out."""

    cpu_request: str
    mem_request: str
    ephemeral_request: str
    cpu_limit: str
    mem_limit: str
    ephemeral_limit: str

    def requirements(self) -> dict[str, dict[str, str]]:
        """The container's `resources` field, leaving out empty entries."""
        requests = {
            "cpu": self.cpu_request,
            "memory": self.mem_request,
            "ephemeral-storage": self.ephemeral_request,
        }
        limits = {
            "cpu": self.cpu_limit,
            "memory": self.mem_limit,
            "ephemeral-storage": self.ephemeral_limit,
        }
        result = {}
        for key, values in (("requests", requests), ("limits", limits)):
            present = {name: value for name, value in values.items() if value}
            if present:
                result[key] = present
        return result


@dataclass(frozen=True)
class ExporterSettings:
    """The Prometheus metrics exporter that runs beside the Locust master."""

    image: str
    port: int
    pull_policy: str
    resources: ResourceSettings


@dataclass(frozen=True)
class KafkaSettings:
    """Kafka connection settings, passed to every Locust container (for tests that use Kafka)."""

    bootstrap_servers: str
    security_enabled: bool
    security_protocol: str
    sasl_mechanism: str
    sasl_jaas_config: str = field(repr=False)
    username: str = field(repr=False)
    password: str = field(repr=False)

    def env(self) -> list[tuple[str, str]]:
        """The seven KAFKA_* variables, in upstream's order."""
        return [
            ("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap_servers),
            ("KAFKA_SECURITY_ENABLED", "true" if self.security_enabled else "false"),
            ("KAFKA_SECURITY_PROTOCOL_CONFIG", self.security_protocol),
            ("KAFKA_SASL_MECHANISM", self.sasl_mechanism),
            ("KAFKA_SASL_JAAS_CONFIG", self.sasl_jaas_config),
            ("KAFKA_USERNAME", self.username),
            ("KAFKA_PASSWORD", self.password),
        ]


@dataclass(frozen=True)
class LeaderElectionSettings:
    """A coordination.k8s.io Lease elects one active reconciler among several replicas."""

    enabled: bool
    lease_name: str
    lease_namespace: str
    lease_duration_seconds: float
    renew_deadline_seconds: float
    retry_period_seconds: float


@dataclass(frozen=True)
class OperatorConfig:
    """Everything the operator reads from its environment."""

    # The unified POD_* settings, and what each role gets once its own settings are applied.
    pod_resources: ResourceSettings
    master_pod_resources: ResourceSettings
    worker_pod_resources: ResourceSettings
    metrics_exporter: ExporterSettings
    job_ttl_seconds_after_finished: int | None
    affinity_injection: bool
    tolerations_injection: bool
    kafka: KafkaSettings
    # For pods whose test names none; None leaves runtimeClassName unset.
    default_runtime_class_name: str | None
    # The HTTPS endpoint serving the CRD's conversion webhook, its certificate in tls.crt/tls.key.
    enable_webhooks: bool
    webhook_port: int
    webhook_cert_dir: Path
    # How long pods may look unhealthy (pulling, crash-looping) before the test is marked Failed.
    pod_health_grace_seconds: int
    # How often each running test's master is asked for its numbers, and how: through the API
    # server's pod proxy (works from anywhere) or at the pod IP (in the cluster only).
    results_interval_seconds: float = 10.0
    results_via: str = "proxy"
    log_level: str = "INFO"
    watch_namespaces: tuple[str, ...] = ()
    health_port: int = 8081
    metrics_port: int = 8080
    max_concurrent_reconciles: int = 16
    leader_election: LeaderElectionSettings = field(
        default_factory=lambda: LeaderElectionSettings(
            False, "locust-operator", "default", 15, 10, 2
        )
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorConfig:
        """Read and validate every setting; raise ConfigError listing all invalid ones."""
        reader = _Reader(os.environ if env is None else env)
        config = cls._read(reader)
        if reader.problems:
            raise ConfigError(reader.problems)
        return config

    @classmethod
    def _read(cls, reader: _Reader) -> OperatorConfig:
        """Every setting, with defaults in place of invalid values (which `reader` records)."""
        pod_resources = reader.resources("POD", POD_RESOURCE_DEFAULTS)
        config = cls(
            pod_resources=pod_resources,
            master_pod_resources=reader.resources("MASTER_POD", pod_resources, fallback="POD"),
            worker_pod_resources=reader.resources("WORKER_POD", pod_resources, fallback="POD"),
            metrics_exporter=ExporterSettings(
                image=reader.text("METRICS_EXPORTER_IMAGE", "containersol/locust_exporter:v0.5.0"),
                port=reader.integer("METRICS_EXPORTER_PORT", 9646, minimum=1, maximum=65535),
                pull_policy=reader.choice(
                    "METRICS_EXPORTER_IMAGE_PULL_POLICY", "IfNotPresent", PULL_POLICIES
                ),
                resources=reader.resources("METRICS_EXPORTER", EXPORTER_RESOURCE_DEFAULTS),
            ),
            job_ttl_seconds_after_finished=reader.optional_integer(
                "JOB_TTL_SECONDS_AFTER_FINISHED", minimum=0
            ),
            affinity_injection=reader.boolean("ENABLE_AFFINITY_CR_INJECTION", False),
            tolerations_injection=reader.boolean("ENABLE_TAINT_TOLERATIONS_CR_INJECTION", False),
            kafka=KafkaSettings(
                bootstrap_servers=reader.text("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
                security_enabled=reader.boolean("KAFKA_SECURITY_ENABLED", False),
                security_protocol=reader.text("KAFKA_SECURITY_PROTOCOL_CONFIG", "SASL_PLAINTEXT"),
                sasl_mechanism=reader.text("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
                sasl_jaas_config=reader.text("KAFKA_SASL_JAAS_CONFIG", ""),
                username=reader.text("KAFKA_USERNAME", ""),
                password=reader.text("KAFKA_PASSWORD", ""),
            ),
            default_runtime_class_name=reader.name(
                "DEFAULT_RUNTIME_CLASS_NAME", None, what="RuntimeClass name"
            ),
            enable_webhooks=reader.boolean("ENABLE_WEBHOOKS", False),
            webhook_port=reader.integer("WEBHOOK_PORT", 9443, minimum=1, maximum=65535),
            webhook_cert_dir=Path(reader.text("WEBHOOK_CERT_DIR", DEFAULT_WEBHOOK_CERT_DIR)),
            pod_health_grace_seconds=reader.integer("POD_HEALTH_GRACE_SECONDS", 120, minimum=0),
            results_interval_seconds=reader.number("RESULTS_INTERVAL_SECONDS", 10.0),
            results_via=reader.choice("RESULTS_VIA", "proxy", RESULTS_VIA),
            log_level=reader.choice("LOG_LEVEL", "INFO", LOG_LEVELS, normalise=str.upper),
            watch_namespaces=reader.namespaces("WATCH_NAMESPACES"),
            health_port=reader.integer("HEALTH_PORT", 8081, minimum=0, maximum=65535),
            metrics_port=reader.integer("METRICS_PORT", 8080, minimum=0, maximum=65535),
            max_concurrent_reconciles=reader.integer(
                "MAX_CONCURRENT_RECONCILES", 16, minimum=1, maximum=1000
            ),
            leader_election=LeaderElectionSettings(
                enabled=reader.boolean("LEADER_ELECTION", False),
                lease_name=reader.name("LEASE_NAME", "locust-operator", what="Lease name"),
                lease_namespace=reader.name(
                    "LEASE_NAMESPACE", _own_namespace(), what="namespace name", label=True
                ),
                lease_duration_seconds=reader.number("LEASE_DURATION_SECONDS", 15.0),
                renew_deadline_seconds=reader.number("LEASE_RENEW_DEADLINE_SECONDS", 10.0),
                retry_period_seconds=reader.number("LEASE_RETRY_PERIOD_SECONDS", 2.0),
            ),
        )
        election = config.leader_election
        if not election.retry_period_seconds < election.renew_deadline_seconds:
            reader.problem("LEASE_RETRY_PERIOD_SECONDS", "must be less than the renew deadline")
        if not election.renew_deadline_seconds < election.lease_duration_seconds:
            reader.problem("LEASE_RENEW_DEADLINE_SECONDS", "must be less than the lease duration")
        return config

    def summary(self) -> dict[str, Any]:
        """The settings worth a startup log line (no secrets)."""
        return {
            "ttlSecondsAfterFinished": self.job_ttl_seconds_after_finished,
            "metricsExporterImage": self.metrics_exporter.image,
            "affinityInjection": self.affinity_injection,
            "tolerationsInjection": self.tolerations_injection,
            "defaultRuntimeClassName": self.default_runtime_class_name,
            "webhooks": self.enable_webhooks,
            "watchNamespaces": list(self.watch_namespaces) or "all",
            "leaderElection": self.leader_election.enabled,
            "resultsIntervalSeconds": self.results_interval_seconds,
        }


POD_RESOURCE_DEFAULTS = ResourceSettings("250m", "128Mi", "30M", "1000m", "1024Mi", "50M")
# A sidecar that scrapes one HTTP endpoint needs far less than Locust itself.
EXPORTER_RESOURCE_DEFAULTS = ResourceSettings("100m", "64Mi", "30M", "250m", "128Mi", "50M")

# Variable suffix for each ResourceSettings field, e.g. POD_CPU_REQUEST.
RESOURCE_SUFFIXES = {
    "cpu_request": "CPU_REQUEST",
    "mem_request": "MEM_REQUEST",
    "ephemeral_request": "EPHEMERAL_REQUEST",
    "cpu_limit": "CPU_LIMIT",
    "mem_limit": "MEM_LIMIT",
    "ephemeral_limit": "EPHEMERAL_LIMIT",
}


def _parse_int(raw: str) -> int:
    if not _INTEGER.match(raw):
        raise ValueError(raw)
    return int(raw)


def _parse_finite(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):  # float() takes "nan" and "inf", which no duration can be
        raise ValueError(raw)
    return value


def _own_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


class _Reader:
    """Reads typed values from an environment, collecting problems rather than stopping at one.

    `read` records every variable looked up, which is how SETTINGS lists them all.
    """

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: dict[str, str] = {}
        self.read: dict[str, None] = {}  # insertion-ordered set
        # The variable each resource setting took its value from, and whether that variable
        # was unset (so the value is its built-in default).
        self.origins: dict[str, tuple[str, bool]] = {}

    def problem(self, name: str, reason: str, value: str | None = None) -> None:
        shown = f'{name}="{value}"' if value is not None else name
        self.problems[name] = f"{shown}: {reason}"

    def _value(self, name: str) -> str | None:
        self.read[name] = None
        return self.env.get(name)

    def _raw(self, name: str) -> str | None:
        value = self._value(name)
        return value.strip() if value is not None and value.strip() else None

    def text(self, name: str, default: str) -> str:
        # Blank means default, but a set value is kept verbatim: a password may end in a space.
        value = self._value(name)
        return value if value is not None and value.strip() else default

    def _parsed(self, name: str, default: Any, parse: Callable[[str], Any], reason: str) -> Any:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            return parse(raw)
        except ValueError:
            self.problem(name, reason, raw)
            return default

    def boolean(self, name: str, default: bool) -> bool:
        def parse(raw: str) -> bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError(raw)

        return self._parsed(name, default, parse, "not a boolean (use true or false)")

    def integer(self, name: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self._parsed(name, default, _parse_int, "not an integer")
        if maximum is None and value < minimum:
            self.problem(name, f"must be at least {minimum}", str(value))
        elif maximum is not None and not minimum <= value <= maximum:
            self.problem(name, f"must be between {minimum} and {maximum}", str(value))
        else:
            return value
        return default

    def optional_integer(self, name: str, *, minimum: int) -> int | None:
        value = self._parsed(name, None, _parse_int, "not an integer")
        if value is not None and value < minimum:
            self.problem(name, f"must be at least {minimum}", str(value))
            return None
        return value

    def number(self, name: str, default: float) -> float:
        value = self._parsed(name, default, _parse_finite, "not a number")
        if value <= 0:
            self.problem(name, "must be greater than 0", str(value))
            return default
        return value

    def choice(
        self,
        name: str,
        default: str,
        choices: tuple[str, ...],
        *,
        normalise: Callable[[str], str] = str,
    ) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if normalise(raw) in choices:
            return normalise(raw)
        self.problem(name, f"must be one of {', '.join(choices)}", raw)
        return default

    def name(
        self, name: str, default: _Default, *, what: str, label: bool = False
    ) -> str | _Default:
        """An object name: an RFC 1123 subdomain, or a label (`label=True`) such as a namespace."""
        raw = self._raw(name)
        if raw is None:
            return default
        problem = dns1123_problem(raw, label=label)
        if problem is not None:
            self.problem(name, f"not a valid {what}: {problem}", raw)
            return default
        return raw

    def namespaces(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        found = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
        invalid = [ns for ns in found if not is_dns1123_label(ns)]
        if invalid:
            self.problem(name, f"not a valid namespace name: {', '.join(invalid)}", raw)
            return ()
        return found

    def resources(
        self,
        prefix: str,
        defaults: ResourceSettings,
        *,
        fallback: str | None = None,
    ) -> ResourceSettings:
        """Six quantities. Without `fallback`, an unset one takes its default and a blank one is
        left out; with it (the prefix of the settings `defaults` holds), unset or blank takes
        that setting's value. A request above its limit is a problem naming both variables."""
        values = {}
        for attr, suffix in RESOURCE_SUFFIXES.items():
            var = f"{prefix}_{suffix}"
            value = self._value(var)
            self.origins[var] = (var, False)
            if value is None or (fallback and not value.strip()):
                values[attr] = getattr(defaults, attr)
                self.origins[var] = (
                    self.origins[f"{fallback}_{suffix}"] if fallback else (var, True)
                )
            elif not value.strip():
                values[attr] = ""
            elif is_quantity(value.strip()):
                values[attr] = value.strip()
            else:
                self.problem(
                    var, "not a valid Kubernetes quantity (e.g. 500m, 1, 256Mi, 1Gi)", value
                )
                values[attr] = getattr(defaults, attr)
        settings = ResourceSettings(**values)
        self._check_limits(prefix, settings)
        return settings

    def _check_limits(self, prefix: str, settings: ResourceSettings) -> None:
        """A request above its limit is a problem naming the two variables the values came from."""
        for resource in ("CPU", "MEM", "EPHEMERAL"):
            request = getattr(settings, f"{resource.lower()}_request")
            limit = getattr(settings, f"{resource.lower()}_limit")
            if not (request and limit) or quantity_value(request) <= quantity_value(limit):
                continue
            origins = [
                (*self.origins[f"{prefix}_{resource}_{kind}"], value)
                for kind, value in (("REQUEST", request), ("LIMIT", limit))
            ]
            if any(var in self.problems for var, _, _ in origins):
                continue  # an invalid quantity, already reported
            shown = [
                f'{var}="{value}"{" (default)" if default else ""}'
                for var, default, value in origins
            ]
            blamed = next((var for var, default, _ in origins if not default), origins[0][0])
            self.problems.setdefault(
                blamed, f"{shown[0]} is more than {shown[1]}: a request may not exceed its limit"
            )


def _settings() -> tuple[str, ...]:
    reader = _Reader({})
    OperatorConfig._read(reader)
    return tuple(reader.read)


# Every environment variable the operator reads, in the order it reads them.
SETTINGS = _settings()
