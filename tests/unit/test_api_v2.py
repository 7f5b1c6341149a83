"""The v2 API: the CRD, upstream's v2 samples read into the model, defaults, rejections, render."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from reconciler.api.conversion import convert
from reconciler.cli import main
from reconciler.crds import ConversionWebhook, crd_manifest, crd_text
from reconciler.api.types import (
    EnvSource,
    OpenTelemetry,
    SecretMount,
    SpecError,
    TestSpec,
    UserVolumeMount,
)
from reconciler.api.parse import parse

DATA = Path(__file__).parent.parent / "data"
SAMPLES = DATA / "upstream-v2"
MINIMAL = {
    "apiVersion": "locust.io/v2",
    "kind": "LocustTest",
    "metadata": {"name": "demo.test"},
    "spec": {
        "image": "locustio/locust:2.43.1",
        "master": {"command": "-f /lotest/src/demo.py"},
        "worker": {"command": "-f /lotest/src/demo.py", "replicas": 2},
    },
}


def sample(file: str) -> dict[str, Any]:
    return yaml.safe_load((SAMPLES / file).read_text())


def parse_spec(**fields: Any) -> TestSpec:
    document = copy.deepcopy(MINIMAL)
    document["spec"].update(fields)
    return parse(document)


def served(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in crd["spec"]["versions"] if v["served"]}


# --- the CRD -------------------------------------------------------------------------------------


def test_v2_is_stored_and_v1_is_served_deprecated_with_upstreams_warning():
    crd = crd_manifest(ConversionWebhook("locust-operator", "ops", 443, b"PEM"))
    versions = {v["name"]: v for v in crd["spec"]["versions"]}

    assert set(versions) == {"v1", "v2"}
    assert [name for name, v in versions.items() if v["storage"]] == ["v2"]
    assert set(served(crd)) == {"v1", "v2"}
    assert versions["v1"]["deprecated"] is True
    assert versions["v1"]["deprecationWarning"] == (
        "locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2"
    )
    assert "deprecated" not in versions["v2"]


def test_both_versions_have_the_status_subresource_and_schema():
    versions = crd_manifest()["spec"]["versions"]
    v1, v2 = (v["schema"]["openAPIV3Schema"]["properties"]["status"] for v in versions)

    assert [v["subresources"] for v in versions] == [{"status": {}}, {"status": {}}]
    assert v1 == v2
    assert set(v2["properties"]) == {
        "phase",
        "observedGeneration",
        "expectedWorkers",
        "connectedWorkers",
        "startTime",
        "completionTime",
        "conditions",
        "results",
        "verdict",
    }
    assert v2["properties"]["phase"]["enum"] == ["Pending", "Running", "Succeeded", "Failed"]
    assert v2["properties"]["verdict"]["enum"] == ["Passed", "Failed", "Inconclusive"]
    conditions = v2["properties"]["conditions"]
    assert (conditions["x-kubernetes-list-type"], conditions["x-kubernetes-list-map-keys"]) == (
        "map",
        ["type"],
    )


def test_the_versions_do_not_share_schema_objects():
    crd = crd_manifest()
    v1, v2 = (v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"])

    v1["properties"]["status"]["properties"]["phase"]["enum"].append("Unknown")

    assert "Unknown" not in v2["properties"]["status"]["properties"]["phase"]["enum"]


def test_v2_prints_upstreams_columns():
    columns = served(crd_manifest())["v2"]["additionalPrinterColumns"]

    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("Phase", "string", ".status.phase", 0),
        ("Workers", "integer", ".spec.worker.replicas", 0),
        ("Connected", "integer", ".status.connectedWorkers", 0),
        ("Verdict", "string", ".status.verdict", 0),
        ("Image", "string", ".spec.image", 1),
        *RESULT_COLUMNS,
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


# What `kubectl get -o wide` adds from the results, in both versions.
RESULT_COLUMNS = [
    ("RPS", "number", ".status.results.rps", 1),
    ("Fail%", "number", ".status.results.failPercent", 1),
    ("P95", "number", ".status.results.p95Ms", 1),
]


def test_v1_prints_upstreams_columns_and_the_verdict_and_results():
    columns = served(crd_manifest(ConversionWebhook("op", "ops", 443, b"PEM")))["v1"][
        "additionalPrinterColumns"
    ]

    assert [(c["name"], c["type"], c["jsonPath"], c.get("priority", 0)) for c in columns] == [
        ("master_cmd", "string", ".spec.masterCommandSeed", 0),
        ("worker_replica_count", "integer", ".spec.workerReplicas", 0),
        ("Image", "string", ".spec.image", 0),
        ("Verdict", "string", ".status.verdict", 0),
        *RESULT_COLUMNS,
        ("Age", "date", ".metadata.creationTimestamp", 0),
    ]


def test_the_results_schema_types_counters_as_int64_and_bounds_the_entries():
    status = crd_manifest()["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]
    results = status["status"]["properties"]["results"]["properties"]
    entry = results["entries"]["items"]["properties"]

    assert results["entries"]["maxItems"] == 20
    for fields in (results, entry):
        for counter in ("requests", "failures"):
            assert (fields[counter]["type"], fields[counter]["format"]) == ("integer", "int64")
        for number in ("rps", "avgMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"):
            assert fields[number]["type"] == "number"
    assert set(results) == {
        *("observedAt", "state", "final", "users", "workers", "requests", "failures"),
        *("failRatio", "failPercent", "rps", "avgMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"),
        "entries",
    }
    assert set(entry) == {"method", "name", "requests", "failures", "rps"} | {
        "avgMs",
        "p50Ms",
        "p95Ms",
        "p99Ms",
        "maxMs",
    }


def test_without_a_webhook_only_v2_is_served_and_nothing_converts():
    crd = crd_manifest()

    assert set(served(crd)) == {"v2"}
    assert crd["spec"]["conversion"] == {"strategy": "None"}


def test_the_shipped_file_is_the_crd_without_a_webhook():
    shipped = yaml.safe_load(crd_text())

    assert "conversion" not in shipped["spec"]  # the apiserver defaults it to None
    assert {**shipped, "spec": {**shipped["spec"], "conversion": {"strategy": "None"}}} == (
        crd_manifest()
    )


def test_a_webhook_makes_the_apiserver_call_the_operator():
    crd = crd_manifest(ConversionWebhook("locust-operator", "ops", 443, b"-----BEGIN CERT"))

    assert crd["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {
                "service": {
                    "name": "locust-operator",
                    "namespace": "ops",
                    "port": 443,
                    "path": "/convert",
                },
                "caBundle": base64.b64encode(b"-----BEGIN CERT").decode(),
            },
        },
    }


@pytest.mark.parametrize("webhook", [None, ConversionWebhook("op", "ops", 443, b"PEM")])
def test_the_crd_is_a_valid_kubernetes_object(webhook: ConversionWebhook | None):
    kubernetes_validate.validate(crd_manifest(webhook), "1.29", strict=True)


# --- upstream's v2 samples -----------------------------------------------------------------------


def test_the_basic_sample_reads_with_the_defaults():
    spec = parse(sample("locusttest-basic.yaml"))

    assert (spec.name, spec.namespace, spec.api_version) == (
        "e2e-test-basic",
        "default",
        "locust.io/v2",
    )
    assert (spec.image, spec.image_pull_policy, spec.image_pull_secrets) == (
        "locustio/locust:latest",
        "IfNotPresent",
        (),
    )
    assert (spec.master.command_seed, spec.worker.command_seed, spec.worker_replicas) == (
        "-f /lotest/src/locustfile.py",
        "-f /lotest/src/locustfile.py",
        2,
    )
    assert (spec.config_map, spec.lib_config_map) == ("e2e-test-configmap", None)
    assert (spec.src_mount_path, spec.lib_mount_path) == ("/lotest/src", "/opt/locust/lib")
    assert (spec.autostart, spec.autoquit_seconds) == (True, 60)
    assert (spec.master.resources, spec.worker.resources) == (None, None)
    assert (spec.runtime_class_name, spec.open_telemetry) == (None, OpenTelemetry())


def test_the_main_sample_reads_roles_resources_and_node_selector():
    spec = parse(sample("locust_v2_locusttest.yaml"))

    assert spec.master.resources == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "1Gi"},
    }
    assert spec.worker.resources == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": "500m", "memory": "512Mi"},
    }
    assert (dict(spec.master.labels), dict(spec.worker.labels)) == (
        {"role": "master"},
        {"role": "worker"},
    )
    assert (spec.autostart, spec.autoquit_seconds) == (True, 60)
    assert dict(spec.node_selector) == {"workload-type": "testing"}
    assert spec.config_map == "my-locust-tests"


def test_the_env_sample_reads_env_sources_variables_and_secret_mounts():
    spec = parse(sample("locust_v2_locusttest_with_env.yaml"))

    assert spec.env_config_maps == (EnvSource("app-config", "APP_"),)
    assert spec.env_secrets == (EnvSource("api-credentials"),)
    assert spec.env_variables == (
        {"name": "TARGET_HOST", "value": "https://api.example.com"},
        {
            "name": "LOG_LEVEL",
            "valueFrom": {"configMapKeyRef": {"name": "app-config", "key": "log-level"}},
        },
    )
    assert spec.secret_mounts == (SecretMount("tls-certs", "/etc/locust/certs", read_only=True),)


def test_the_otel_sample_reads_every_setting():
    spec = parse(sample("locust_v2_locusttest_with_otel.yaml"))

    assert spec.open_telemetry == OpenTelemetry(
        enabled=True,
        endpoint="otel-collector.monitoring:4317",
        protocol="grpc",
        insecure=True,
        extra_env={
            "OTEL_RESOURCE_ATTRIBUTES": "service.name=locust-load-test,service.version=1.0.0",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    )


def test_the_security_sample_reads_both_contexts():
    spec = parse(sample("locust_v2_locusttest_with_security.yaml"))

    assert spec.pod_security_context == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert spec.container_security_context == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


def test_the_volumes_sample_reads_volumes_and_targeted_mounts():
    spec = parse(sample("locust_v2_locusttest_with_volumes.yaml"))

    assert spec.volumes == (
        {"name": "test-results", "emptyDir": {}},
        {"name": "shared-data", "emptyDir": {}},
        {"name": "custom-certs", "secret": {"secretName": "tls-certificates"}},
    )
    assert spec.volume_mounts == (
        UserVolumeMount({"name": "test-results", "mountPath": "/results"}, "master"),
        UserVolumeMount({"name": "shared-data", "mountPath": "/shared"}, "both"),
        UserVolumeMount(
            {"name": "custom-certs", "mountPath": "/etc/ssl/custom", "readOnly": True}, "worker"
        ),
    )


def test_the_scheduling_sample_keeps_the_kubernetes_affinity_and_tolerations():
    document = sample("locusttest-with-scheduling.yaml")

    spec = parse(document)

    assert spec.affinity == document["spec"]["scheduling"]["affinity"]
    assert spec.tolerations == tuple(document["spec"]["scheduling"]["tolerations"])
    assert dict(spec.node_selector) == {"workload-type": "performance-testing", "tier": "compute"}


def test_the_production_sample_reads():
    spec = parse(sample("locusttest_v2_production.yaml"))

    assert (spec.name, spec.worker_replicas) == ("production-load-test", 10)
    assert dict(spec.master.annotations) == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8089",
    }
    assert list(spec.affinity) == ["podAntiAffinity"]


@pytest.mark.parametrize(
    ("file", "runtime_class"),
    [("locusttest-runtimeclass-optout.yaml", ""), ("locusttest-basic.yaml", None)],
)
def test_an_empty_runtime_class_opts_out_and_none_means_the_default(file: str, runtime_class):
    assert parse(sample(file)).runtime_class_name == runtime_class


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (
            "locusttest-invalid.yaml",
            (
                "spec.worker.replicas: Invalid value: 0: spec.worker.replicas "
                "in body should be greater than or equal to 1"
            ),
        ),
        (
            "locusttest-invalid-runtimeclass.yaml",
            'spec.scheduling.runtimeClassName: Invalid value: "gVisor_Sandbox"',
        ),
    ],
)
def test_upstreams_invalid_samples_are_rejected(file: str, message: str):
    with pytest.raises(SpecError) as caught:
        parse(sample(file))

    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "file", sorted(p.name for p in SAMPLES.glob("locust*.yaml") if "invalid" not in p.name)
)
def test_every_valid_sample_survives_a_round_trip_through_v1_in_what_v1_can_say(file: str):
    document = sample(file)
    spec = parse(document)

    back = parse(convert(convert(document, "locust.io/v1"), "locust.io/v2"))

    assert (back.name, back.image, back.worker_replicas, back.config_map) == (
        spec.name,
        spec.image,
        spec.worker_replicas,
        spec.config_map,
    )
    assert (back.master.labels, back.worker.annotations) == (
        spec.master.labels,
        spec.worker.annotations,
    )


# --- defaults and settings -----------------------------------------------------------------------


def test_a_test_without_test_files_gets_the_default_mount_paths():
    spec = parse(MINIMAL)

    assert (spec.config_map, spec.lib_config_map) == (None, None)
    assert (spec.src_mount_path, spec.lib_mount_path) == ("/lotest/src", "/opt/locust/lib")


def test_autoquit_and_autostart_follow_the_master_settings():
    assert (
        parse_spec(master={"command": "c", "autoquit": {"enabled": False}}).autoquit_seconds
        is None
    )
    assert parse_spec(master={"command": "c", "autoquit": {"timeout": 0}}).autoquit_seconds == 0
    assert parse_spec(master={"command": "c", "autoquit": {}}).autoquit_seconds == 60
    assert parse_spec(master={"command": "c", "autostart": False}).autostart is False


def test_extra_args_and_role_resources_are_read_per_role():
    spec = parse_spec(
        master={
            "command": "c",
            "extraArgs": ["--csv", "/results/run"],
            "resources": {"limits": {"cpu": "2"}},
        },
        worker={"command": "c", "replicas": 1, "extraArgs": ["--processes", "4"], "resources": {}},
    )

    assert (spec.master.extra_args, spec.worker.extra_args) == (
        ("--csv", "/results/run"),
        ("--processes", "4"),
    )
    # Empty resources leave the operator's defaults in place, as upstream.
    assert (spec.master.resources, spec.worker.resources) == ({"limits": {"cpu": "2"}}, None)


def test_nested_defaults_are_applied():
    spec = parse_spec(
        testFiles={"libConfigMapRef": "lib", "srcMountPath": "/src"},
        env={
            "secretMounts": [{"name": "s", "mountPath": "/s"}],
            "configMapRefs": [{"name": "cm", "prefix": ""}],
        },
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        observability={"openTelemetry": {"enabled": True, "endpoint": "collector:4318"}},
        imagePullSecrets=[{"name": "registry"}],
    )

    assert (spec.config_map, spec.lib_config_map) == (None, "lib")
    assert (spec.src_mount_path, spec.lib_mount_path) == ("/src", "/opt/locust/lib")
    assert spec.secret_mounts == (SecretMount("s", "/s", read_only=True),)
    assert spec.env_config_maps == (EnvSource("cm", None),)
    assert spec.volume_mounts == (UserVolumeMount({"name": "data", "mountPath": "/data"}, "both"),)
    assert spec.open_telemetry == OpenTelemetry(
        enabled=True, endpoint="collector:4318", protocol="grpc", insecure=False
    )
    assert spec.image_pull_secrets == ("registry",)


def test_a_secret_mount_may_be_writable():
    spec = parse_spec(env={"secretMounts": [{"name": "s", "mountPath": "/s", "readOnly": False}]})

    assert spec.secret_mounts == (SecretMount("s", "/s", read_only=False),)


def test_the_spec_does_not_share_objects_with_the_document():
    document = sample("locusttest-with-scheduling.yaml")
    before = copy.deepcopy(document)

    spec = parse(document)
    document["spec"]["scheduling"]["affinity"]["nodeAffinity"] = {}

    assert spec.affinity == before["spec"]["scheduling"]["affinity"]
    assert parse(before) == spec


INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "no master": ({"master": None}, "spec.master: Invalid value: null"),
    "no worker command": ({"worker": {"replicas": 1}}, "spec.worker.command: Required value"),
    "no replicas (no v2 default)": (
        {"worker": {"command": "c"}},
        "spec.worker.replicas: Required value",
    ),
    "501 workers": (
        {"worker": {"command": "c", "replicas": 501}},
        (
            "spec.worker.replicas: Invalid value: 501: spec.worker.replicas in body should be "
            "less than or equal to 500"
        ),
    ),
    "negative autoquit": (
        {"master": {"command": "c", "autoquit": {"timeout": -1}}},
        "spec.master.autoquit.timeout: Invalid value: -1",
    ),
    "bad pull policy": (
        {"imagePullPolicy": "Sometimes"},
        'spec.imagePullPolicy: Unsupported value: "Sometimes"',
    ),
    "pull secret by name only": (
        {"imagePullSecrets": ["registry"]},
        'spec.imagePullSecrets[0]: Invalid value: "string"',
    ),
    "bad mount target": (
        {
            "volumes": [{"name": "d"}],
            "volumeMounts": [{"name": "d", "mountPath": "/d", "target": "all"}],
        },
        (
            'spec.volumeMounts[0].target: Unsupported value: "all": supported values: "master", '
            '"worker", "both"'
        ),
    ),
    "bad OTel protocol": (
        {
            "observability": {
                "openTelemetry": {"enabled": True, "endpoint": "c:4317", "protocol": "http"}
            }
        },
        'spec.observability.openTelemetry.protocol: Unsupported value: "http"',
    ),
    "runtime class too long": (
        {"scheduling": {"runtimeClassName": "a" * 254}},
        "spec.scheduling.runtimeClassName: Too long: may not be more than 253 bytes",
    ),
    "image too long": (
        {"image": "locustio/locust:" + "a" * 1024},
        "spec.image: Too long: may not be more than 1024 bytes",
    ),
    "command too long": (
        {"master": {"command": "-f a.py " * 1025}},
        "spec.master.command: Too long: may not be more than 8192 bytes",
    ),
    "too many labels": (
        {"worker": {"command": "a", "replicas": 1, "labels": {f"l{n}": "x" for n in range(65)}}},
        "spec.worker.labels: Too many: 65: must have at most 64 items",
    ),
    "empty source path": (
        {"testFiles": {"srcMountPath": ""}},
        (
            'spec.testFiles.srcMountPath: Invalid value: "": spec.testFiles.srcMountPath in body '
            "should be at least 1 chars long"
        ),
    ),
    "too many volumes": (
        {"volumes": [{"name": f"v{n}"} for n in range(65)]},
        "spec.volumes: Too many: 65: must have at most 64 items",
    ),
    "duplicate volume names": (
        {"volumes": [{"name": "data"}, {"name": "data", "emptyDir": {}}]},
        'spec.volumes[1]: Duplicate value: {"name":"data"}',
    ),
    "env variable without a name": (
        {"env": {"variables": [{"value": "x"}]}},
        "spec.env.variables[0].name: Required value",
    ),
    "secret mount without a path": (
        {"env": {"secretMounts": [{"name": "s"}]}},
        "spec.env.secretMounts[0].mountPath: Required value",
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_v2_test_is_rejected_naming_the_field(case: str):
    fields, message = INVALID[case]

    with pytest.raises(SpecError) as caught:
        parse_spec(**fields)

    assert str(caught.value).startswith(message)


def test_a_v2_test_needs_its_spec():
    document = {key: value for key, value in MINIMAL.items() if key != "spec"}

    with pytest.raises(SpecError, match=r"^spec: Required value$"):
        parse(document)


# --- render --------------------------------------------------------------------------------------


def render(capsys: pytest.CaptureFixture[str], file: Path) -> list[dict[str, Any]]:
    assert main(["render", str(file)]) == 0
    return list(yaml.safe_load_all(capsys.readouterr().out))


def test_render_prints_the_children_of_a_v2_test(capsys, tmp_path):
    document = copy.deepcopy(MINIMAL)
    document["spec"]["master"].update(autoquit={"enabled": False}, extraArgs=["--csv", "out"])
    document["spec"]["worker"]["extraArgs"] = ["--processes", "2"]
    file = tmp_path / "v2.yaml"
    file.write_text(yaml.safe_dump(document))

    service, master, worker = render(capsys, file)

    assert [(d["kind"], d["metadata"]["name"]) for d in (service, master, worker)] == [
        ("Service", "demo-test-master"),
        ("Job", "demo-test-master"),
        ("Job", "demo-test-worker"),
    ]
    assert worker["spec"]["parallelism"] == 2
    assert master["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "-f", "/lotest/src/demo.py", "--master", "--master-port=5557", "--expect-workers=2",
        "--autostart", "--enable-rebalancing", "--only-summary", "--csv", "out",
    ]  # fmt: skip
    assert worker["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["--processes", "2"]


def test_render_gives_a_v1_test_and_its_v2_conversion_the_same_objects(capsys, tmp_path):
    v1 = DATA / "upstream" / "locust-test-cr.yaml"
    v2 = tmp_path / "v2.yaml"
    v2.write_text(yaml.safe_dump(convert(yaml.safe_load(v1.read_text()), "locust.io/v2")))

    assert render(capsys, v1) == render(capsys, v2)


def test_render_rejects_a_v2_rule_violation_with_one_line(capsys, tmp_path):
    document = copy.deepcopy(MINIMAL)
    document["spec"]["observability"] = {"openTelemetry": {"enabled": True}}
    file = tmp_path / "otel.yaml"
    file.write_text(yaml.safe_dump(document))

    assert main(["render", str(file)]) == 2

    err = capsys.readouterr().err
    assert err == (
        f"locust-operator: {file}: spec.observability.openTelemetry.endpoint: "
        "observability.openTelemetry.endpoint is required when OpenTelemetry is enabled\n"
    )
