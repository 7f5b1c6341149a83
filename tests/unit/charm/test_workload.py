"""The reconciler's Pebble layer: exact plan and environment, replanning, version and ports."""

from __future__ import annotations

import ops
import pytest
from ops import testing

import workload
from tests.unit.charm.conftest import (
    APP,
    MODEL,
    VERSION,
    container,
    default_env,
    running_container,
    state,
)

DEFAULT_ENV = {
    "POD_CPU_REQUEST": "250m",
    "POD_MEM_REQUEST": "128Mi",
    "POD_EPHEMERAL_REQUEST": "30M",
    "POD_CPU_LIMIT": "1000m",
    "POD_MEM_LIMIT": "1024Mi",
    "POD_EPHEMERAL_LIMIT": "50M",
    # Empty: each falls back to the POD_* value.
    "MASTER_POD_CPU_REQUEST": "",
    "MASTER_POD_MEM_REQUEST": "",
    "MASTER_POD_EPHEMERAL_REQUEST": "",
    "MASTER_POD_CPU_LIMIT": "",
    "MASTER_POD_MEM_LIMIT": "",
    "MASTER_POD_EPHEMERAL_LIMIT": "",
    "WORKER_POD_CPU_REQUEST": "",
    "WORKER_POD_MEM_REQUEST": "",
    "WORKER_POD_EPHEMERAL_REQUEST": "",
    "WORKER_POD_CPU_LIMIT": "",
    "WORKER_POD_MEM_LIMIT": "",
    "WORKER_POD_EPHEMERAL_LIMIT": "",
    "DEFAULT_RUNTIME_CLASS_NAME": "",
    "METRICS_EXPORTER_IMAGE": "containersol/locust_exporter:v0.5.0",
    "METRICS_EXPORTER_PORT": "9646",
    "METRICS_EXPORTER_IMAGE_PULL_POLICY": "IfNotPresent",
    "METRICS_EXPORTER_CPU_REQUEST": "100m",
    "METRICS_EXPORTER_MEM_REQUEST": "64Mi",
    "METRICS_EXPORTER_EPHEMERAL_REQUEST": "30M",
    "METRICS_EXPORTER_CPU_LIMIT": "250m",
    "METRICS_EXPORTER_MEM_LIMIT": "128Mi",
    "METRICS_EXPORTER_EPHEMERAL_LIMIT": "50M",
    "ENABLE_AFFINITY_CR_INJECTION": "false",
    "ENABLE_TAINT_TOLERATIONS_CR_INJECTION": "false",
    "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
    "KAFKA_SECURITY_ENABLED": "false",
    "KAFKA_SECURITY_PROTOCOL_CONFIG": "SASL_PLAINTEXT",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "LOG_LEVEL": "info",
    "WATCH_NAMESPACES": "",
    "RESULTS_INTERVAL_SECONDS": "10",
    "LEADER_ELECTION": "true",
    "LEASE_NAME": APP,
    "LEASE_NAMESPACE": MODEL,
    "HEALTH_PORT": "8081",
    "METRICS_PORT": "8080",
    "ENABLE_WEBHOOKS": "true",
    "WEBHOOK_PORT": "9443",
    "WEBHOOK_CERT_DIR": "/etc/locust-operator/webhook",
}


def plan_of(out: testing.State) -> dict:
    return out.get_container(workload.CONTAINER).plan.to_dict()


def service_env(out: testing.State) -> dict[str, str]:
    return plan_of(out)["services"]["reconciler"]["environment"]


def test_pebble_ready_gives_the_exact_plan_for_the_default_config(ctx: testing.Context):
    # Arrange
    ready = container()

    # Act
    out = ctx.run(ctx.on.pebble_ready(ready), state(containers={ready}))

    # Assert
    assert plan_of(out) == {
        "services": {
            "reconciler": {
                "summary": "LocustTest reconciler",
                "override": "replace",
                "command": "locust-operator run",
                "startup": "enabled",
                "environment": DEFAULT_ENV,
                "on-check-failure": {"reconciler-ready": "restart", "reconciler-alive": "restart"},
            }
        },
        "checks": {
            "reconciler-ready": {
                "override": "replace",
                "level": "ready",
                "http": {"url": "http://localhost:8081/readyz"},
            },
            "reconciler-alive": {
                "override": "replace",
                "level": "alive",
                "http": {"url": "http://localhost:8081/healthz"},
            },
        },
    }
    service = out.get_container(workload.CONTAINER).service_statuses["reconciler"]
    assert service == ops.pebble.ServiceStatus.ACTIVE


