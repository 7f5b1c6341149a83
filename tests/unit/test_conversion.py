"""v1 ⇄ v2 conversion (upstream's `locusttest_conversion_test.go`); ConversionReview answers."""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.conversion import ConversionError, convert, review
from reconciler.api.parse import parse

DATA = Path(__file__).parent.parent / "data"
V1, V2 = "locust.io/v1", "locust.io/v2"


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
    v2 = v2_test()
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
