"""The objects built for a LocustTest, checked as a user sees them: the manifest's fields.

Cases follow upstream's parity checklist (Java LoadGenHelpers / ResourceCreationManager tests, Go
command / labels / service / job / config tests), with the decisions in docs/architecture.md
and the README where they differ.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from reconciler.config import OperatorConfig
from reconciler.resources import build_children, to_dict, to_yaml
from reconciler.resources.job import build_master_job, build_worker_job
from reconciler.resources.service import build_service
from reconciler.api.naming import child_names
from reconciler.resources.command import master_args, worker_args
from reconciler.resources.labels import owner_reference
from reconciler.api.types import RoleSpec, TestSpec
from reconciler.api.parse import parse

UPSTREAM = Path(__file__).parent.parent / "data" / "upstream"
DEFAULT_CONFIG = OperatorConfig.from_env({})
BASE_SPEC = TestSpec(
    name="demo.test",
    namespace="load",
    image="locustio/locust:2.31.0",
    master=RoleSpec(command_seed="--locustfile /lotest/src/demo.py --host https://example.com"),
    worker=RoleSpec(command_seed="--locustfile /lotest/src/demo.py"),
    worker_replicas=3,
    config_map="demo-scripts",
)
OPERATOR_LABEL_KEYS = ["app", "performance-test-name", "performance-test-pod-name", "managed-by"]
NO_RESOURCES = {
    f"POD_{kind}_{bound}": ""
    for kind in ("CPU", "MEM", "EPHEMERAL")
    for bound in ("REQUEST", "LIMIT")
}
KAFKA_NAMES = [
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_ENABLED",
    "KAFKA_SECURITY_PROTOCOL_CONFIG",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_JAAS_CONFIG",
    "KAFKA_USERNAME",
    "KAFKA_PASSWORD",
]


def make_spec(**changes: Any) -> TestSpec:
    return dataclasses.replace(BASE_SPEC, **changes)


def operator_config(**env: str) -> OperatorConfig:
    return OperatorConfig.from_env(env)


def master_pod(spec: TestSpec = BASE_SPEC, cfg: OperatorConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    return to_dict(build_master_job(spec, cfg))["spec"]["template"]


def worker_pod(spec: TestSpec = BASE_SPEC, cfg: OperatorConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    return to_dict(build_worker_job(spec, cfg))["spec"]["template"]


def both_pods(spec: TestSpec = BASE_SPEC, cfg: OperatorConfig = DEFAULT_CONFIG) -> list[dict]:
    return [master_pod(spec, cfg), worker_pod(spec, cfg)]


def locust_container(pod: dict[str, Any]) -> dict[str, Any]:
    [container] = pod["spec"]["containers"]
    return container


def node_selector_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    node_affinity = pod["spec"]["affinity"]["nodeAffinity"]
    return node_affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]


def sample(file: str) -> TestSpec:
    return parse(yaml.safe_load((UPSTREAM / file).read_text()))


# --- Names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "master", "worker"),
    [
        ("my-test", "my-test-master", "my-test-worker"),
        ("team.perftest", "team-perftest-master", "team-perftest-worker"),
        ("org.team.perf.test", "org-team-perf-test-master", "org-team-perf-test-worker"),
    ],
)
def test_child_names_replace_dots_with_dashes(name: str, master: str, worker: str):
    names = child_names(make_spec(name=name).name)

    assert (names.service, names.master_job, names.worker_job) == (master, master, worker)


def test_children_are_service_master_job_worker_job_in_that_order():
    spec = make_spec(name="team.perftest")

    children = [to_dict(obj) for obj in build_children(spec, DEFAULT_CONFIG)]

    assert [(obj["kind"], obj["metadata"]["name"]) for obj in children] == [
        ("Service", "team-perftest-master"),
        ("Job", "team-perftest-master"),
        ("Job", "team-perftest-worker"),
    ]
    assert {obj["metadata"]["namespace"] for obj in children} == {"load"}


# --- Ownership --------------------------------------------------------------------------------


def test_every_child_is_controlled_by_the_test_when_its_uid_is_known():
    spec = make_spec(uid="0b5e-42", api_version="locust.io/v1")

    for obj in build_children(spec, DEFAULT_CONFIG):
        assert to_dict(obj)["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "locust.io/v1",
                "kind": "LocustTest",
                "name": "demo.test",
                "uid": "0b5e-42",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_offline_render_has_no_owner_references():
    assert owner_reference(BASE_SPEC) is None
    for obj in build_children(BASE_SPEC, DEFAULT_CONFIG):
        assert "ownerReferences" not in to_dict(obj)["metadata"]


# --- Service ----------------------------------------------------------------------------------


def test_service_selects_the_master_pod_and_exposes_its_ports_but_not_the_web_ui():
    service = to_dict(build_service(BASE_SPEC, DEFAULT_CONFIG))

    assert service["spec"] == {
        "ports": [
            {"port": 5557, "name": "port5557", "protocol": "TCP"},
            {"port": 5558, "name": "port5558", "protocol": "TCP"},
            {"port": 9646, "name": "prometheus-metrics", "protocol": "TCP"},
        ],
        "selector": {"performance-test-pod-name": "demo-test-master"},
    }


def test_service_metrics_port_follows_the_exporter_port():
    service = to_dict(build_service(BASE_SPEC, operator_config(METRICS_EXPORTER_PORT="9999")))

    assert [port["port"] for port in service["spec"]["ports"]] == [5557, 5558, 9999]


def test_service_and_jobs_carry_the_operator_labels_of_their_role():
    service, master, worker = (to_dict(o) for o in build_children(BASE_SPEC, DEFAULT_CONFIG))
    master_labels = {
        "app": "demo.test",
        "performance-test-name": "demo.test",
        "performance-test-pod-name": "demo-test-master",
        "managed-by": "locust-k8s-operator",
    }

    assert service["metadata"]["labels"] == master_labels
    assert master["metadata"]["labels"] == master_labels
    assert worker["metadata"]["labels"] == {
        **master_labels,
        "performance-test-pod-name": "demo-test-worker",
    }


# --- Job spec ---------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [1, 3, 500])
def test_one_master_and_worker_replicas_run_in_parallel(replicas: int):
    spec = make_spec(worker_replicas=replicas)

    assert to_dict(build_master_job(spec, DEFAULT_CONFIG))["spec"]["parallelism"] == 1
    assert to_dict(build_worker_job(spec, DEFAULT_CONFIG))["spec"]["parallelism"] == replicas
    assert f"--expect-workers={replicas}" in master_args(spec, DEFAULT_CONFIG)


def test_jobs_never_retry_and_leave_completions_unset():
    for job in build_children(BASE_SPEC, DEFAULT_CONFIG)[1:]:
        job_spec = to_dict(job)["spec"]
        assert job_spec["backoffLimit"] == 0
        assert "completions" not in job_spec


@pytest.mark.parametrize(("env", "expected"), [("120", 120), ("0", 0)])
def test_jobs_get_the_configured_ttl_including_zero(env: str, expected: int):
    cfg = operator_config(JOB_TTL_SECONDS_AFTER_FINISHED=env)

    for job in build_children(BASE_SPEC, cfg)[1:]:
        assert to_dict(job)["spec"]["ttlSecondsAfterFinished"] == expected


def test_jobs_have_no_ttl_unless_configured():
    for job in build_children(BASE_SPEC, DEFAULT_CONFIG)[1:]:
        assert "ttlSecondsAfterFinished" not in to_dict(job)["spec"]


# --- Pod spec ---------------------------------------------------------------------------------


def test_pods_never_restart_skip_service_links_and_use_the_runtime_default_seccomp_profile():
    for pod in both_pods():
        assert pod["spec"]["restartPolicy"] == "Never"
        assert pod["spec"]["enableServiceLinks"] is False
        assert pod["spec"]["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}


def test_master_pod_runs_locust_with_the_exporter_as_a_native_sidecar():
    pod = master_pod()

    assert [c["name"] for c in pod["spec"]["containers"]] == ["demo-test-master"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["locust-metrics-exporter"]
    assert pod["spec"]["initContainers"][0]["restartPolicy"] == "Always"


def test_worker_pod_runs_locust_alone():
    pod = worker_pod()

    assert [c["name"] for c in pod["spec"]["containers"]] == ["demo-test-worker"]
    assert "initContainers" not in pod["spec"]


# --- Labels and annotations -------------------------------------------------------------------


def test_pod_labels_are_the_operator_labels_then_the_users():
    spec = make_spec(
        master=dataclasses.replace(BASE_SPEC.master, labels={"team": "perf"}),
        worker=dataclasses.replace(BASE_SPEC.worker, labels={"tier": "load"}),
    )
    master, worker = both_pods(spec)

    assert master["metadata"]["labels"] == {
        "app": "demo.test",
        "performance-test-name": "demo.test",
        "performance-test-pod-name": "demo-test-master",
        "managed-by": "locust-k8s-operator",
        "team": "perf",
    }
    assert list(worker["metadata"]["labels"]) == [*OPERATOR_LABEL_KEYS, "tier"]
    assert worker["metadata"]["labels"]["performance-test-pod-name"] == "demo-test-worker"


def test_user_labels_cannot_replace_the_selector_and_managed_by_labels():
    hijack = {"performance-test-pod-name": "other", "managed-by": "someone-else", "app": "mine"}
    spec = make_spec(
        master=dataclasses.replace(BASE_SPEC.master, labels=hijack),
        worker=dataclasses.replace(BASE_SPEC.worker, labels=hijack),
    )
    master, worker = both_pods(spec)

    assert master["metadata"]["labels"]["performance-test-pod-name"] == "demo-test-master"
    assert worker["metadata"]["labels"]["performance-test-pod-name"] == "demo-test-worker"
    for pod in (master, worker):
        assert pod["metadata"]["labels"]["managed-by"] == "locust-k8s-operator"
        assert pod["metadata"]["labels"]["app"] == "mine"  # not protected, as upstream


def test_prometheus_annotations_are_on_the_master_pod_only_with_the_exporter_port():
    master, worker = both_pods(cfg=operator_config(METRICS_EXPORTER_PORT="9100"))

    assert master["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": "9100",
    }
    assert "annotations" not in worker["metadata"]


def test_user_annotations_are_merged_and_may_override_the_scrape_settings():
    spec = make_spec(
        master=dataclasses.replace(
            BASE_SPEC.master, annotations={"prometheus.io/scrape": "false", "owner": "perf"}
        ),
        worker=dataclasses.replace(BASE_SPEC.worker, annotations={"owner": "perf"}),
    )
    master, worker = both_pods(spec)

    assert master["metadata"]["annotations"]["prometheus.io/scrape"] == "false"
    assert master["metadata"]["annotations"]["owner"] == "perf"
    assert worker["metadata"]["annotations"] == {"owner": "perf"}


# --- Locust container -------------------------------------------------------------------------


def test_locust_container_runs_the_test_image_with_args_not_command():
    for pod, name in zip(both_pods(), ["demo-test-master", "demo-test-worker"], strict=True):
        container = locust_container(pod)
        assert container["name"] == name
        assert container["image"] == "locustio/locust:2.31.0"
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert "command" not in container
        assert container["args"][:2] == ["--locustfile", "/lotest/src/demo.py"]
        assert "securityContext" not in container


def test_a_failed_locust_container_reports_the_tail_of_its_log():
    # Locust writes no termination message file; without this a failed pod's status is silent.
    for pod in both_pods():
        assert locust_container(pod)["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "terminationMessagePolicy" not in master_pod()["spec"]["initContainers"][0]


def test_container_ports_are_unnamed_master_5557_5558_8089_worker_8080():
    master, worker = both_pods()

    assert locust_container(master)["ports"] == [
        {"containerPort": 5557},
        {"containerPort": 5558},
        {"containerPort": 8089},
    ]
    assert locust_container(worker)["ports"] == [{"containerPort": 8080}]


def test_both_containers_get_the_seven_kafka_variables_in_upstream_order():
    cfg = operator_config(
        KAFKA_BOOTSTRAP_SERVERS="kafka:9093",
        KAFKA_SECURITY_ENABLED="true",
        KAFKA_SECURITY_PROTOCOL_CONFIG="SASL_SSL",
        KAFKA_SASL_MECHANISM="PLAIN",
        KAFKA_SASL_JAAS_CONFIG="jaas",
        KAFKA_USERNAME="locust",
        KAFKA_PASSWORD="s3cret",
    )

    values = ["kafka:9093", "true", "SASL_SSL", "PLAIN", "jaas", "locust", "s3cret"]

    for pod in both_pods(cfg=cfg):
        env = locust_container(pod)["env"]
        assert [(var["name"], var["value"]) for var in env] == list(
            zip(KAFKA_NAMES, values, strict=True)
        )


def test_default_kafka_variables_are_present_with_upstream_defaults():
    values = ["localhost:9092", "false", "SASL_PLAINTEXT", "SCRAM-SHA-512", "", "", ""]

    env = locust_container(worker_pod())["env"]

    assert [(var["name"], var["value"]) for var in env] == list(
        zip(KAFKA_NAMES, values, strict=True)
    )


def test_locust_resources_default_to_upstream_requests_and_limits():
    for pod in both_pods():
        assert locust_container(pod)["resources"] == {
            "limits": {"cpu": "1000m", "memory": "1024Mi", "ephemeral-storage": "50M"},
            "requests": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "30M"},
        }


def test_an_empty_cpu_limit_leaves_the_cpu_unbound():
    for pod in both_pods(cfg=operator_config(POD_CPU_LIMIT="")):
        limits = locust_container(pod)["resources"]["limits"]
        assert "cpu" not in limits
        assert limits["memory"] == "1024Mi"


def test_all_resource_settings_empty_leaves_resources_out():
    for pod in both_pods(cfg=operator_config(**NO_RESOURCES)):
        assert "resources" not in locust_container(pod)


def test_empty_requests_leave_only_limits():
    cfg = operator_config(POD_CPU_REQUEST="", POD_MEM_REQUEST="", POD_EPHEMERAL_REQUEST="")

    resources = locust_container(master_pod(cfg=cfg))["resources"]
    assert list(resources) == ["limits"]


# --- Arguments --------------------------------------------------------------------------------


def test_upstream_worked_example_args_come_out_exactly():
    spec = sample("locust-test-cr.yaml")

    assert " ".join(master_args(spec, DEFAULT_CONFIG)) == (
        "--locustfile /lotest/src/locust_project_demo.py --host https://docs.locust.io "
        "--users 100 --spawn-rate 10 --run-time 3m --master --master-port=5557 "
        "--expect-workers=3 --autostart --autoquit 60 --enable-rebalancing --only-summary"
    )
    assert worker_args(spec) == [
        "--locustfile",
        "/lotest/src/locust_project_demo.py",
        "--worker",
        "--master-port=5557",
        "--master-host=demo-test-master",
    ]
    assert locust_container(master_pod(spec))["args"] == master_args(spec, DEFAULT_CONFIG)
    assert locust_container(worker_pod(spec))["args"] == worker_args(spec)


def test_autoquit_and_its_timeout_are_separate_args():
    args = master_args(BASE_SPEC, DEFAULT_CONFIG)

    assert args[args.index("--autoquit") + 1] == "60"


def test_seed_is_split_on_any_whitespace_run():
    spec = make_spec(
        master=RoleSpec(command_seed="  -f  /a.py\t--users 10\n--run-time   1m  "),
        worker=RoleSpec(command_seed="\n-f\t\t/a.py  "),
    )

    seed = ["-f", "/a.py", "--users", "10", "--run-time", "1m"]
    assert master_args(spec, DEFAULT_CONFIG)[:6] == seed
    assert worker_args(spec)[:3] == ["-f", "/a.py", "--worker"]
    assert "" not in master_args(spec, DEFAULT_CONFIG) + worker_args(spec)


def test_autostart_off_and_autoquit_off_drop_their_flags():
    args = master_args(make_spec(autostart=False, autoquit_seconds=None), DEFAULT_CONFIG)

    assert "--autostart" not in args
    assert "--autoquit" not in args
    assert args[-2:] == ["--enable-rebalancing", "--only-summary"]


def test_custom_autoquit_timeout_is_used():
    args = master_args(make_spec(autoquit_seconds=300), DEFAULT_CONFIG)

    assert args[args.index("--autoquit") + 1] == "300"


def test_extra_args_come_last_so_they_win_over_operator_flags():
    spec = make_spec(
        master=dataclasses.replace(BASE_SPEC.master, extra_args=("--master-port=9999",)),
        worker=dataclasses.replace(BASE_SPEC.worker, extra_args=("--loglevel", "DEBUG")),
    )

    master = master_args(spec, DEFAULT_CONFIG)
    assert master[-3:] == ["--enable-rebalancing", "--only-summary", "--master-port=9999"]
    assert master.index("--master-port=5557") < master.index("--master-port=9999")
    assert worker_args(spec)[-3:] == ["--master-host=demo-test-master", "--loglevel", "DEBUG"]


# --- Metrics exporter -------------------------------------------------------------------------


def test_exporter_sidecar_uses_the_configured_image_port_and_resources():
    cfg = operator_config(
        METRICS_EXPORTER_IMAGE="registry.local/exporter:1.0",
        METRICS_EXPORTER_IMAGE_PULL_POLICY="Always",
        METRICS_EXPORTER_PORT="9100",
        METRICS_EXPORTER_CPU_LIMIT="",
    )
    [exporter] = master_pod(cfg=cfg)["spec"]["initContainers"]

    assert exporter["image"] == "registry.local/exporter:1.0"
    assert exporter["imagePullPolicy"] == "Always"
    assert exporter["ports"] == [{"containerPort": 9100}]
    assert exporter["env"] == [
        {"name": "LOCUST_EXPORTER_URI", "value": "http://localhost:8089"},
        {"name": "LOCUST_EXPORTER_WEB_LISTEN_ADDRESS", "value": ":9100"},
    ]
    assert exporter["resources"] == {
        "limits": {"memory": "128Mi", "ephemeral-storage": "50M"},
        "requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "30M"},
    }


def test_exporter_defaults_are_small_and_pulled_if_not_present():
    [exporter] = master_pod()["spec"]["initContainers"]

    assert exporter["image"] == "containersol/locust_exporter:v0.5.0"
    assert exporter["imagePullPolicy"] == "IfNotPresent"
    assert exporter["resources"] == {
        "limits": {"cpu": "250m", "memory": "128Mi", "ephemeral-storage": "50M"},
        "requests": {"cpu": "100m", "memory": "64Mi", "ephemeral-storage": "30M"},
    }


def test_exporter_is_hardened():
    [exporter] = master_pod()["spec"]["initContainers"]

    assert exporter["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    }


# --- Volumes ----------------------------------------------------------------------------------


def test_test_config_map_is_mounted_writable_at_lotest_src_under_the_pod_name():
    for pod, name in zip(both_pods(), ["demo-test-master", "demo-test-worker"], strict=True):
        assert pod["spec"]["volumes"] == [{"name": name, "configMap": {"name": "demo-scripts"}}]
        assert locust_container(pod)["volumeMounts"] == [
            {"mountPath": "/lotest/src", "name": name, "readOnly": False}
        ]


def test_without_config_maps_there_are_no_volumes_or_mounts():
    for pod in both_pods(make_spec(config_map=None)):
        assert "volumes" not in pod["spec"]
        assert "volumeMounts" not in locust_container(pod)


def test_lib_config_map_alone_is_mounted_at_opt_locust_lib():
    for pod in both_pods(make_spec(config_map=None, lib_config_map="helpers")):
        assert pod["spec"]["volumes"] == [{"name": "locust-lib", "configMap": {"name": "helpers"}}]
        assert locust_container(pod)["volumeMounts"] == [
            {"mountPath": "/opt/locust/lib", "name": "locust-lib", "readOnly": False}
        ]


def test_test_files_come_before_lib_files():
    pod = worker_pod(make_spec(lib_config_map="helpers"))

    assert [v["name"] for v in pod["spec"]["volumes"]] == ["demo-test-worker", "locust-lib"]
    assert [m["mountPath"] for m in locust_container(pod)["volumeMounts"]] == [
        "/lotest/src",
        "/opt/locust/lib",
    ]


# --- Image pulling ----------------------------------------------------------------------------


def test_pull_policy_and_secrets_reach_both_pods():
    spec = make_spec(
        image_pull_policy="Always",
        image_pull_secrets=("my-private-registry-secret", "gcr-cred-secret"),
    )

    for pod in both_pods(spec):
        assert locust_container(pod)["imagePullPolicy"] == "Always"
        assert pod["spec"]["imagePullSecrets"] == [
            {"name": "my-private-registry-secret"},
            {"name": "gcr-cred-secret"},
        ]


def test_no_pull_secrets_leaves_the_field_out():
    for pod in both_pods():
        assert "imagePullSecrets" not in pod["spec"]


# --- Scheduling -------------------------------------------------------------------------------

SCHEDULED = make_spec(
    affinity={
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["load"]}]}
                ]
            }
        }
    },
    tolerations=(
        {"key": "taint-A", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
        {"key": "taint-B", "operator": "Exists", "effect": "NoExecute"},
    ),
)


def test_affinity_and_tolerations_are_ignored_unless_injection_is_enabled():
    for pod in both_pods(SCHEDULED):
        assert "affinity" not in pod["spec"]
        assert "tolerations" not in pod["spec"]


def test_affinity_is_injected_when_enabled():
    cfg = operator_config(ENABLE_AFFINITY_CR_INJECTION="true")

    for pod in both_pods(SCHEDULED, cfg):
        assert node_selector_terms(pod)[0]["matchExpressions"] == [
            {"key": "pool", "operator": "In", "values": ["load"]}
        ]
        assert "tolerations" not in pod["spec"]


def test_tolerations_are_injected_when_enabled_exists_without_a_value():
    cfg = operator_config(ENABLE_TAINT_TOLERATIONS_CR_INJECTION="true")

    for pod in both_pods(SCHEDULED, cfg):
        assert pod["spec"]["tolerations"] == [
            {"effect": "NoSchedule", "key": "taint-A", "operator": "Equal", "value": "ssd"},
            {"effect": "NoExecute", "key": "taint-B", "operator": "Exists"},
        ]
        assert "affinity" not in pod["spec"]


def test_enabled_injection_without_scheduling_in_the_test_adds_nothing():
    cfg = operator_config(
        ENABLE_AFFINITY_CR_INJECTION="true", ENABLE_TAINT_TOLERATIONS_CR_INJECTION="true"
    )

    for pod in both_pods(cfg=cfg):
        assert "affinity" not in pod["spec"]
        assert "tolerations" not in pod["spec"]


def test_sample_affinity_map_becomes_one_in_expression_per_node_label():
    cfg = operator_config(ENABLE_AFFINITY_CR_INJECTION="true")

    pod = worker_pod(sample("locust-test-cr.yaml"), cfg)

    assert node_selector_terms(pod)[0]["matchExpressions"][0] == {
        "key": "organisation.com/nodeAffinityLabel1",
        "operator": "In",
        "values": ["locust-cloud-tests"],
    }


# --- Validity against the Kubernetes API ------------------------------------------------------

# Native sidecars (an init container's restartPolicy) need Kubernetes 1.29, upstream's minimum.
KUBERNETES_VERSIONS = ["1.29", kubernetes_validate.latest_version()]
REPRESENTATIVE = {
    "minimal": (make_spec(config_map=None), DEFAULT_CONFIG),
    "owned, lib only": (
        make_spec(uid="u-1", config_map=None, lib_config_map="lib"),
        DEFAULT_CONFIG,
    ),
    "upstream sample, everything on": (
        dataclasses.replace(sample("locust-test-cr.yaml"), uid="u-2", lib_config_map="lib"),
        operator_config(
            ENABLE_AFFINITY_CR_INJECTION="true",
            ENABLE_TAINT_TOLERATIONS_CR_INJECTION="true",
            JOB_TTL_SECONDS_AFTER_FINISHED="0",
        ),
    ),
    "500 workers, no resources": (
        make_spec(worker_replicas=500),
        operator_config(**NO_RESOURCES),
    ),
    "go sample with labels": (sample("v1-cr.yaml"), operator_config(METRICS_EXPORTER_PORT="9100")),
}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("case", list(REPRESENTATIVE))
def test_every_built_object_is_valid_kubernetes(case: str, version: str):
    spec, cfg = REPRESENTATIVE[case]

    for obj in build_children(spec, cfg):
        kubernetes_validate.validate(to_dict(obj), version, strict=True)


# --- YAML -------------------------------------------------------------------------------------


def test_yaml_is_one_document_per_object_in_kubernetes_key_order():
    objects = build_children(BASE_SPEC, DEFAULT_CONFIG)

    text = to_yaml(objects)

    documents = list(yaml.safe_load_all(text))
    assert documents == [to_dict(obj) for obj in objects]
    assert [list(doc)[:4] for doc in documents] == [["apiVersion", "kind", "metadata", "spec"]] * 3
    # Not sorted alphabetically: a container reads from its name, not from its args.
    assert next(iter(locust_container(documents[1]["spec"]["template"]))) == "name"
    assert text.count("\n---\n") == 2
    assert "null" not in text