def test_customised_config_gives_the_exact_environment(ctx: testing.Context):
    config = {
        "pod-cpu-request": "500m",
        "pod-mem-limit": "",  # empty: no memory limit, passed on as an empty variable
        "master-pod-cpu-limit": "4",
        "master-pod-mem-request": "2Gi",
        "worker-pod-ephemeral-limit": "100M",
        "default-runtime-class-name": "gvisor",
        "metrics-exporter-image": "registry.local/locust_exporter:v0.5.0",
        "metrics-exporter-port": 9700,
        "metrics-exporter-image-pull-policy": "Always",
        "metrics-exporter-ephemeral-limit": "",
        "job-ttl-seconds-after-finished": 300,
        "enable-affinity-cr-injection": True,
        "enable-taint-tolerations-cr-injection": True,
        "kafka-bootstrap-servers": "kafka-0:9092,kafka-1:9092",
        "kafka-security-enabled": True,
        "kafka-security-protocol-config": "SASL_SSL",
        "kafka-sasl-mechanism": "PLAIN",
        "log-level": "DEBUG",
        "watch-namespaces": "load,staging",
        "results-interval-seconds": 30,
    }

    out = ctx.run(ctx.on.config_changed(), state(config=config))

    assert service_env(out) == DEFAULT_ENV | {
        "POD_CPU_REQUEST": "500m",
        "POD_MEM_LIMIT": "",
        "MASTER_POD_CPU_LIMIT": "4",
        "MASTER_POD_MEM_REQUEST": "2Gi",
        "WORKER_POD_EPHEMERAL_LIMIT": "100M",
        "DEFAULT_RUNTIME_CLASS_NAME": "gvisor",
        "METRICS_EXPORTER_IMAGE": "registry.local/locust_exporter:v0.5.0",
        "METRICS_EXPORTER_PORT": "9700",
        "METRICS_EXPORTER_IMAGE_PULL_POLICY": "Always",
        "METRICS_EXPORTER_EPHEMERAL_LIMIT": "",
        "JOB_TTL_SECONDS_AFTER_FINISHED": "300",
        "ENABLE_AFFINITY_CR_INJECTION": "true",
        "ENABLE_TAINT_TOLERATIONS_CR_INJECTION": "true",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka-0:9092,kafka-1:9092",
        "KAFKA_SECURITY_ENABLED": "true",
        "KAFKA_SECURITY_PROTOCOL_CONFIG": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "LOG_LEVEL": "DEBUG",
        "WATCH_NAMESPACES": "load,staging",
        "RESULTS_INTERVAL_SECONDS": "30",
    }


def test_unset_ttl_leaves_the_variable_out(ctx: testing.Context):
    out = ctx.run(ctx.on.config_changed(), state())

    assert "JOB_TTL_SECONDS_AFTER_FINISHED" not in service_env(out)


def test_ttl_of_zero_is_passed_on(ctx: testing.Context):
    out = ctx.run(ctx.on.config_changed(), state(config={"job-ttl-seconds-after-finished": 0}))

    assert service_env(out)["JOB_TTL_SECONDS_AFTER_FINISHED"] == "0"


def test_kafka_credentials_come_from_the_secret(ctx: testing.Context):
    secret = testing.Secret(
        {"username": "load", "password": "s3cret", "sasl-jaas-config": "jaas-line"}
    )

    out = ctx.run(
        ctx.on.config_changed(),
        state(config={"kafka-credentials": secret.id}, secrets={secret}),
    )

    env = service_env(out)
    assert env["KAFKA_USERNAME"] == "load"
    assert env["KAFKA_PASSWORD"] == "s3cret"
    assert env["KAFKA_SASL_JAAS_CONFIG"] == "jaas-line"
    assert out.unit_status == testing.ActiveStatus("standby: the leader manages the CRD and RBAC")
    assert not any("s3cret" in line.message for line in ctx.juju_log)


