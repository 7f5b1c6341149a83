"""v1 ⇄ v2 conversion (upstream's `locusttest_conversion_test.go`); ConversionReview answers."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from reconciler import cli
from reconciler.api import schema
from reconciler.api.conversion import ConversionError, convert, review
from reconciler.api.parse import parse
from reconciler.crds import version_schema

DATA = Path(__file__).parent.parent / "data"
V1, V2 = "locust.io/v1", "locust.io/v2"
V1_AUTOQUIT = {"enabled": True, "timeout": 60}


def v1_test(name: str = "test-locust", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V1,
        "kind": "LocustTest",
        "metadata": {"name": name},
        "spec": {
            "masterCommandSeed": "locust",
            "workerCommandSeed": "locust",
            "workerReplicas": 1,
            "image": "locustio/locust:latest",
            **spec,
        },
    }


def v2_test(name: str = "test-locust", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": V2,
        "kind": "LocustTest",
        "metadata": {"name": name},
        "spec": {
            "image": "locustio/locust:latest",
            "master": {"command": "locust"},
            "worker": {"command": "locust", "replicas": 1},
            **spec,
        },
    }


def node_affinity(*expressions: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": list(expressions)}]
            }
        }
    }


# --- v1 → v2 -------------------------------------------------------------------------------------


def test_a_full_v1_test_converts_to_v2():
    v1 = v1_test(
        masterCommandSeed="locust -f /lotest/src/locustfile.py",
        workerCommandSeed="locust -f /lotest/src/locustfile.py",
        workerReplicas=10,
        image="locustio/locust:2.43.1",
        imagePullPolicy="IfNotPresent",
        imagePullSecrets=["my-registry-secret"],
        configMap="locust-tests",
        libConfigMap="locust-lib",
        labels={"master": {"app": "locust-master"}, "worker": {"app": "locust-worker"}},
        annotations={"master": {"prometheus.io/scrape": "true"}},
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "locust", "effect": "NoSchedule"}
        ],
    )
    v1["metadata"]["namespace"] = "default"

    v2 = convert(v1, V2)

    assert v2 == {
        "apiVersion": V2,
        "kind": "LocustTest",
        "metadata": {"name": "test-locust", "namespace": "default"},
        "spec": {
            "image": "locustio/locust:2.43.1",
            "imagePullPolicy": "IfNotPresent",
            "imagePullSecrets": [{"name": "my-registry-secret"}],
            "master": {
                "command": "locust -f /lotest/src/locustfile.py",
                "labels": {"app": "locust-master"},
                "annotations": {"prometheus.io/scrape": "true"},
                "autostart": True,
                "autoquit": {"enabled": True, "timeout": 60},
            },
            "worker": {
                "command": "locust -f /lotest/src/locustfile.py",
                "replicas": 10,
                "labels": {"app": "locust-worker"},
            },
            "testFiles": {"configMapRef": "locust-tests", "libConfigMapRef": "locust-lib"},
            "scheduling": {
                "tolerations": [
                    {
                        "key": "dedicated",
                        "operator": "Equal",
                        "value": "locust",
                        "effect": "NoSchedule",
                    }
                ]
            },
        },
    }


def test_a_minimal_v1_test_gets_no_optional_v2_blocks():
    spec = convert(v1_test(), V2)["spec"]

    assert (spec["master"]["command"], spec["worker"]) == (
        "locust",
        {"command": "locust", "replicas": 1},
    )
    assert set(spec) == {"image", "master", "worker"}


def test_empty_v1_fields_are_left_out():
    spec = convert(
        v1_test(
            labels={},
            annotations={"master": {}},
            imagePullSecrets=[],
            tolerations=[],
            configMap="",
        ),
        V2,
    )["spec"]

    assert set(spec) == {"image", "master", "worker"}
    assert set(spec["master"]) == {"command", "autostart", "autoquit"}


def test_v1_node_affinity_becomes_one_term_of_in_expressions():
    v1 = v1_test(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "node-type": "high-cpu",
                    "zone": "eu-west-1a",
                }
            }
        }
    )

    scheduling = convert(v1, V2)["spec"]["scheduling"]

    assert scheduling == {
        "affinity": node_affinity(
            {"key": "node-type", "operator": "In", "values": ["high-cpu"]},
            {"key": "zone", "operator": "In", "values": ["eu-west-1a"]},
        )
    }


@pytest.mark.parametrize(
    "affinity",
    [
        {},
        {"nodeAffinity": {}},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
    ],
)
def test_an_empty_v1_affinity_constrains_nothing(affinity: dict[str, Any]):
    assert convert(v1_test(affinity=affinity), V2)["spec"]["scheduling"] == {}


def test_an_exists_toleration_loses_the_value_kubernetes_would_reject():
    v1 = v1_test(
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "locust", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Exists", "value": "ignored", "effect": "NoExecute"},
        ]
    )

    assert convert(v1, V2)["spec"]["scheduling"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "locust", "effect": "NoSchedule"},
        {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
    ]


# --- v2 → v1 -------------------------------------------------------------------------------------


def test_a_full_v2_test_converts_to_v1():
    v2 = v2_test(
        image="locustio/locust:2.43.1",
        imagePullPolicy="Always",
        imagePullSecrets=[{"name": "my-secret"}],
        master={
            "command": "locust -f /lotest/src/locustfile.py",
            "labels": {"tier": "master"},
            "annotations": {"desc": "master-desc"},
        },
        worker={
            "command": "locust -f /lotest/src/locustfile.py",
            "replicas": 5,
            "labels": {"tier": "worker"},
        },
        testFiles={"configMapRef": "tests-cm", "libConfigMapRef": "lib-cm"},
        scheduling={
            "tolerations": [
                {
                    "key": "gpu",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 30,
                }
            ]
        },
    )

    assert convert(v2, V1)["spec"] == {
        "masterCommandSeed": "locust -f /lotest/src/locustfile.py",
        "workerCommandSeed": "locust -f /lotest/src/locustfile.py",
        "workerReplicas": 5,
        "image": "locustio/locust:2.43.1",
        "imagePullPolicy": "Always",
        "imagePullSecrets": ["my-secret"],
        "configMap": "tests-cm",
        "libConfigMap": "lib-cm",
        "labels": {"master": {"tier": "master"}, "worker": {"tier": "worker"}},
        "annotations": {"master": {"desc": "master-desc"}},
        "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}],
    }


def test_a_minimal_v2_test_gives_only_the_required_v1_fields():
    assert convert(v2_test(), V1)["spec"] == {
        "masterCommandSeed": "locust",
        "workerCommandSeed": "locust",
        "workerReplicas": 1,
        "image": "locustio/locust:latest",
    }


def test_v2_only_fields_are_lost():
    v2 = v2_test(
        master={
            "command": "locust",
            "extraArgs": ["--headless"],
            "autostart": False,
            "autoquit": {"enabled": False},
            "resources": {"limits": {"cpu": "2"}},
        },
        worker={"command": "locust", "replicas": 3, "extraArgs": ["--processes", "4"]},
        testFiles={
            "configMapRef": "tests",
            "srcMountPath": "/custom/path",
            "libMountPath": "/custom/lib",
        },
        scheduling={"nodeSelector": {"zone": "us-west"}, "runtimeClassName": "gvisor"},
        env={"variables": [{"name": "DEBUG", "value": "true"}]},
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data"}],
        security={"podSecurityContext": {"runAsNonRoot": True}},
        observability={"openTelemetry": {"enabled": True, "endpoint": "otel:4317"}},
    )

    assert convert(v2, V1)["spec"] == {
        "masterCommandSeed": "locust",
        "workerCommandSeed": "locust",
        "workerReplicas": 3,
        "image": "locustio/locust:latest",
        "configMap": "tests",
    }


def test_only_in_expressions_with_values_survive_in_v1_keeping_the_first_value():
    v2 = v2_test(
        scheduling={
            "affinity": node_affinity(
                {"key": "node-type", "operator": "In", "values": ["performance", "high-cpu"]},
                {"key": "lifecycle", "operator": "NotIn", "values": ["spot"]},
            )
        }
    )

    assert convert(v2, V1)["spec"]["affinity"] == {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"node-type": "performance"}
        }
    }


@pytest.mark.parametrize(
    "affinity",
    [
        {},
        {"nodeAffinity": {}},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}},
        node_affinity(
            {"key": "node-type", "operator": "NotIn", "values": ["spot"]},
            {"key": "gpu", "operator": "Exists"},
        ),
        node_affinity({"key": "node-type", "operator": "In"}),
        {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    ],
    ids=["empty", "no node affinity", "no terms", "no In", "In without values", "pod affinity"],
)
def test_an_affinity_v1_cannot_say_is_dropped_not_emptied(affinity: dict[str, Any]):
    # An empty v1 affinity would read as "no constraint", inverting the v2 rule.
    assert "affinity" not in convert(v2_test(scheduling={"affinity": affinity}), V1)["spec"]


# --- both ways -----------------------------------------------------------------------------------


def test_a_v1_test_survives_a_round_trip_through_v2():
    original = v1_test(
        "roundtrip-test",
        workerReplicas=3,
        imagePullPolicy="Never",
        imagePullSecrets=["secret1", "secret2", "secret3"],
        configMap="my-tests",
        libConfigMap="my-lib",
        labels={"master": {"env": "test"}, "worker": {"env": "test", "component": "worker"}},
        annotations={"master": {"note": "m"}, "worker": {"note": "w"}},
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"node-type": "high-cpu"}
            }
        },
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "locust", "effect": "NoSchedule"},
            {"key": "gpu", "operator": "Exists", "effect": "NoExecute"},
        ],
    )
    original["metadata"].update(
        namespace="test-ns", uid="u-1", resourceVersion="7", labels={"team": "a"}
    )
    original["status"] = {"phase": "Running", "connectedWorkers": 3}

    assert convert(convert(original, V2), V1) == original


def test_metadata_and_status_are_copied_as_they_are():
    # What upstream makes of a v1 test: v1 says all of it, so the v1 view needs no annotation.
    v2 = v2_test(master={"command": "locust", "autostart": True, "autoquit": V1_AUTOQUIT})
    v2["metadata"] = {
        "name": "t",
        "namespace": "ns",
        "uid": "u",
        "generation": 2,
        "annotations": {"a": "b"},
    }
    v2["status"] = {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}]}

    v1 = convert(v2, V1)

    assert (v1["metadata"], v1["status"]) == (v2["metadata"], v2["status"])
    assert v1["metadata"] is not v2["metadata"]


def test_conversion_leaves_its_input_unchanged():
    v1 = v1_test(
        labels={"master": {"a": "b"}},
        tolerations=[{"key": "gpu", "operator": "Exists", "value": "x", "effect": "NoExecute"}],
    )
    before = copy.deepcopy(v1)

    convert(v1, V2)["spec"]["master"]["labels"]["a"] = "changed"

    assert v1 == before


def test_converting_to_the_same_version_is_a_copy():
    v2 = v2_test()

    assert convert(v2, V2) == v2


@pytest.mark.parametrize(
    ("obj", "to", "message"),
    [
        ({**v2_test(), "kind": "Job"}, V1, "expected a LocustTest, got kind 'Job'"),
        ({**v2_test(), "apiVersion": "locust.io/v3"}, V1, "unsupported apiVersion 'locust.io/v3'"),
        (v2_test(), "locust.io/v3", "unsupported desired apiVersion 'locust.io/v3'"),
        ({**v2_test(), "spec": "text"}, V1, "spec must be an object"),
    ],
)
def test_what_cannot_be_converted_says_why(obj: dict[str, Any], to: str, message: str):
    with pytest.raises(ConversionError, match=f"^{re.escape(message)}$"):
        convert(obj, to)


# --- the reconciler sees one test, whichever version it was written in ---------------------------


@pytest.mark.parametrize("sample", ["locust-test-cr.yaml", "locusttest-basic.yaml", "v1-cr.yaml"])
def test_upstream_v1_samples_convert_to_valid_v2_with_the_same_meaning(sample: str):
    v1 = yaml.safe_load((DATA / "upstream" / sample).read_text())

    as_v1, as_v2 = parse(v1), parse(convert(v1, V2))

    assert as_v1.api_version == V1
    assert dataclasses.replace(as_v1, api_version=V2) == as_v2


def test_the_upstream_v2_conversion_sample_reads_as_v1():
    v2 = yaml.safe_load((DATA / "upstream-v2" / "v2-cr.yaml").read_text())

    v1 = convert(v2, V1)

    assert v1["spec"] == {
        "masterCommandSeed": "locust",
        "workerCommandSeed": "locust",
        "workerReplicas": 3,
        "image": "locustio/locust:2.20.0",
        "configMap": "e2e-test-scripts",
        "labels": {"master": {"app": "locust-master"}, "worker": {"app": "locust-worker"}},
    }
    assert parse(v1).worker_replicas == 3


# --- ConversionReview ----------------------------------------------------------------------------


def conversion_review(desired: str, *objects: dict[str, Any], uid: str = "705ab4f5") -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired, "objects": list(objects)},
    }


def test_a_review_converts_every_object_in_order_and_echoes_the_uid():
    first, second = v1_test("first"), v1_test("second", workerReplicas=4)

    answer = review(conversion_review(V2, first, second))

    assert answer["apiVersion"] == "apiextensions.k8s.io/v1"
    assert answer["kind"] == "ConversionReview"
    assert answer["response"]["uid"] == "705ab4f5"
    assert answer["response"]["result"] == {"status": "Success"}
    assert answer["response"]["convertedObjects"] == [convert(first, V2), convert(second, V2)]


def test_a_review_with_nothing_to_convert_succeeds():
    answer = review(conversion_review(V1))

    assert answer["response"] == {
        "uid": "705ab4f5",
        "convertedObjects": [],
        "result": {"status": "Success"},
    }


def test_a_review_that_cannot_convert_an_object_fails_saying_why():
    answer = review(conversion_review("locust.io/v3", v2_test()))

    assert answer["response"] == {
        "uid": "705ab4f5",
        "result": {"status": "Failed", "message": "unsupported desired apiVersion 'locust.io/v3'"},
    }


@pytest.mark.parametrize(
    ("request_body", "uid", "message"),
    [
        (
            {**conversion_review(V2), "apiVersion": "apiextensions.k8s.io/v1beta1"},
            "705ab4f5",
            "expected a ConversionReview (apiextensions.k8s.io/v1)",
        ),
        (
            {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"},
            "",
            "the ConversionReview has no request",
        ),
        (
            {**conversion_review(V2), "request": {"uid": "u", "objects": "all"}},
            "u",
            "request.objects must be a list of objects",
        ),
        (["not", "a", "review"], "", "expected a ConversionReview (apiextensions.k8s.io/v1)"),
    ],
    ids=["old version", "no request", "objects not a list", "not an object"],
)
def test_a_malformed_review_gets_a_failed_answer(request_body: Any, uid: str, message: str):
    response = review(request_body)["response"]

    assert response == {"uid": uid, "result": {"status": "Failed", "message": message}}


# --- v2 → v1 → v2 loses nothing: the v1 view remembers the v2 spec ----------------------------

SPEC_ANNOTATION = "locust.io/v2-spec"
V1_SPEC_SCHEMA = version_schema("v1")["properties"]["spec"]


def full_v2_test() -> dict[str, Any]:
    """A v2 test using what v1 cannot say, in its stored form (defaults applied)."""
    test = v2_test(
        "full",
        imagePullPolicy="Always",
        imagePullSecrets=[{"name": "registry"}],
        master={
            "command": "locust -f /tests/main.py",
            "labels": {"tier": "master"},
            "annotations": {"note": "m"},
            "autostart": False,
            "autoquit": {"enabled": True, "timeout": 15},
            "extraArgs": ["--headless"],
            "resources": {"limits": {"cpu": "2", "memory": "1Gi"}},
        },
        worker={
            "command": "locust -f /tests/main.py",
            "replicas": 3,
            "labels": {"tier": "worker"},
            "extraArgs": ["--processes", "4"],
            "resources": {"requests": {"cpu": "500m"}},
        },
        testFiles={
            "configMapRef": "tests",
            "libConfigMapRef": "lib",
            "srcMountPath": "/tests",
            "libMountPath": "/lib",
        },
        scheduling={
            "affinity": {
                **node_affinity(
                    {"key": "node-type", "operator": "In", "values": ["fast", "faster"]},
                    {"key": "lifecycle", "operator": "NotIn", "values": ["spot"]},
                ),
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 50,
                            "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname"},
                        }
                    ]
                },
            },
            "tolerations": [
                {
                    "key": "dedicated",
                    "operator": "Equal",
                    "value": "locust",
                    "effect": "NoExecute",
                    "tolerationSeconds": 300,
                }
            ],
            "nodeSelector": {"zone": "eu-1"},
            "runtimeClassName": "gvisor",
        },
        env={
            "variables": [{"name": "TARGET", "value": "http://app"}],
            "configMapRefs": [{"name": "settings", "prefix": "APP_"}],
            "secretMounts": [{"name": "creds", "mountPath": "/creds", "readOnly": True}],
        },
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": "/data", "target": "worker"}],
        security={"podSecurityContext": {"runAsNonRoot": True}},
        observability={"openTelemetry": {"enabled": True, "endpoint": "otel:4317"}},
        thresholds=[
            {"metric": "p95Ms", "max": 500, "request": "GET /checkout", "abortOnFail": True},
            {"metric": "rps", "min": 12.5},
        ],
    )
    test["metadata"].update(
        namespace="ns", uid="u-1", resourceVersion="9", generation=2, labels={"team": "a"}
    )
    test["status"] = {
        "phase": "Running",
        "connectedWorkers": 3,
        "verdict": "Failed",
        "results": {"final": True, "requests": 1234, "p95Ms": 612, "entries": []},
    }
    return schema_defaults(test)


def schema_defaults(test: dict[str, Any]) -> dict[str, Any]:
    version = test["apiVersion"].rpartition("/")[2]
    spec_schema = version_schema(version)["properties"]["spec"]
    return {**test, "spec": schema.apply_defaults(copy.deepcopy(test["spec"]), spec_schema)}


def over_the_wire(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as the apiserver hands it back: JSON through Go maps, whose keys come sorted."""
    return json.loads(json.dumps(obj, sort_keys=True))


