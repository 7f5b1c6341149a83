"""Operator settings from environment variables: upstream's names and defaults, checked early."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler.api.syntax import DNS1123_SUBDOMAIN_RULE
from reconciler.config import (
    SETTINGS,
    ConfigError,
    ExporterSettings,
    KafkaSettings,
    OperatorConfig,
    ResourceSettings,
)

DEFAULT_EXPORTER_IMAGE = "containersol/locust_exporter:v0.5.0"
RESOURCE_NAMES = {"CPU": "cpu", "MEM": "memory", "EPHEMERAL": "ephemeral-storage"}
BOUNDS = {"REQUEST": "requests", "LIMIT": "limits"}
# (variable, its container, its section of `resources`, its key there), for all twelve variables.
RESOURCE_VARS = [
    (f"{prefix}_{kind}_{bound}", prefix, BOUNDS[bound], RESOURCE_NAMES[kind])
    for prefix in ("POD", "METRICS_EXPORTER")
    for kind in RESOURCE_NAMES
    for bound in BOUNDS
]


def test_defaults_are_upstreams_with_the_designed_exporter_defaults():
    config = OperatorConfig.from_env({})

    assert config.pod_resources == ResourceSettings(
        cpu_request="250m",
        mem_request="128Mi",
        ephemeral_request="30M",
        cpu_limit="1000m",
        mem_limit="1024Mi",
        ephemeral_limit="50M",
    )
    assert config.metrics_exporter == ExporterSettings(
        image=DEFAULT_EXPORTER_IMAGE,
        port=9646,
        pull_policy="IfNotPresent",
        resources=ResourceSettings("100m", "64Mi", "30M", "250m", "128Mi", "50M"),
    )
    assert config.job_ttl_seconds_after_finished is None
    assert config.affinity_injection is False
    assert config.tolerations_injection is False
    assert config.kafka.env() == [
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        ("KAFKA_SECURITY_ENABLED", "false"),
        ("KAFKA_SECURITY_PROTOCOL_CONFIG", "SASL_PLAINTEXT"),
        ("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512"),
        ("KAFKA_SASL_JAAS_CONFIG", ""),
        ("KAFKA_USERNAME", ""),
        ("KAFKA_PASSWORD", ""),
    ]


def test_runtime_defaults():
    config = OperatorConfig.from_env({})

    assert config.log_level == "INFO"
    assert config.watch_namespaces == ()
    assert (config.health_port, config.metrics_port) == (8081, 8080)
    assert config.leader_election.enabled is False
    assert config.leader_election.lease_name == "locust-operator"


def test_every_upstream_variable_overrides_its_setting():
    config = OperatorConfig.from_env(
        {
            "POD_CPU_REQUEST": "500m",
            "POD_MEM_REQUEST": "256Mi",
            "POD_EPHEMERAL_REQUEST": "1Gi",
            "POD_CPU_LIMIT": "2",
            "POD_MEM_LIMIT": "2Gi",
            "POD_EPHEMERAL_LIMIT": "2Gi",
            "METRICS_EXPORTER_IMAGE": "registry.local/exporter:1.0",
            "METRICS_EXPORTER_PORT": "9100",
            "METRICS_EXPORTER_IMAGE_PULL_POLICY": "Always",
            "METRICS_EXPORTER_CPU_REQUEST": "50m",
            "METRICS_EXPORTER_MEM_LIMIT": "96Mi",
            "JOB_TTL_SECONDS_AFTER_FINISHED": "3600",
            "ENABLE_AFFINITY_CR_INJECTION": "true",
            "ENABLE_TAINT_TOLERATIONS_CR_INJECTION": "true",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka:9093",
            "KAFKA_SECURITY_ENABLED": "true",
            "KAFKA_SECURITY_PROTOCOL_CONFIG": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_JAAS_CONFIG": "org.apache.kafka...;",
            "KAFKA_USERNAME": "locust",
            "KAFKA_PASSWORD": "s3cret",
        }
    )

    assert config.pod_resources == ResourceSettings("500m", "256Mi", "1Gi", "2", "2Gi", "2Gi")
    assert config.metrics_exporter == ExporterSettings(
        image="registry.local/exporter:1.0",
        port=9100,
        pull_policy="Always",
        resources=ResourceSettings("50m", "64Mi", "30M", "250m", "96Mi", "50M"),
    )
    assert config.job_ttl_seconds_after_finished == 3600
    assert config.affinity_injection and config.tolerations_injection
    assert config.kafka == KafkaSettings(
        "kafka:9093", True, "SASL_SSL", "PLAIN", "org.apache.kafka...;", "locust", "s3cret"
    )


def test_runtime_variables_override_their_settings():
    config = OperatorConfig.from_env(
        {
            "LOG_LEVEL": "debug",
            "WATCH_NAMESPACES": "team-a, team-b,team-a",
            "HEALTH_PORT": "9081",
            "METRICS_PORT": "9080",
            "LEADER_ELECTION": "true",
            "LEASE_NAME": "locust",
            "LEASE_NAMESPACE": "ops",
        }
    )

    assert config.log_level == "DEBUG"
    assert config.watch_namespaces == ("team-a", "team-b")
    assert (config.health_port, config.metrics_port) == (9081, 9080)
    election = config.leader_election
    assert election.enabled
    assert (election.lease_name, election.lease_namespace) == ("locust", "ops")


def test_ttl_zero_is_a_ttl():
    config = OperatorConfig.from_env({"JOB_TTL_SECONDS_AFTER_FINISHED": "0"})

    assert config.job_ttl_seconds_after_finished == 0


@pytest.mark.parametrize(("var", "container", "section", "key"), RESOURCE_VARS)
def test_an_empty_resource_setting_is_left_out(var: str, container: str, section: str, key: str):
    config = OperatorConfig.from_env({var: ""})
    settings = config.pod_resources if container == "POD" else config.metrics_exporter.resources

    requirements = settings.requirements()

    assert key not in requirements[section]
    assert len(requirements[section]) == 2


def test_all_resource_settings_empty_give_no_requirements():
    config = OperatorConfig.from_env({var: "" for var, *_ in RESOURCE_VARS})

    assert config.pod_resources.requirements() == {}
    assert config.metrics_exporter.resources.requirements() == {}


@pytest.mark.parametrize(
    ("var", "attribute", "default"),
    [
        ("METRICS_EXPORTER_IMAGE", lambda c: c.metrics_exporter.image, DEFAULT_EXPORTER_IMAGE),
        ("METRICS_EXPORTER_PORT", lambda c: c.metrics_exporter.port, 9646),
        (
            "METRICS_EXPORTER_IMAGE_PULL_POLICY",
            lambda c: c.metrics_exporter.pull_policy,
            "IfNotPresent",
        ),
        ("JOB_TTL_SECONDS_AFTER_FINISHED", lambda c: c.job_ttl_seconds_after_finished, None),
        ("ENABLE_AFFINITY_CR_INJECTION", lambda c: c.affinity_injection, False),
        ("KAFKA_BOOTSTRAP_SERVERS", lambda c: c.kafka.bootstrap_servers, "localhost:9092"),
        ("KAFKA_SECURITY_ENABLED", lambda c: c.kafka.security_enabled, False),
        ("LOG_LEVEL", lambda c: c.log_level, "INFO"),
    ],
)
def test_an_empty_non_resource_setting_means_the_default(var, attribute, default):
    for empty in ("", "   "):
        assert attribute(OperatorConfig.from_env({var: empty})) == default


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("POD_CPU_LIMIT", "1.5 Gi"),
        ("POD_MEM_REQUEST", "10MB"),
        ("METRICS_EXPORTER_EPHEMERAL_LIMIT", "lots"),
        ("JOB_TTL_SECONDS_AFTER_FINISHED", "soon"),
        ("JOB_TTL_SECONDS_AFTER_FINISHED", "1.5"),
        ("JOB_TTL_SECONDS_AFTER_FINISHED", "-1"),
        ("JOB_TTL_SECONDS_AFTER_FINISHED", "1_000"),
        ("ENABLE_AFFINITY_CR_INJECTION", "yes"),
        ("ENABLE_TAINT_TOLERATIONS_CR_INJECTION", "on"),
        ("KAFKA_SECURITY_ENABLED", "enabled"),
        ("METRICS_EXPORTER_IMAGE_PULL_POLICY", "always"),
        ("METRICS_EXPORTER_PORT", "http"),
        ("METRICS_EXPORTER_PORT", "0"),
        ("METRICS_EXPORTER_PORT", "70000"),
        ("HEALTH_PORT", "-1"),
        ("LOG_LEVEL", "verbose"),
        ("WATCH_NAMESPACES", "team-a,Team_B"),
        ("LEASE_NAMESPACE", "Ops"),
        ("LEASE_DURATION_SECONDS", "inf"),
    ],
)
def test_an_invalid_value_is_reported_with_its_variable_and_value(var: str, value: str):
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env({var: value})

    assert list(caught.value.problems) == [var]
    assert f'{var}="{value}"' in str(caught.value)


def test_all_invalid_values_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env(
            {"POD_CPU_LIMIT": "lots", "JOB_TTL_SECONDS_AFTER_FINISHED": "-5", "LOG_LEVEL": "loud"}
        )

    message = str(caught.value)
    assert len(caught.value.problems) == 3
    assert 'POD_CPU_LIMIT="lots"' in message
    assert 'JOB_TTL_SECONDS_AFTER_FINISHED="-5"' in message
    assert 'LOG_LEVEL="loud"' in message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"POD_CPU_REQUEST": "2", "POD_CPU_LIMIT": "1"},
            'POD_CPU_REQUEST="2" is more than POD_CPU_LIMIT="1": a request may not exceed its limit',
        ),
        (
            {"POD_MEM_LIMIT": "64Mi"},
            'POD_MEM_REQUEST="128Mi" (default) is more than POD_MEM_LIMIT="64Mi"',
        ),
        (
            {"POD_EPHEMERAL_REQUEST": "1G", "POD_EPHEMERAL_LIMIT": "500M"},
            'POD_EPHEMERAL_REQUEST="1G" is more than POD_EPHEMERAL_LIMIT="500M"',
        ),
        (
            {"MASTER_POD_CPU_REQUEST": "3"},
            'MASTER_POD_CPU_REQUEST="3" is more than POD_CPU_LIMIT="1000m" (default)',
        ),
        (
            {"POD_CPU_REQUEST": "2", "POD_CPU_LIMIT": "4", "WORKER_POD_CPU_LIMIT": "1"},
            'POD_CPU_REQUEST="2" is more than WORKER_POD_CPU_LIMIT="1"',
        ),
        (
            {"METRICS_EXPORTER_MEM_REQUEST": "1Gi"},
            'METRICS_EXPORTER_MEM_REQUEST="1Gi" is more than METRICS_EXPORTER_MEM_LIMIT="128Mi" '
            "(default)",
        ),
    ],
)
def test_a_request_above_its_limit_names_both_variables(env: dict[str, str], message: str):
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env(env)

    assert len(caught.value.problems) == 1
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "env",
    [
        {"POD_CPU_REQUEST": "500m", "POD_CPU_LIMIT": "0.5"},
        {"POD_CPU_REQUEST": "4", "POD_CPU_LIMIT": ""},  # no limit
        {"POD_MEM_REQUEST": "1Gi", "POD_MEM_LIMIT": "1024Mi"},
    ],
)
def test_a_request_up_to_its_limit_is_fine(env: dict[str, str]):
    OperatorConfig.from_env(env)


def test_lease_timings_must_nest():
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env({"LEASE_RETRY_PERIOD_SECONDS": "20"})

    assert "LEASE_RETRY_PERIOD_SECONDS" in caught.value.problems


@pytest.mark.parametrize(
    "value", ["500m", "1", "0.5", ".5", "1Gi", "128974848", "129e6", "123Mi", "1k"]
)
def test_kubernetes_quantity_forms_are_accepted(value: str):
    config = OperatorConfig.from_env({"POD_CPU_REQUEST": value, "POD_CPU_LIMIT": ""})
    assert config.pod_resources.cpu_request == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [(v, True) for v in ("1", "t", "T", "TRUE", "true", "True")]
    + [(v, False) for v in ("0", "f", "F", "FALSE", "false", "False")],
)
def test_go_parse_bool_forms_are_accepted(value: str, expected: bool):
    config = OperatorConfig.from_env({"ENABLE_AFFINITY_CR_INJECTION": value})

    assert config.affinity_injection is expected


def test_kafka_credentials_stay_out_of_reprs_and_the_startup_summary():
    config = OperatorConfig.from_env(
        {
            "KAFKA_PASSWORD": "hunter2-pw",
            "KAFKA_USERNAME": "kafka-user-x",
            "KAFKA_SASL_JAAS_CONFIG": "jaas-pw",
        }
    )

    for shown in (repr(config), repr(config.kafka), str(config.summary())):
        assert "hunter2-pw" not in shown
        assert "kafka-user-x" not in shown
        assert "jaas-pw" not in shown


# --- v2 settings: per-role resources, runtime class, webhooks, pod health -------------------------

# Variable suffix -> ResourceSettings field.
ROLE_FIELDS = {
    "CPU_REQUEST": "cpu_request",
    "MEM_REQUEST": "mem_request",
    "EPHEMERAL_REQUEST": "ephemeral_request",
    "CPU_LIMIT": "cpu_limit",
    "MEM_LIMIT": "mem_limit",
    "EPHEMERAL_LIMIT": "ephemeral_limit",
}
ROLE_RESOURCE_VARS = [
    (f"{role}_POD_{suffix}", role, attribute)
    for role in ("MASTER", "WORKER")
    for suffix, attribute in ROLE_FIELDS.items()
]


def role_resources(config: OperatorConfig, role: str) -> ResourceSettings:
    return config.master_pod_resources if role == "MASTER" else config.worker_pod_resources


def test_v2_defaults():
    config = OperatorConfig.from_env({})

    assert config.master_pod_resources == config.pod_resources
    assert config.worker_pod_resources == config.pod_resources
    assert config.default_runtime_class_name is None
    assert config.enable_webhooks is False
    assert config.webhook_port == 9443
    assert config.webhook_cert_dir == Path("/tmp/k8s-webhook-server/serving-certs")
    assert config.pod_health_grace_seconds == 120


@pytest.mark.parametrize(("var", "role", "attribute"), ROLE_RESOURCE_VARS)
def test_a_role_setting_overrides_that_field_for_that_role_only(var, role, attribute):
    # Small enough for any request, large enough for any limit.
    value = "1" if attribute.endswith("request") else "7Gi"
    config = OperatorConfig.from_env({var: value})
    other = "WORKER" if role == "MASTER" else "MASTER"

    assert role_resources(config, role) == dataclasses.replace(
        config.pod_resources, **{attribute: value}
    )
    assert role_resources(config, other) == config.pod_resources


def test_role_settings_fall_back_field_by_field_to_the_unified_settings():
    config = OperatorConfig.from_env(
        {
            "POD_CPU_REQUEST": "300m",
            "POD_MEM_LIMIT": "",
            "MASTER_POD_CPU_REQUEST": "900m",
            "MASTER_POD_MEM_REQUEST": "",  # explicitly empty: the unified value, as upstream
            "WORKER_POD_EPHEMERAL_LIMIT": "1Gi",
        }
    )

    assert config.master_pod_resources == ResourceSettings(
        "900m", "128Mi", "30M", "1000m", "", "50M"
    )
    assert config.worker_pod_resources == ResourceSettings(
        "300m", "128Mi", "30M", "1000m", "", "1Gi"
    )


def test_an_empty_role_setting_cannot_remove_a_unified_request():
    config = OperatorConfig.from_env({"WORKER_POD_CPU_LIMIT": "", "WORKER_POD_MEM_LIMIT": "  "})

    assert config.worker_pod_resources.requirements()["limits"] == {
        "cpu": "1000m",
        "memory": "1024Mi",
        "ephemeral-storage": "50M",
    }


@pytest.mark.parametrize("value", ["gvisor", "kata-fc", "runsc.gvisor.dev", "a" * 253])
def test_a_valid_default_runtime_class_name_is_kept(value: str):
    config = OperatorConfig.from_env({"DEFAULT_RUNTIME_CLASS_NAME": value})

    assert config.default_runtime_class_name == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("gVisor_Sandbox", DNS1123_SUBDOMAIN_RULE),
        ("-gvisor", DNS1123_SUBDOMAIN_RULE),
        ("gvisor.", DNS1123_SUBDOMAIN_RULE),
        ("a" * 254, "must be no more than 253 characters"),
    ],
)
def test_an_invalid_default_runtime_class_name_stops_the_operator(value: str, reason: str):
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env({"DEFAULT_RUNTIME_CLASS_NAME": value})

    assert caught.value.problems == {
        "DEFAULT_RUNTIME_CLASS_NAME": (
            f'DEFAULT_RUNTIME_CLASS_NAME="{value}": not a valid RuntimeClass name: {reason}'
        )
    }


def test_webhook_and_pod_health_settings_are_read():
    config = OperatorConfig.from_env(
        {
            "ENABLE_WEBHOOKS": "true",
            "WEBHOOK_PORT": "8443",
            "WEBHOOK_CERT_DIR": "/etc/webhook/certs",
            "POD_HEALTH_GRACE_SECONDS": "0",
        }
    )

    assert config.enable_webhooks is True
    assert config.webhook_port == 8443
    assert config.webhook_cert_dir == Path("/etc/webhook/certs")
    assert config.pod_health_grace_seconds == 0


@pytest.mark.parametrize(
    ("var", "attribute", "default"),
    [
        ("MASTER_POD_CPU_REQUEST", lambda c: c.master_pod_resources.cpu_request, "250m"),
        ("WORKER_POD_MEM_LIMIT", lambda c: c.worker_pod_resources.mem_limit, "1024Mi"),
        ("DEFAULT_RUNTIME_CLASS_NAME", lambda c: c.default_runtime_class_name, None),
        ("ENABLE_WEBHOOKS", lambda c: c.enable_webhooks, False),
        ("WEBHOOK_PORT", lambda c: c.webhook_port, 9443),
        (
            "WEBHOOK_CERT_DIR",
            lambda c: c.webhook_cert_dir,
            Path("/tmp/k8s-webhook-server/serving-certs"),
        ),
        ("POD_HEALTH_GRACE_SECONDS", lambda c: c.pod_health_grace_seconds, 120),
    ],
)
def test_an_empty_v2_setting_means_the_default(var, attribute, default):
    for empty in ("", "   "):
        assert attribute(OperatorConfig.from_env({var: empty})) == default


@pytest.mark.parametrize(
    ("var", "value", "reason"),
    [
        ("MASTER_POD_CPU_REQUEST", "lots", "not a valid Kubernetes quantity"),
        ("WORKER_POD_EPHEMERAL_LIMIT", "1.5 Gi", "not a valid Kubernetes quantity"),
        ("ENABLE_WEBHOOKS", "yes", "not a boolean"),
        ("WEBHOOK_PORT", "0", "must be between 1 and 65535"),
        ("WEBHOOK_PORT", "65536", "must be between 1 and 65535"),
        ("WEBHOOK_PORT", "https", "not an integer"),
        ("POD_HEALTH_GRACE_SECONDS", "-1", "must be at least 0"),
        ("POD_HEALTH_GRACE_SECONDS", "2m", "not an integer"),
    ],
)
def test_an_invalid_v2_value_is_reported_with_its_variable_and_value(var, value, reason):
    with pytest.raises(ConfigError) as caught:
        OperatorConfig.from_env({var: value})

    assert list(caught.value.problems) == [var]
    assert caught.value.problems[var].startswith(f'{var}="{value}": {reason}')


def test_the_startup_summary_shows_the_runtime_class_and_webhooks():
    summary = OperatorConfig.from_env(
        {"DEFAULT_RUNTIME_CLASS_NAME": "gvisor", "ENABLE_WEBHOOKS": "true"}
    ).summary()

    assert summary["defaultRuntimeClassName"] == "gvisor"
    assert summary["webhooks"] is True


class _RecordingEnv(dict):
    """An environment that remembers every variable looked up, however it is looked up."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


@pytest.mark.parametrize(
    "values",
    [{}, {"ENABLE_WEBHOOKS": "true", "POD_CPU_LIMIT": "", "MASTER_POD_CPU_LIMIT": "2"}],
    ids=["defaults", "some set"],
)
def test_settings_lists_exactly_the_variables_the_operator_reads(values: dict[str, str]):
    env = _RecordingEnv(values)

    OperatorConfig.from_env(env)

    assert env.read == set(SETTINGS)
    assert len(SETTINGS) == len(set(SETTINGS))
    assert {
        "MASTER_POD_CPU_REQUEST",
        "WORKER_POD_EPHEMERAL_LIMIT",
        "DEFAULT_RUNTIME_CLASS_NAME",
        "ENABLE_WEBHOOKS",
        "WEBHOOK_PORT",
        "WEBHOOK_CERT_DIR",
        "POD_HEALTH_GRACE_SECONDS",
    } <= set(SETTINGS)