def test_secret_without_jaas_config_leaves_that_variable_out(ctx: testing.Context):
    secret = testing.Secret({"username": "load", "password": "s3cret"})

    out = ctx.run(
        ctx.on.config_changed(),
        state(config={"kafka-credentials": secret.id}, secrets={secret}),
    )

    assert "KAFKA_SASL_JAAS_CONFIG" not in service_env(out)
    assert service_env(out)["KAFKA_USERNAME"] == "load"


def test_new_secret_revision_updates_the_environment(ctx: testing.Context):
    secret = testing.Secret(
        tracked_content={"username": "load", "password": "old"},
        latest_content={"username": "load", "password": "new"},
    )
    running = running_container(default_env(KAFKA_USERNAME="load", KAFKA_PASSWORD="old"))

    out = ctx.run(
        ctx.on.secret_changed(secret),
        state(config={"kafka-credentials": secret.id}, secrets={secret}, containers={running}),
    )

    assert service_env(out)["KAFKA_PASSWORD"] == "new"


def test_unchanged_layer_is_not_replanned(ctx: testing.Context):
    # The service is stopped, but its layer is already the one the config gives: a replan would
    # start it. Only a change of plan may replan.
    stopped = running_container(default_env(), running=False)

    out = ctx.run(ctx.on.config_changed(), state(containers={stopped}))

    assert out.get_container(workload.CONTAINER).service_statuses[workload.SERVICE] == (
        ops.pebble.ServiceStatus.INACTIVE
    )
    assert not any("replanning" in line.message for line in ctx.juju_log)


def test_changed_config_replans(ctx: testing.Context):
    running = running_container(default_env())

    out = ctx.run(
        ctx.on.config_changed(), state(config={"log-level": "debug"}, containers={running})
    )

    assert service_env(out)["LOG_LEVEL"] == "debug"
    assert any("replanning" in line.message for line in ctx.juju_log)


def test_container_not_up_waits_and_touches_nothing(ctx: testing.Context):
    down = container(can_connect=False)

    out = ctx.run(ctx.on.config_changed(), state(containers={down}))

    assert out.unit_status == testing.WaitingStatus("waiting for the reconciler container")
    assert out.get_container(workload.CONTAINER).layers == {}


def test_pebble_ready_sets_the_workload_version(ctx: testing.Context):
    ready = container()

    out = ctx.run(ctx.on.pebble_ready(ready), state(containers={ready}))

    assert out.workload_version == VERSION
    assert ctx.exec_history[workload.CONTAINER][0].command == ["locust-operator", "version"]


def test_failing_version_command_leaves_the_version_unset(ctx: testing.Context):
    broken = container(execs={testing.Exec(["locust-operator", "version"], return_code=1)})

    out = ctx.run(ctx.on.pebble_ready(broken), state(containers={broken}))

    assert out.workload_version == ""
    assert out.get_container(workload.CONTAINER).plan.services  # the service still runs


def test_metrics_and_webhook_ports_are_opened(ctx: testing.Context):
    # Juju's Service for the application exposes them: the CRD sends conversions to 9443.
    out = ctx.run(ctx.on.config_changed(), state())

    assert out.opened_ports == {testing.TCPPort(8080), testing.TCPPort(9443)}


@pytest.mark.parametrize(
    ("ready", "expected"),
    [
        (True, testing.ActiveStatus("standby: the leader manages the CRD and RBAC")),
        (False, testing.WaitingStatus("waiting for the reconciler to be ready")),
    ],
)
def test_status_follows_the_ready_check(ctx: testing.Context, ready: bool, expected):
    running = running_container(default_env(), ready=ready)

    out = ctx.run(ctx.on.update_status(), state(containers={running}))

    assert out.unit_status == expected


def test_stopped_service_waits(ctx: testing.Context):
    stopped = running_container(default_env(), running=False)

    out = ctx.run(ctx.on.update_status(), state(containers={stopped}))

    assert out.unit_status == testing.WaitingStatus("waiting for the reconciler service to start")