def v1_view(v2: dict[str, Any]) -> dict[str, Any]:
    return over_the_wire(convert(v2, V1))


def test_a_full_v2_test_survives_a_round_trip_through_v1():
    v2 = full_v2_test()

    assert convert(v1_view(v2), V2) == v2


def test_the_v1_view_holds_the_v2_spec_as_compact_json_beside_what_v1_can_say():
    v2 = full_v2_test()

    v1 = convert(v2, V1)

    text = v1["metadata"]["annotations"][SPEC_ANNOTATION]
    assert json.loads(text) == v2["spec"]
    assert text == json.dumps(v2["spec"], separators=(",", ":"))
    assert v1["spec"]["workerReplicas"] == 3
    assert v1["spec"]["affinity"] == {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"node-type": "fast"}}
    }
    assert schema.validate(v1["spec"], V1_SPEC_SCHEMA, "spec") == []


def test_only_the_annotation_is_added_to_the_v1_metadata_and_the_status_is_kept():
    v2 = full_v2_test()
    v2["metadata"]["annotations"] = {"owner": "perf-team"}

    v1 = convert(v2, V1)

    annotations = v1["metadata"].pop("annotations")
    assert annotations == {"owner": "perf-team", SPEC_ANNOTATION: mock.ANY}
    assert v1["metadata"] == {k: v for k, v in v2["metadata"].items() if k != "annotations"}
    assert v1["status"] == v2["status"]


