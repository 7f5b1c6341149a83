"""The v2 fields in the built objects, checked as a user sees them: the manifest's fields.

Cases follow upstream's Go parity checklist (command, env, volumes, otel, job, service, labels
tests). Specs are built directly as TestSpec, independent of the v2 parser; their values mirror
upstream's v2 samples (AbdelrhmanHamouda/locust-k8s-operator, Apache License 2.0:
config/samples/locust_v2_locusttest_with_{env,volumes,security,otel}.yaml and
test/e2e/testdata/v2/locusttest-with-scheduling.yaml).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

import kubernetes_validate
import pytest

from reconciler.config import OperatorConfig
from reconciler.resources.labels import GENERATION_ANNOTATION
from reconciler.resources.command import (
    OPERATOR_MANAGED_FLAGS,
    flag_conflicts,
    master_args,
    worker_args,
)
from reconciler.resources import build_children, to_dict
from reconciler.resources.job import build_master_job
from reconciler.resources.service import build_service
from reconciler.api.types import (
    EnvSource,
    OpenTelemetry,
    RoleSpec,
    SecretMount,
    TestSpec,
    UserVolumeMount,
)
from tests.unit.test_resources import (
    DEFAULT_CONFIG,
    KAFKA_NAMES,
    KUBERNETES_VERSIONS,
    locust_container,
    master_pod,
    operator_config,
    worker_pod,
)

SEED = "--locustfile /lotest/src/test.py"
V2_SPEC = TestSpec(
    name="my-test",
    namespace="default",
    api_version="locust.io/v2",
    image="locustio/locust:2.43.1",
    master=RoleSpec(command_seed=SEED),
    worker=RoleSpec(command_seed=SEED),
    worker_replicas=3,
    config_map="my-test-configmap",
)
OTEL = OpenTelemetry(enabled=True, endpoint="otel-collector.monitoring:4317")
DEFAULT_RESOURCES = {
    "limits": {"cpu": "1000m", "memory": "1024Mi", "ephemeral-storage": "50M"},
    "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"},
}
HARDENED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "kubernetes.io/arch",
                            "operator": "In",
                            "values": ["amd64", "arm64"],
                        }
                    ]
                }
            ]
        }
    },
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"performance-test-name": "my-test"}},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    },
}
TOLERATIONS = (
    {"key": "performance-testing", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
    {"key": "high-load", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
)


def make_spec(**changes: Any) -> TestSpec:
    return dataclasses.replace(V2_SPEC, **changes)


def with_roles(master: dict[str, Any] | None = None, worker: dict[str, Any] | None = None):
    """The v2 spec with changes to the master's and the worker's RoleSpec."""
    return make_spec(
        master=dataclasses.replace(V2_SPEC.master, **(master or {})),
        worker=dataclasses.replace(V2_SPEC.worker, **(worker or {})),
    )


def both_pods(spec: TestSpec, cfg: OperatorConfig = DEFAULT_CONFIG) -> list[dict[str, Any]]:
    return [master_pod(spec, cfg), worker_pod(spec, cfg)]


def env_names(pod: dict[str, Any]) -> list[str]:
    return [variable["name"] for variable in locust_container(pod)["env"]]


def volume_names(pod: dict[str, Any]) -> list[str]:
    return [volume["name"] for volume in pod["spec"].get("volumes", [])]


def mount_paths(pod: dict[str, Any]) -> list[str]:
    return [mount["mountPath"] for mount in locust_container(pod).get("volumeMounts", [])]


def user_volume(target: str) -> dict[str, Any]:
    """The spec changes for one emptyDir volume `data`, mounted at /data for `target`."""
    return {
        "volumes": ({"name": "data", "emptyDir": {}},),
        "volume_mounts": (UserVolumeMount({"name": "data", "mountPath": "/data"}, target),),
    }


# --- Generation -------------------------------------------------------------------------------


@pytest.mark.parametrize("generation", [1, 7])
def test_every_child_records_the_test_generation_it_was_built_from(generation: int):
    # The controller compares it with the test's generation to report SpecDrifted.
    for obj in build_children(make_spec(generation=generation), DEFAULT_CONFIG):
        assert to_dict(obj)["metadata"]["annotations"] == {GENERATION_ANNOTATION: str(generation)}


# --- Arguments (command_test.go) --------------------------------------------------------------


def test_otel_flag_comes_after_the_seed_and_before_the_role_flags():
    spec = make_spec(open_telemetry=OTEL)

    assert master_args(spec, DEFAULT_CONFIG) == [
        "--locustfile",
        "/lotest/src/test.py",
        "--otel",
        "--master",
        "--master-port=5557",
        "--expect-workers=3",
        "--autostart",
        "--autoquit",
        "60",
        "--enable-rebalancing",
        "--only-summary",
    ]
    assert worker_args(spec) == [
        "--locustfile",
        "/lotest/src/test.py",
        "--otel",
        "--worker",
        "--master-port=5557",
        "--master-host=my-test-master",
    ]
    master, worker = both_pods(spec)
    assert locust_container(master)["args"] == master_args(spec, DEFAULT_CONFIG)
    assert locust_container(worker)["args"] == worker_args(spec)


@pytest.mark.parametrize(
    "otel", [OpenTelemetry(), OpenTelemetry(enabled=False, endpoint="collector:4317")]
)
def test_no_otel_flag_unless_enabled(otel: OpenTelemetry):
    spec = make_spec(open_telemetry=otel)

    assert "--otel" not in master_args(spec, DEFAULT_CONFIG) + worker_args(spec)


def test_an_autoquit_timeout_of_zero_is_kept():
    args = master_args(make_spec(autoquit_seconds=0), DEFAULT_CONFIG)

    assert args[args.index("--autoquit") + 1] == "0"


def test_extra_args_follow_every_operator_flag_in_both_roles():
    spec = dataclasses.replace(
        with_roles(
            master={"extra_args": ("--csv=results", "--users=100")},
            worker={"extra_args": ("--csv=results",)},
        ),
        open_telemetry=OTEL,
    )

    master, worker = master_args(spec, DEFAULT_CONFIG), worker_args(spec)

    assert master[-3:] == ["--only-summary", "--csv=results", "--users=100"]
    assert worker[-2:] == ["--master-host=my-test-master", "--csv=results"]


@pytest.mark.parametrize(
    ("args", "conflicts"),
    [
        (["--master-port=9999"], ["--master-port=9999"]),
        (["--otel"], ["--otel"]),
        (
            ["--expect-workers", "5", "--csv=out", "--autoquit=30", "--master-host=elsewhere"],
            ["--expect-workers", "--autoquit=30", "--master-host=elsewhere"],
        ),
        # Prefixes of managed flags and flag values are not managed flags.
        (["--master-bind-host=0.0.0.0", "--workers-exit", "--only-summary-x", "5557"], []),
        ([], []),
    ],
)
def test_flag_conflicts_finds_the_extra_args_that_set_operator_flags(args, conflicts):
    assert flag_conflicts(args) == conflicts


def test_the_managed_flags_are_exactly_the_flags_the_operator_sets():
    spec = make_spec(open_telemetry=OTEL)
    seed = len(SEED.split())
    operator_args = master_args(spec, DEFAULT_CONFIG)[seed:] + worker_args(spec)[seed:]

    flags = {arg.partition("=")[0] for arg in operator_args if arg.startswith("--")}

    assert flags == OPERATOR_MANAGED_FLAGS
    assert flag_conflicts(operator_args) == [arg for arg in operator_args if arg.startswith("--")]


# --- Service and annotations under OpenTelemetry (service_test.go, labels_test.go) ------------


def test_with_otel_the_service_exposes_no_metrics_port():
    service = to_dict(build_service(make_spec(open_telemetry=OTEL), DEFAULT_CONFIG))

    assert service["spec"]["ports"] == [
        {"port": 5557, "name": "port5557", "protocol": "TCP"},
        {"port": 5558, "name": "port5558", "protocol": "TCP"},
    ]


def test_otel_configured_but_disabled_keeps_the_metrics_port():
    spec = make_spec(open_telemetry=OpenTelemetry(enabled=False, endpoint="collector:4317"))

    ports = to_dict(build_service(spec, DEFAULT_CONFIG))["spec"]["ports"]

    assert [port["name"] for port in ports] == ["port5557", "port5558", "prometheus-metrics"]


def test_with_otel_no_pod_gets_prometheus_annotations():
    master, worker = both_pods(make_spec(open_telemetry=OTEL))

    assert "annotations" not in master["metadata"]
    assert "annotations" not in worker["metadata"]


def test_with_otel_user_annotations_are_still_applied():
    spec = dataclasses.replace(
        with_roles(master={"annotations": {"team": "perf"}}), open_telemetry=OTEL
    )

    assert master_pod(spec)["metadata"]["annotations"] == {"team": "perf"}


# --- OpenTelemetry in the pods (job_test.go, otel_test.go, env_test.go) -----------------------


def test_with_otel_each_pod_runs_locust_alone():
    master, worker = both_pods(make_spec(open_telemetry=OTEL))

    for pod, name in ((master, "my-test-master"), (worker, "my-test-worker")):
        assert [c["name"] for c in pod["spec"]["containers"]] == [name]
        assert "initContainers" not in pod["spec"]


def test_otel_env_follows_kafka_with_extra_variables_sorted_by_name():
    otel = OpenTelemetry(
        enabled=True,
        endpoint="otel-collector.monitoring:4317",
        protocol="http/protobuf",
        insecure=True,
        extra_env={
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=locust-load-test",
        },
    )

    for pod in both_pods(make_spec(open_telemetry=otel)):
        env = locust_container(pod)["env"]
        assert [variable["name"] for variable in env[:7]] == KAFKA_NAMES
        assert env[7:] == [
            {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
            {"name": "OTEL_METRICS_EXPORTER", "value": "otlp"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "otel-collector.monitoring:4317"},
            {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
            {"name": "OTEL_EXPORTER_OTLP_INSECURE", "value": "true"},
            {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": "service.name=locust-load-test"},
            {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
        ]


def test_minimal_otel_env_defaults_to_grpc_and_leaves_insecure_out():
    env = locust_container(worker_pod(make_spec(open_telemetry=OTEL)))["env"][7:]

    assert env == [
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_METRICS_EXPORTER", "value": "otlp"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "otel-collector.monitoring:4317"},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "grpc"},
    ]


def test_otel_without_an_endpoint_sets_no_endpoint_variable():
    env = env_names(worker_pod(make_spec(open_telemetry=OpenTelemetry(enabled=True))))

    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in env


def test_without_otel_only_kafka_variables_are_set():
    otel = OpenTelemetry(enabled=False, endpoint="collector:4317", extra_env={"OTEL_X": "1"})

    for pod in both_pods(make_spec(open_telemetry=otel)):
        assert env_names(pod) == KAFKA_NAMES


# --- Environment (env_test.go) ----------------------------------------------------------------


def test_env_is_kafka_then_otel_then_the_tests_variables_with_value_from_intact():
    variables = (
        {"name": "TARGET_HOST", "value": "https://api.example.com"},
        {
            "name": "LOG_LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "log-level"}},
        },
        # A test may override an operator variable: Kubernetes keeps the last definition.
        {"name": "KAFKA_BOOTSTRAP_SERVERS", "value": "kafka.test:9092"},
    )
    spec = make_spec(open_telemetry=OTEL, env_variables=variables)

    for pod in both_pods(spec):
        env = locust_container(pod)["env"]
        assert [variable["name"] for variable in env] == [
            *KAFKA_NAMES,
            "OTEL_TRACES_EXPORTER",
            "OTEL_METRICS_EXPORTER",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "TARGET_HOST",
            "LOG_LEVEL",
            "KAFKA_BOOTSTRAP_SERVERS",
        ]
        assert env[-3:] == list(variables)


def test_env_from_lists_config_maps_then_secrets_with_their_prefixes():
    spec = make_spec(
        env_secrets=(EnvSource("api-credentials"), EnvSource("db", prefix="DB_")),
        env_config_maps=(EnvSource("app-config", prefix="APP_"), EnvSource("shared", prefix="")),
    )

    for pod in both_pods(spec):
        assert locust_container(pod)["envFrom"] == [
            {"configMapRef": {"name": "app-config"}, "prefix": "APP_"},
            {"configMapRef": {"name": "shared"}},
            {"secretRef": {"name": "api-credentials"}},
            {"secretRef": {"name": "db"}, "prefix": "DB_"},
        ]


def test_no_env_from_without_sources():
    for pod in both_pods(V2_SPEC):
        assert "envFrom" not in locust_container(pod)


# --- Secret mounts ----------------------------------------------------------------------------


def test_a_secret_mount_is_a_secret_volume_mounted_read_only_in_both_roles():
    spec = make_spec(secret_mounts=(SecretMount("tls-certs", "/etc/locust/certs"),))

    for pod in both_pods(spec):
        assert pod["spec"]["volumes"][1:] == [
            {"name": "secret-tls-certs", "secret": {"secretName": "tls-certs"}}
        ]
        assert locust_container(pod)["volumeMounts"][1:] == [
            {"mountPath": "/etc/locust/certs", "name": "secret-tls-certs", "readOnly": True}
        ]


def test_secret_mounts_keep_their_order_and_may_be_writable():
    spec = make_spec(
        config_map=None,
        secret_mounts=(
            SecretMount("api-keys", "/etc/api-keys", read_only=False),
            SecretMount("tls-certs", "/etc/certs"),
        ),
    )

    mounts = locust_container(worker_pod(spec))["volumeMounts"]

    assert [(m["name"], m["readOnly"]) for m in mounts] == [
        ("secret-api-keys", False),
        ("secret-tls-certs", True),
    ]


# --- User volumes (volumes_test.go) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "in_master", "in_worker"),
    [
        ("both", True, True),
        ("", True, True),  # no target means both
        ("master", True, False),
        ("worker", False, True),
        ("Master", False, False),  # an unknown target mounts nowhere
        ("all", False, False),
    ],
)
def test_a_user_mount_goes_to_the_roles_its_target_names(target, in_master, in_worker):
    master, worker = both_pods(make_spec(config_map=None, **user_volume(target)))

    for pod, expected in ((master, in_master), (worker, in_worker)):
        assert volume_names(pod) == (["data"] if expected else [])
        assert mount_paths(pod) == (["/data"] if expected else [])


def test_a_volume_goes_only_to_the_roles_that_mount_it():
    spec = make_spec(
        volumes=(
            {"name": "results", "emptyDir": {}},
            {"name": "shared", "emptyDir": {}},
            {"name": "certs", "emptyDir": {}},
            {"name": "unused", "emptyDir": {}},
        ),
        volume_mounts=(
            UserVolumeMount({"name": "results", "mountPath": "/results"}, "master"),
            UserVolumeMount({"name": "shared", "mountPath": "/shared"}, "both"),
            UserVolumeMount({"name": "certs", "mountPath": "/certs"}, "worker"),
        ),
    )
    master, worker = both_pods(spec)

    assert volume_names(master) == ["my-test-master", "results", "shared"]
    assert mount_paths(master) == ["/lotest/src", "/results", "/shared"]
    assert volume_names(worker) == ["my-test-worker", "shared", "certs"]
    assert mount_paths(worker) == ["/lotest/src", "/shared", "/certs"]


def test_user_volumes_and_mounts_pass_through_unchanged_without_target():
    volume = {
        "name": "custom-certs",
        "secret": {
            "secretName": "tls-certificates",
            "items": [{"key": "ca.crt", "path": "ca.pem"}],
            "defaultMode": 256,
        },
    }
    mount = {"name": "custom-certs", "mountPath": "/etc/ssl/custom", "subPath": "ca.pem"}
    # Given as the CR holds it, target included: only Kubernetes' VolumeMount fields go out.
    spec = make_spec(
        config_map=None,
        volumes=(volume,),
        volume_mounts=(
            UserVolumeMount({**mount, "readOnly": True, "target": "worker"}, "worker"),
        ),
    )

    pod = worker_pod(spec)

    assert pod["spec"]["volumes"] == [volume]
    assert locust_container(pod)["volumeMounts"] == [{**mount, "readOnly": True}]


def test_volumes_and_mounts_come_in_upstream_order():
    spec = make_spec(
        lib_config_map="my-lib",
        secret_mounts=(SecretMount("b-secret", "/etc/b"), SecretMount("a-secret", "/etc/a")),
        **user_volume("both"),
    )

    for pod, test_files in zip(both_pods(spec), ["my-test-master", "my-test-worker"], strict=True):
        assert volume_names(pod) == [
            test_files,
            "locust-lib",
            "secret-b-secret",
            "secret-a-secret",
            "data",
        ]
        assert mount_paths(pod) == ["/lotest/src", "/opt/locust/lib", "/etc/b", "/etc/a", "/data"]


def test_test_files_are_mounted_at_the_paths_the_test_gives():
    spec = make_spec(
        lib_config_map="my-lib", src_mount_path="/mnt/locust", lib_mount_path="/mnt/locust-lib"
    )

    for pod in both_pods(spec):
        assert mount_paths(pod) == ["/mnt/locust", "/mnt/locust-lib"]


def test_built_objects_share_no_data_with_the_test():
    spec = make_spec(
        node_selector={"pool": "load"},
        env_variables=({"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},),
        **user_volume("both"),
    )
    pristine = to_dict(build_master_job(spec, DEFAULT_CONFIG))
    job = build_master_job(spec, DEFAULT_CONFIG)
    pod = job.spec.template.spec

    pod.nodeSelector["pool"] = "changed"
    pod.containers[0].env[-1].valueFrom.secretKeyRef.name = "changed"
    pod.volumes[-1].name = "changed"

    assert spec.node_selector == {"pool": "load"}
    assert spec.env_variables[0]["valueFrom"]["secretKeyRef"]["name"] == "s"
    assert spec.volumes[0]["name"] == "data"
    assert to_dict(build_master_job(spec, DEFAULT_CONFIG)) == pristine


# --- Resources (job_test.go, config_test.go) --------------------------------------------------

MASTER_RESOURCES = {
    "requests": {"cpu": "500m", "memory": "256Mi"},
    "limits": {"cpu": "2000m", "memory": "2Gi"},
}


def test_the_tests_resources_replace_the_operators_whole_for_that_role_only():
    spec = with_roles(master={"resources": MASTER_RESOURCES})
    master, worker = both_pods(spec)

    # No ephemeral-storage: the test's resources are not merged with the operator's.
    assert locust_container(master)["resources"] == MASTER_RESOURCES
    assert locust_container(worker)["resources"] == DEFAULT_RESOURCES


def test_worker_resources_from_the_test():
    resources = {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "1Gi"}}
    master, worker = both_pods(with_roles(worker={"resources": resources}))

    assert locust_container(worker)["resources"] == resources
    assert locust_container(master)["resources"] == DEFAULT_RESOURCES


@pytest.mark.parametrize(
    "resources",
    [None, {}, {"requests": {}}, {"requests": {}, "limits": {}}],
    ids=["unset", "empty", "empty requests", "empty both"],
)
def test_resources_without_a_request_or_limit_leave_the_operators(resources):
    spec = with_roles(master={"resources": resources}, worker={"resources": resources})

    for pod in both_pods(spec):
        assert locust_container(pod)["resources"] == DEFAULT_RESOURCES


def test_master_role_settings_apply_field_by_field_over_the_unified_ones():
    cfg = operator_config(
        MASTER_POD_CPU_REQUEST="500m",
        MASTER_POD_MEM_REQUEST="512Mi",
        MASTER_POD_EPHEMERAL_REQUEST="",  # empty: the unified value
        MASTER_POD_CPU_LIMIT="2000m",
        MASTER_POD_MEM_LIMIT="2Gi",
    )
    master, worker = both_pods(V2_SPEC, cfg)

    assert locust_container(master)["resources"] == {
        "limits": {"cpu": "2000m", "memory": "2Gi", "ephemeral-storage": "50M"},
        "requests": {"cpu": "500m", "memory": "512Mi", "ephemeral-storage": "30M"},
    }
    assert locust_container(worker)["resources"] == DEFAULT_RESOURCES


def test_worker_role_settings_leave_the_master_unified():
    cfg = operator_config(WORKER_POD_CPU_REQUEST="300m", WORKER_POD_MEM_LIMIT="1536Mi")
    master, worker = both_pods(V2_SPEC, cfg)

    assert locust_container(worker)["resources"] == {
        "limits": {"cpu": "1000m", "memory": "1536Mi", "ephemeral-storage": "50M"},
        "requests": {"cpu": "300m", "memory": "128Mi", "ephemeral-storage": "30M"},
    }
    assert locust_container(master)["resources"] == DEFAULT_RESOURCES


def test_the_tests_resources_win_over_role_settings():
    cfg = operator_config(MASTER_POD_CPU_REQUEST="900m", MASTER_POD_MEM_LIMIT="8Gi")

    master = master_pod(with_roles(master={"resources": MASTER_RESOURCES}), cfg)

    assert locust_container(master)["resources"] == MASTER_RESOURCES


def test_a_role_without_its_own_value_follows_an_unbound_unified_limit():
    cfg = operator_config(POD_CPU_LIMIT="", MASTER_POD_MEM_LIMIT="2Gi")

    for pod in both_pods(V2_SPEC, cfg):
        assert "cpu" not in locust_container(pod)["resources"]["limits"]


def test_role_settings_do_not_reach_the_exporter():
    cfg = operator_config(MASTER_POD_CPU_REQUEST="4", MASTER_POD_CPU_LIMIT="8")

    [exporter] = master_pod(V2_SPEC, cfg)["spec"]["initContainers"]

    assert exporter["resources"]["requests"]["cpu"] == "100m"
    assert exporter["resources"]["limits"]["cpu"] == "250m"


# --- Scheduling (job_test.go) -----------------------------------------------------------------


def test_node_selector_reaches_both_pods_without_any_injection_flag():
    selector = {"workload-type": "performance-testing", "tier": "compute"}

    for pod in both_pods(make_spec(node_selector=selector)):
        assert pod["spec"]["nodeSelector"] == selector


def test_no_node_selector_when_the_test_has_none():
    for pod in both_pods(V2_SPEC):
        assert "nodeSelector" not in pod["spec"]


def test_full_affinity_and_tolerations_pass_through_unchanged_when_injection_is_on():
    cfg = operator_config(
        ENABLE_AFFINITY_CR_INJECTION="true", ENABLE_TAINT_TOLERATIONS_CR_INJECTION="true"
    )

    for pod in both_pods(make_spec(affinity=AFFINITY, tolerations=TOLERATIONS), cfg):
        assert pod["spec"]["affinity"] == AFFINITY
        assert pod["spec"]["tolerations"] == list(TOLERATIONS)


def test_affinity_and_tolerations_stay_out_when_injection_is_off():
    for pod in both_pods(make_spec(affinity=AFFINITY, tolerations=TOLERATIONS)):
        assert "affinity" not in pod["spec"]
        assert "tolerations" not in pod["spec"]


@pytest.mark.parametrize(
    ("from_test", "operator_default", "expected"),
    [
        ("gvisor", None, "gvisor"),
        (None, "kata", "kata"),
        ("gvisor", "kata", "gvisor"),  # the test's wins
        (None, None, None),
        ("", "kata", None),  # "" opts out of the operator's default
        ("", None, None),
    ],
)
def test_runtime_class_name_precedence(from_test, operator_default, expected):
    env = {"DEFAULT_RUNTIME_CLASS_NAME": operator_default} if operator_default else {}
    spec = make_spec(runtime_class_name=from_test)

    for pod in both_pods(spec, operator_config(**env)):
        assert pod["spec"].get("runtimeClassName") == expected


# --- Security contexts (job_test.go) ----------------------------------------------------------


def test_the_tests_pod_security_context_replaces_the_default_entirely():
    context = {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000}

    for pod in both_pods(make_spec(pod_security_context=context)):
        assert pod["spec"]["securityContext"] == context  # no seccompProfile added


def test_the_container_security_context_applies_to_locust_only():
    context = {"allowPrivilegeEscalation": True, "runAsNonRoot": True}
    master, worker = both_pods(make_spec(container_security_context=context))

    assert locust_container(master)["securityContext"] == context
    assert locust_container(worker)["securityContext"] == context
    [exporter] = master["spec"]["initContainers"]
    assert exporter["securityContext"] == HARDENED


def test_a_container_security_context_alone_keeps_the_pods_default():
    spec = make_spec(container_security_context={"allowPrivilegeEscalation": False})

    for pod in both_pods(spec):
        assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


# --- Everything at once -----------------------------------------------------------------------

EVERYTHING = make_spec(
    uid="0b5e-42",
    image_pull_policy="Always",
    image_pull_secrets=("registry-credentials",),
    lib_config_map="my-lib",
    src_mount_path="/mnt/locust",
    master=RoleSpec(
        command_seed=SEED,
        labels={"role": "master"},
        annotations={"team": "perf"},
        extra_args=("--csv=results",),
        resources=MASTER_RESOURCES,
    ),
    worker=RoleSpec(
        command_seed=SEED, labels={"role": "worker"}, extra_args=("--loglevel", "DEBUG")
    ),
    autostart=False,
    autoquit_seconds=120,
    affinity=AFFINITY,
    tolerations=TOLERATIONS,
    node_selector={"workload-type": "testing"},
    runtime_class_name="gvisor",
    env_config_maps=(EnvSource("app-config", prefix="APP_"),),
    env_secrets=(EnvSource("api-credentials"),),
    env_variables=({"name": "TARGET_HOST", "value": "https://api.example.com"},),
    secret_mounts=(SecretMount("tls-certs", "/etc/locust/certs"),),
    volumes=(
        {"name": "test-results", "emptyDir": {}},
        {"name": "shared-data", "emptyDir": {}},
        {
            "name": "custom-certs",
            "secret": {
                "secretName": "tls-certificates",
                "items": [{"key": "ca.crt", "path": "ca"}],
            },
        },
    ),
    volume_mounts=(
        UserVolumeMount({"name": "test-results", "mountPath": "/results"}, "master"),
        UserVolumeMount({"name": "shared-data", "mountPath": "/shared"}, "both"),
        UserVolumeMount(
            {"name": "custom-certs", "mountPath": "/etc/ssl/custom", "readOnly": True}, "worker"
        ),
    ),
    pod_security_context={"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    container_security_context={
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    },
)
EVERYTHING_CONFIG = operator_config(
    ENABLE_AFFINITY_CR_INJECTION="true",
    ENABLE_TAINT_TOLERATIONS_CR_INJECTION="true",
    WORKER_POD_CPU_LIMIT="500m",
    DEFAULT_RUNTIME_CLASS_NAME="kata",
    JOB_TTL_SECONDS_AFTER_FINISHED="600",
)


def test_every_v2_field_in_one_worker_pod():
    pod = worker_pod(EVERYTHING, EVERYTHING_CONFIG)

    assert pod["metadata"] == {
        "labels": {
            "app": "my-test",
            "performance-test-name": "my-test",
            "performance-test-pod-name": "my-test-worker",
            "managed-by": "locust-k8s-operator",
            "role": "worker",
        }
    }
    [container] = pod["spec"].pop("containers")
    assert pod["spec"] == {
        "affinity": AFFINITY,
        "enableServiceLinks": False,
        "imagePullSecrets": [{"name": "registry-credentials"}],
        "nodeSelector": {"workload-type": "testing"},
        "restartPolicy": "Never",
        "runtimeClassName": "gvisor",
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "tolerations": list(TOLERATIONS),
        "volumes": [
            {"name": "my-test-worker", "configMap": {"name": "my-test-configmap"}},
            {"name": "locust-lib", "configMap": {"name": "my-lib"}},
            {"name": "secret-tls-certs", "secret": {"secretName": "tls-certs"}},
            {"name": "shared-data", "emptyDir": {}},
            {
                "name": "custom-certs",
                "secret": {
                    "secretName": "tls-certificates",
                    "items": [{"key": "ca.crt", "path": "ca"}],
                },
            },
        ],
    }
    assert container == {
        "name": "my-test-worker",
        "args": [
            "--locustfile",
            "/lotest/src/test.py",
            "--worker",
            "--master-port=5557",
            "--master-host=my-test-master",
            "--loglevel",
            "DEBUG",
        ],
        "env": [
            *locust_container(worker_pod(V2_SPEC))["env"],
            {"name": "TARGET_HOST", "value": "https://api.example.com"},
        ],
        "envFrom": [
            {"configMapRef": {"name": "app-config"}, "prefix": "APP_"},
            {"secretRef": {"name": "api-credentials"}},
        ],
        "image": "locustio/locust:2.43.1",
        "imagePullPolicy": "Always",
        "ports": [{"containerPort": 8080}],
        "resources": {
            "limits": {"cpu": "500m", "memory": "1024Mi", "ephemeral-storage": "50M"},
            "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"},
        },
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [
            {"mountPath": "/mnt/locust", "name": "my-test-worker", "readOnly": False},
            {"mountPath": "/opt/locust/lib", "name": "locust-lib", "readOnly": False},
            {"mountPath": "/etc/locust/certs", "name": "secret-tls-certs", "readOnly": True},
            {"mountPath": "/shared", "name": "shared-data"},
            {"mountPath": "/etc/ssl/custom", "name": "custom-certs", "readOnly": True},
        ],
    }


def test_every_v2_field_in_the_master_pod():
    pod = master_pod(EVERYTHING, EVERYTHING_CONFIG)
    container = locust_container(pod)

    assert pod["metadata"]["annotations"]["team"] == "perf"
    assert container["args"][2:] == [
        "--master",
        "--master-port=5557",
        "--expect-workers=3",
        "--autoquit",
        "120",
        "--enable-rebalancing",
        "--only-summary",
        "--csv=results",
    ]
    assert container["resources"] == MASTER_RESOURCES
    assert volume_names(pod) == [
        "my-test-master",
        "locust-lib",
        "secret-tls-certs",
        "test-results",
        "shared-data",
    ]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["locust-metrics-exporter"]


def frozen(value: Any) -> Any:
    """`value` as a parser may keep it: read-only mappings and tuples all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({key: frozen(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(frozen(item) for item in value)
    return value


def test_read_only_mappings_build_the_same_objects_as_dicts():
    # `items` and `values` (a secret volume's, an affinity's) are methods of a read-only mapping.
    spec = dataclasses.replace(
        EVERYTHING,
        master=dataclasses.replace(EVERYTHING.master, resources=frozen(MASTER_RESOURCES)),
        affinity=frozen(EVERYTHING.affinity),
        tolerations=frozen(EVERYTHING.tolerations),
        node_selector=frozen(dict(EVERYTHING.node_selector)),
        env_variables=frozen(EVERYTHING.env_variables),
        volumes=frozen(EVERYTHING.volumes),
        volume_mounts=tuple(
            UserVolumeMount(frozen(dict(m.mount)), m.target) for m in EVERYTHING.volume_mounts
        ),
        pod_security_context=frozen(EVERYTHING.pod_security_context),
        container_security_context=frozen(EVERYTHING.container_security_context),
    )

    built = [to_dict(obj) for obj in build_children(spec, EVERYTHING_CONFIG)]

    assert built == [to_dict(obj) for obj in build_children(EVERYTHING, EVERYTHING_CONFIG)]


# --- Validity against the Kubernetes API ------------------------------------------------------

V2_REPRESENTATIVE = {
    "everything, metrics exporter": (EVERYTHING, EVERYTHING_CONFIG),
    "everything, OpenTelemetry": (
        dataclasses.replace(
            EVERYTHING,
            open_telemetry=OpenTelemetry(
                enabled=True,
                endpoint="otel-collector.monitoring:4317",
                protocol="http/protobuf",
                insecure=True,
                extra_env={"OTEL_RESOURCE_ATTRIBUTES": "service.name=locust"},
            ),
        ),
        EVERYTHING_CONFIG,
    ),
    "operator runtime class, container-only security": (
        make_spec(uid="u-3", container_security_context={"readOnlyRootFilesystem": True}),
        operator_config(DEFAULT_RUNTIME_CLASS_NAME="kata", MASTER_POD_MEM_LIMIT="4Gi"),
    ),
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", list(V2_REPRESENTATIVE))
def test_every_v2_object_is_valid_kubernetes(case: str, version: str):
    spec, cfg = V2_REPRESENTATIVE[case]

    for obj in build_children(spec, cfg):
        kubernetes_validate.validate(to_dict(obj), version, strict=True)
