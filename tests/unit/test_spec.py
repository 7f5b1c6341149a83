"""Parsing LocustTest v1 documents: upstream samples, CRD defaults, rejections naming the field.

v2 documents: test_api_v2.py; the webhook rules both versions share: test_validation.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.api.types import SpecError, TestSpec
from reconciler.api.parse import parse

UPSTREAM = Path(__file__).parent.parent / "data" / "upstream"
Change = Callable[[dict[str, Any]], None]
MINIMAL = {
    "apiVersion": "locust.io/v1",
    "kind": "LocustTest",
    "metadata": {"name": "demo.test"},
    "spec": {
        "image": "locustio/locust:2.31.0",
        "masterCommandSeed": "-f /lotest/src/demo.py",
        "workerCommandSeed": "-f /lotest/src/demo.py",
        "workerReplicas": 2,
    },
}


def load(file: str) -> dict[str, Any]:
    return yaml.safe_load((UPSTREAM / file).read_text())


def _parent(document: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    *parents, leaf = path.split(".")
    for key in parents:
        document = document[key]
    return document, leaf


def set_field(path: str, value: Any) -> Change:
    def change(document: dict[str, Any]) -> None:
        parent, leaf = _parent(document, path)
        parent[leaf] = value

    return change


def drop_field(path: str) -> Change:
    def change(document: dict[str, Any]) -> None:
        parent, leaf = _parent(document, path)
        del parent[leaf]

    return change


def parse_changed(change: Change) -> TestSpec:
    document = copy.deepcopy(MINIMAL)
    change(document)
    return parse(document)


def test_java_sample_parses_every_field():
    spec = parse(load("locust-test-cr.yaml"))

    assert (spec.name, spec.namespace) == ("demo.test", "default")
    assert spec.image == "locustio/locust:latest"
    assert spec.image_pull_policy == "Always"
    assert spec.image_pull_secrets == ("my-private-registry-secret",)
    assert spec.worker_replicas == 3
    assert spec.config_map == "test-map"
    assert spec.lib_config_map is None
    assert spec.master.command_seed.split() == [
        "--locustfile", "/lotest/src/locust_project_demo.py", "--host", "https://docs.locust.io",
        "--users", "100", "--spawn-rate", "10", "--run-time", "3m",
    ]  # fmt: skip
    assert spec.worker.command_seed == "--locustfile /lotest/src/locust_project_demo.py"
    assert dict(spec.master.labels) == {
        "locust.io/role": "master",
        "myapp.com/testId": "abc-123",
        "myapp.com/tenantId": "xyz-789",
    }
    assert dict(spec.worker.labels) == {"locust.io/role": "worker"}
    assert dict(spec.master.annotations) == {
        "myapp.com/threads": "1000",
        "myapp.com/version": "2.1.0",
    }
    assert dict(spec.worker.annotations) == {"myapp.com/version": "2.1.0"}


def test_v1_affinity_map_becomes_a_kubernetes_node_affinity():
    spec = parse(load("locust-test-cr.yaml"))

    required = spec.affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": f"organisation.com/nodeAffinityLabel{n}", "operator": "In", "values": [v]}
                for n, v in [
                    (1, "locust-cloud-tests"),
                    (2, "performance-nodes"),
                    (3, "high-memory"),
                ]
            ]
        }
    ]


def test_tolerations_keep_a_value_only_for_equal():
    spec = parse_changed(
        set_field(
            "spec.tolerations",
            [
                {"key": "a", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
                {"key": "b", "operator": "Exists", "value": "ignored", "effect": "NoExecute"},
            ],
        )
    )

    assert spec.tolerations == (
        {"key": "a", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
        {"key": "b", "operator": "Exists", "effect": "NoExecute"},
    )


def test_go_e2e_samples_parse():
    basic = parse(load("locusttest-basic.yaml"))
    conversion = parse(load("v1-cr.yaml"))

    assert (basic.name, basic.worker_replicas) == ("e2e-test-v1", 1)
    assert basic.config_map == "e2e-test-configmap"
    assert (conversion.namespace, conversion.worker_replicas) == ("default", 2)
    assert dict(conversion.master.labels) == {"app": "locust-master"}


def test_defaults_fill_what_the_test_leaves_out():
    spec = parse_changed(drop_field("spec.workerReplicas"))

    assert spec.worker_replicas == 1
    assert spec.namespace == "default"
    assert spec.image_pull_policy == "IfNotPresent"
    assert spec.image_pull_secrets == ()
    assert (spec.config_map, spec.lib_config_map) == (None, None)
    assert (spec.affinity, spec.tolerations) == (None, ())
    assert (spec.uid, spec.generation, spec.api_version) == (None, 1, "locust.io/v1")
    assert (spec.autostart, spec.autoquit_seconds) == (True, 60)


def test_missing_namespace_uses_the_given_default():
    assert parse(MINIMAL, default_namespace="load").namespace == "load"


def test_cluster_metadata_is_read():
    spec = parse_changed(
        lambda document: document["metadata"].update(namespace="load", uid="u-1", generation=3)
    )

    assert (spec.namespace, spec.uid, spec.generation) == ("load", "u-1", 3)


def test_parsing_does_not_change_the_document():
    document = copy.deepcopy(MINIMAL)
    del document["spec"]["workerReplicas"]
    before = copy.deepcopy(document)

    parse(document)

    assert document == before


@pytest.mark.parametrize("replicas", [1, 500])
def test_replica_bounds_are_inclusive(replicas: int):
    spec = parse_changed(set_field("spec.workerReplicas", replicas))

    assert spec.worker_replicas == replicas


def test_a_56_character_name_is_accepted():
    name = "a" * 56

    assert parse_changed(set_field("metadata.name", name)).name == name


INVALID = {
    "no image": (drop_field("spec.image"), "spec.image: Required value"),
    "no master seed": (
        drop_field("spec.masterCommandSeed"),
        "spec.masterCommandSeed: Required value",
    ),
    "no worker seed": (
        drop_field("spec.workerCommandSeed"),
        "spec.workerCommandSeed: Required value",
    ),
    "no spec": (drop_field("spec"), "spec: Required value"),
    "null spec": (set_field("spec", None), "spec: Invalid value: null"),
    "no metadata": (drop_field("metadata"), "metadata: Required value"),
    "no name": (drop_field("metadata.name"), "metadata.name: Required value"),
    "replicas as text": (
        set_field("spec.workerReplicas", "3"),
        (
            'spec.workerReplicas: Invalid value: "string": '
            "spec.workerReplicas in body must be of type integer"
        ),
    ),
    "image as number": (
        set_field("spec.image", 42),
        'spec.image: Invalid value: "integer": spec.image in body must be of type string',
    ),
    "replicas 0": (
        set_field("spec.workerReplicas", 0),
        (
            "spec.workerReplicas: Invalid value: 0: "
            "spec.workerReplicas in body should be greater than or equal to 1"
        ),
    ),
    "replicas 501": (
        set_field("spec.workerReplicas", 501),
        (
            "spec.workerReplicas: Invalid value: 501: "
            "spec.workerReplicas in body should be less than or equal to 500"
        ),
    ),
    "unknown pull policy": (
        set_field("spec.imagePullPolicy", "Sometimes"),
        (
            'spec.imagePullPolicy: Unsupported value: "Sometimes": '
            'supported values: "Always", "IfNotPresent", "Never"'
        ),
    ),
    "pull secrets not a list": (
        set_field("spec.imagePullSecrets", "secret"),
        (
            'spec.imagePullSecrets: Invalid value: "string": '
            "spec.imagePullSecrets in body must be of type array"
        ),
    ),
    "bad toleration operator": (
        set_field("spec.tolerations", [{"key": "a", "operator": "Maybe", "effect": "NoSchedule"}]),
        'spec.tolerations[0].operator: Unsupported value: "Maybe"',
    ),
    "bad toleration effect": (
        set_field("spec.tolerations", [{"key": "a", "operator": "Exists", "effect": "Never"}]),
        'spec.tolerations[0].effect: Unsupported value: "Never"',
    ),
    "toleration without key": (
        set_field("spec.tolerations", [{"operator": "Exists", "effect": "NoSchedule"}]),
        "spec.tolerations[0].key: Required value",
    ),
    "label value not text": (
        set_field("spec.labels", {"master": {"replicas": 3}}),
        (
            'spec.labels.master.replicas: Invalid value: "integer": '
            "spec.labels.master.replicas in body must be of type string"
        ),
    ),
    "57-character name": (
        set_field("metadata.name", "a" * 57),
        f'metadata.name: name "{"a" * 57}" is too long',
    ),
    "upper-case name": (
        set_field("metadata.name", "Demo.Test"),
        'metadata.name: Invalid value: "Demo.Test"',
    ),
    "underscore name": (
        set_field("metadata.name", "demo_test"),
        'metadata.name: Invalid value: "demo_test"',
    ),
    "bad namespace": (
        set_field("metadata.namespace", "Load_Tests"),
        'metadata.namespace: Invalid value: "Load_Tests"',
    ),
    "wrong kind": (set_field("kind", "Deployment"), 'kind: Unsupported value: "Deployment"'),
    "no kind": (drop_field("kind"), "kind: Required value"),
    "no apiVersion": (drop_field("apiVersion"), "apiVersion: Required value"),
    "300-character name": (
        set_field("metadata.name", "a" * 300),
        'metadata.name: Invalid value: "aaaaaaaaaaaaaaaaaaaa..." (300 characters): must be no '
        "more than 253 characters",
    ),
    "70-character namespace": (
        set_field("metadata.namespace", "n" * 70),
        'metadata.namespace: Invalid value: "nnnnnnnnnnnnnnnnnnnn..." (70 characters): must be '
        "no more than 63 characters",
    ),
    "unknown version": (
        set_field("apiVersion", "locust.io/v3"),
        (
            'apiVersion: Unsupported value: "locust.io/v3": '
            'supported values: "locust.io/v1", "locust.io/v2"'
        ),
    ),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_an_invalid_test_is_rejected_naming_the_field(case: str):
    change, message = INVALID[case]

    with pytest.raises(SpecError) as caught:
        parse_changed(change)

    assert str(caught.value).startswith(message)


def test_a_long_name_is_rejected_because_of_the_job_names():
    with pytest.raises(SpecError, match=r"exceed 63 characters \(max CR name length is 56\)"):
        parse_changed(set_field("metadata.name", "a" * 57))


@pytest.mark.parametrize("document", [["a", "list"], "text", None, 42])
def test_a_document_that_is_not_a_mapping_is_rejected(document: Any):
    with pytest.raises(SpecError, match="expected a YAML mapping"):
        parse(document)


def test_a_name_starting_with_a_digit_is_rejected_as_services_need_a_letter_first():
    document = {
        "apiVersion": "locust.io/v1",
        "kind": "LocustTest",
        "metadata": {"name": "1st-test"},
        "spec": {"image": "i", "masterCommandSeed": "m", "workerCommandSeed": "w"},
    }
    with pytest.raises(SpecError, match=r'^metadata\.name: Invalid value: "1st-test": must start'):
        parse(document)