def test_the_annotation_never_reaches_v2():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["metadata"]["annotations"]["owner"] = "perf-team"

    back = convert(v1, V2)

    assert back["metadata"]["annotations"] == {"owner": "perf-team"}
    assert "annotations" not in convert(v1_view(v2), V2)["metadata"]


def test_a_v2_spec_v1_says_fully_gets_no_annotation():
    v2 = convert(v1_test(workerReplicas=2, configMap="tests"), V2)

    assert "annotations" not in convert(v2, V1)["metadata"]


def test_thresholds_v1_cannot_say_survive_a_patch_through_v1():
    v2 = schema_defaults(v2_test("checkout", thresholds=[{"metric": "failRatio", "max": 0.01}]))
    v1 = v1_view(v2)
    assert "thresholds" not in v1["spec"]
    v1["metadata"]["labels"] = {"patched": "yes"}

    back = convert(v1, V2)

    assert back["spec"]["thresholds"] == [
        {"metric": "failRatio", "max": 0.01, "abortOnFail": False}
    ]


def test_a_label_patch_through_v1_keeps_the_whole_v2_spec():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["metadata"]["labels"]["patched"] = "yes"

    back = convert(v1, V2)

    assert back["spec"] == v2["spec"]
    assert back["metadata"]["labels"] == {"team": "a", "patched": "yes"}


def test_a_v1_client_changing_worker_replicas_gets_its_change_and_keeps_the_rest():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["spec"]["workerReplicas"] = 7

    back = convert(v1, V2)

    assert back["spec"]["worker"] == {**v2["spec"]["worker"], "replicas": 7}
    assert {k: v for k, v in back["spec"].items() if k != "worker"} == {
        k: v for k, v in v2["spec"].items() if k != "worker"
    }


@pytest.mark.parametrize(
    ("v1_field", "value", "v2_path", "expected"),
    [
        ("image", "locustio/locust:3.0.0", ("image",), "locustio/locust:3.0.0"),
        ("masterCommandSeed", "locust -f b.py", ("master", "command"), "locust -f b.py"),
        ("imagePullSecrets", ["other"], ("imagePullSecrets",), [{"name": "other"}]),
        ("configMap", "new-tests", ("testFiles", "configMapRef"), "new-tests"),
        ("labels", {"master": {"tier": "m2"}}, ("worker", "labels"), None),
        ("labels", {"master": {"tier": "m2"}}, ("master", "labels"), {"tier": "m2"}),
    ],
    ids=["image", "master command", "pull secrets", "config map", "labels", "master labels"],
)
def test_a_v1_field_a_client_changed_wins_over_the_annotation(
    v1_field: str, value: Any, v2_path: tuple[str, ...], expected: Any
):
    v1 = v1_view(full_v2_test())
    v1["spec"][v1_field] = value

    spec = convert(v1, V2)["spec"]

    for key in v2_path[:-1]:
        spec = spec[key]
    assert spec.get(v2_path[-1]) == expected


V1_CHANGES = {
    "masterCommandSeed": "locust -f other.py",
    "workerCommandSeed": "locust -f other.py",
    "workerReplicas": 9,
    "image": "locustio/locust:3.0.0",
    "imagePullPolicy": "Never",
    "imagePullSecrets": ["other"],
    "configMap": "other-tests",
    "libConfigMap": "other-lib",
    "labels": {"master": {"a": "b"}},
    "annotations": {"worker": {"c": "d"}},
    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"z": "1"}}},
    "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
}


def test_every_v1_field_has_a_change_case():
    assert set(V1_CHANGES) == set(V1_SPEC_SCHEMA["properties"])


@pytest.mark.parametrize(("v1_field", "value"), V1_CHANGES.items(), ids=list(V1_CHANGES))
def test_a_change_to_any_v1_field_is_stored_and_shows_in_v1(v1_field: str, value: Any):
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["spec"][v1_field] = value

    stored = convert(v1, V2)
    again = v1_view(stored)

    assert again["spec"] == {**v1["spec"], v1_field: value}
    assert stored["spec"]["env"] == v2["spec"]["env"]


def test_a_command_emptied_through_v1_stays_a_command():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["spec"]["masterCommandSeed"] = ""

    assert convert(v1, V2)["spec"]["master"] == {**v2["spec"]["master"], "command": ""}


def test_a_changed_config_map_keeps_the_v2_mount_paths():
    v1 = v1_view(full_v2_test())
    v1["spec"]["configMap"] = "new-tests"
    del v1["spec"]["libConfigMap"]

    assert convert(v1, V2)["spec"]["testFiles"] == {
        "configMapRef": "new-tests",
        "srcMountPath": "/tests",
        "libMountPath": "/lib",
    }


def test_a_changed_v1_affinity_replaces_the_required_node_affinity_only():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "node-type": "slow"
    }

    scheduling = convert(v1, V2)["spec"]["scheduling"]

    # The client rewrote the required rule, and v1 says all of it: its NotIn term goes too.
    assert (
        scheduling["affinity"]["nodeAffinity"]
        == node_affinity({"key": "node-type", "operator": "In", "values": ["slow"]})[
            "nodeAffinity"
        ]
    )
    assert (
        scheduling["affinity"]["podAntiAffinity"]
        == (v2["spec"]["scheduling"]["affinity"]["podAntiAffinity"])
    )
    assert scheduling["tolerations"] == v2["spec"]["scheduling"]["tolerations"]
    assert scheduling["nodeSelector"] == {"zone": "eu-1"}


def test_a_removed_v1_affinity_removes_the_required_node_affinity_only():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    del v1["spec"]["affinity"]

    affinity = convert(v1, V2)["spec"]["scheduling"]["affinity"]

    assert affinity == {"podAntiAffinity": v2["spec"]["scheduling"]["affinity"]["podAntiAffinity"]}


def test_removing_what_v1_says_leaves_no_empty_v2_blocks():
    v2 = v2_test(
        master={"command": "locust", "autostart": False},
        scheduling={"affinity": node_affinity({"key": "a", "operator": "In", "values": ["b"]})},
    )
    v1 = v1_view(v2)
    del v1["spec"]["affinity"]

    assert convert(v1, V2)["spec"] == {k: v for k, v in v2["spec"].items() if k != "scheduling"}


def test_changed_v1_tolerations_replace_the_v2_ones_as_upstream_converts_them():
    v1 = v1_view(full_v2_test())
    v1["spec"]["tolerations"].append({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"})

    assert convert(v1, V2)["spec"]["scheduling"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "locust", "effect": "NoExecute"},
        {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]


def test_a_v1_client_clearing_a_field_to_empty_changes_nothing_it_could_see():
    v2 = full_v2_test()
    v1 = v1_view(v2)
    v1["spec"]["labels"]["worker"] = {"tier": "worker"}  # the same value, written again
    v1["spec"]["annotations"]["worker"] = {}  # empty says nothing, as absent

    assert convert(v1, V2)["spec"] == v2["spec"]


def test_a_removed_annotation_converts_as_upstream():
    v1 = v1_view(full_v2_test())
    del v1["metadata"]["annotations"]

    assert convert(v1, V2)["spec"] == convert(v1_test(**v1["spec"]), V2)["spec"]


@pytest.mark.parametrize(
    "garbage",
    [
        "not json",
        "[1, 2]",
        "null",
        '"a string"',
        "{}",
        '{"image": 5, "master": {"command": "c"}, "worker": {"command": "c", "replicas": 1}}',
        '{"image": "i", "master": {"command": "c"}, "worker": {"command": "c", "replicas": 0}}',
        '{"image": "i", "master": {"command": "c"}, "worker": {"command": "c", "replicas": NaN}}',
        "[" * 100_000,
    ],
    ids=[
        "not json",
        "a list",
        "null",
        "a string",
        "no required fields",
        "wrong type",
        "out of range",
        "NaN",
        "too deep",
    ],
)
def test_an_annotation_that_is_no_valid_v2_spec_counts_as_absent(garbage: str):
    v1 = v1_view(full_v2_test())
    without = copy.deepcopy(v1)
    del without["metadata"]["annotations"]
    v1["metadata"]["annotations"][SPEC_ANNOTATION] = garbage

    assert convert(v1, V2) == convert(without, V2)
    assert review(conversion_review(V2, v1))["response"]["result"] == {"status": "Success"}


def test_an_annotation_written_for_another_test_still_yields_to_the_v1_fields():
    # A v1 manifest copied from another test's v1 view, then edited.
    v1 = v1_view(full_v2_test())
    v1["spec"].update(workerReplicas=1, image="mine:1", configMap="my-tests")

    spec = convert(v1, V2)["spec"]

    assert (spec["worker"]["replicas"], spec["image"], spec["testFiles"]["configMapRef"]) == (
        1,
        "mine:1",
        "my-tests",
    )
    assert spec["env"] == full_v2_test()["spec"]["env"]


def test_a_v2_annotation_of_the_reserved_name_is_replaced_in_the_v1_view():
    v2 = full_v2_test()
    v2["metadata"]["annotations"] = {SPEC_ANNOTATION: "stale"}
    simple = convert(v1_test(), V2)
    simple["metadata"]["annotations"] = {SPEC_ANNOTATION: "stale", "keep": "me"}

    assert json.loads(convert(v2, V1)["metadata"]["annotations"][SPEC_ANNOTATION]) == v2["spec"]
    assert convert(simple, V1)["metadata"]["annotations"] == {"keep": "me"}


def test_a_toleration_v1_cannot_say_stays_out_of_the_v1_view_and_comes_back():
    v2 = v2_test(
        scheduling={
            "tolerations": [
                {"operator": "Exists"},  # every taint
                {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "pool", "value": "a", "effect": "NoExecute"},  # Equal by default
                {"operator": "Exists", "effect": "NoExecute"},
            ]
        }
    )

    v1 = convert(v2, V1)

    assert v1["spec"]["tolerations"] == [
        {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "pool", "operator": "Equal", "value": "a", "effect": "NoExecute"},
        {"key": "", "operator": "Exists", "effect": "NoExecute"},
    ]
    assert schema.validate(v1["spec"], V1_SPEC_SCHEMA, "spec") == []
    assert convert(over_the_wire(v1), V2) == v2


@pytest.mark.parametrize(
    "affinity",
    [
        {"nodeAffinity": "fast"},
        {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ["x"]}},
        node_affinity({"key": "a", "operator": "In", "values": [5]}),
        node_affinity({"key": 5, "operator": "In", "values": ["a"]}),
        node_affinity({"key": "a", "operator": "In", "values": "a"}),
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [1]}
            }
        },
    ],
    ids=["not an object", "terms not an object", "value", "key", "values", "term"],
)
def test_an_affinity_of_any_shape_converts_and_comes_back(affinity: dict[str, Any]):
    v2 = v2_test(scheduling={"affinity": affinity})

    v1 = convert(v2, V1)

    assert "affinity" not in v1["spec"]
    assert convert(over_the_wire(v1), V2) == v2


def test_a_v1_document_with_the_annotation_parses_as_its_v2_spec():
    v2 = full_v2_test()

    as_v1 = parse(v1_view(v2))

    assert as_v1.api_version == V1
    assert dataclasses.replace(as_v1, api_version=V2) == parse(v2)
    assert (as_v1.autostart, as_v1.autoquit_seconds) == (False, 15)


def test_render_of_a_v1_file_with_the_annotation_gives_the_v2_objects(capsys, tmp_path: Path):
    v2 = full_v2_test()
    del v2["metadata"]["uid"]  # no owner references, which would name the version
    files = {}
    for version, document in (("v1", v1_view(v2)), ("v2", v2)):
        files[version] = tmp_path / f"{version}.yaml"
        files[version].write_text(yaml.safe_dump(document))

    rendered = {}
    for version, path in files.items():
        assert cli.main(["render", str(path)]) == 0
        rendered[version] = list(yaml.safe_load_all(capsys.readouterr().out))

    assert rendered["v1"] == rendered["v2"]
    worker = next(doc for doc in rendered["v1"] if doc["metadata"]["name"] == "full-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "TARGET", "value": "http://app"} in container["env"]
