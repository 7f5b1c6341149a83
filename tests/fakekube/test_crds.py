"""CustomResourceDefinitions: registration, structural-schema validation, defaulting, pruning,
the status subresource, printer columns and cleanup."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from lightkube import ApiError, Client

from fakekube import FakeKube, StatusError

from .conftest import CRD_FILE, Widget, load_yaml, widget

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
PROJECT_CRD = (
    Path(__file__).resolve().parents[2] / "src" / "reconciler" / "crds" / "locusttests.yaml"
)


def invalid(fakekube: FakeKube, body: dict[str, Any]) -> StatusError:
    with pytest.raises(StatusError) as error:
        fakekube.create(body)
    assert error.value.code == 422 and error.value.reason == "Invalid"
    return error.value


def test_custom_resources_are_not_served_before_their_crd(http: httpx.Client) -> None:
    assert http.get(WIDGETS).status_code == 404


def test_crd_registers_routes_discovery_and_gets_established(
    http: httpx.Client, fakekube: FakeKube, widgets: dict
) -> None:
    crd = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"
    )
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["NamesAccepted"]["status"] == "True"
    assert conditions["Established"]["status"] == "True"
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["acceptedNames"]["listKind"] == "WidgetList"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["names"]["singular"] == "widget"
    assert http.get(WIDGETS).json()["kind"] == "WidgetList"
    resources = {r["name"]: r for r in http.get("/apis/example.com/v1").json()["resources"]}
    assert (
        resources["widgets"]["shortNames"] == ["wd"] and resources["widgets"]["namespaced"] is True
    )
    assert "widgets/status" in resources
    assert "example.com" in {g["name"] for g in http.get("/apis").json()["groups"]}


def test_crd_itself_is_validated(fakekube: FakeKube) -> None:
    crd = load_yaml(CRD_FILE.read_text())
    crd["metadata"]["name"] = "wrong.example.com"
    error = invalid(fakekube, crd)
    assert (
        'metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group'
        in error.message
    )


def test_project_crd_is_accepted_when_present(fakekube: FakeKube) -> None:
    if not PROJECT_CRD.exists():
        pytest.skip("the project CRD is not there yet")
    fakekube.apply_yaml(PROJECT_CRD.read_text())
    crd = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "locusttests.locust.io"
    )
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}


def test_required_type_enum_range_pattern_and_length(fakekube: FakeKube, widgets: dict) -> None:
    missing = widget("w")
    del missing["spec"]["image"]
    assert (
        invalid(fakekube, missing).message
        == 'Widget.example.com "w" is invalid: spec.image: Required value'
    )
    assert invalid(fakekube, widget("w", replicas=0)).message == (
        'Widget.example.com "w" is invalid: spec.replicas: Invalid value: 0: '
        "spec.replicas in body should be greater than or equal to 1"
    )
    assert (
        "spec.replicas in body should be less than or equal to 500"
        in invalid(fakekube, widget("w", replicas=501)).message
    )
    assert invalid(fakekube, widget("w", pullPolicy="Sometimes")).message == (
        'Widget.example.com "w" is invalid: spec.pullPolicy: Unsupported value: "Sometimes": '
        'supported values: "Always", "IfNotPresent", "Never"'
    )
    assert (
        'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
        in invalid(fakekube, widget("w", replicas="two")).message
    )
    assert (
        "spec.configMap in body should match"
        in invalid(fakekube, widget("w", configMap="Not_OK")).message
    )
    assert (
        "spec.configMap: Too long: may not be more than 20 bytes"
        in invalid(fakekube, widget("w", configMap="a" * 21)).message
    )
    assert (
        "spec.image in body should be at least 1 chars long"
        in invalid(fakekube, widget("w", image="")).message
    )
    assert (
        "spec.tags: Too many: 4: must have at most 3 items"
        in invalid(fakekube, widget("w", tags=["a", "b", "c", "d"])).message
    )
    assert (
        'spec.labels.team: Invalid value: "integer"'
        in invalid(fakekube, widget("w", labels={"team": 1})).message
    )
    assert "spec.port" in invalid(fakekube, widget("w", port=1.5)).message


def test_several_errors_are_listed_together(fakekube: FakeKube, widgets: dict) -> None:
    error = invalid(fakekube, widget("w", replicas=0, pullPolicy="Sometimes"))
    assert error.message.startswith(
        'Widget.example.com "w" is invalid: [spec.replicas: Invalid value: 0'
    )
    assert [c["field"] for c in error.details["causes"]] == ["spec.replicas", "spec.pullPolicy"]
    assert error.details["kind"] == "Widget" and error.details["group"] == "example.com"


def test_valid_values_pass(fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(
        widget("w", port="http", ratio=None, tags=["a"], labels={"team": "x"}, replicas=500)
    )
    fakekube.create(widget("w2", port=8080, ratio=0.5))


def test_custom_resource_names_must_be_dns_subdomains(fakekube: FakeKube, widgets: dict) -> None:
    error = invalid(fakekube, widget("Bad_Name"))
    assert error.details["causes"][0]["field"] == "metadata.name"


def test_defaults_are_applied_recursively(fakekube: FakeKube, widgets: dict) -> None:
    body = widget("w")
    del body["spec"]["replicas"]
    spec = fakekube.create(body)["spec"]
    assert spec["replicas"] == 1
    assert spec["pullPolicy"] == "IfNotPresent"
    assert spec["resources"] == {"cpu": "250m"}
    updated = fakekube.patch(
        "example.com/v1", "Widget", "w", {"spec": {"replicas": None, "resources": {"cpu": None}}}
    )
    assert updated["spec"]["replicas"] == 1 and updated["spec"]["resources"] == {"cpu": "250m"}


def test_unknown_fields_are_pruned(http: httpx.Client, widgets: dict) -> None:
    body = widget("w", unknown="x", extra={"free": {"form": True}}) | {"topLevel": "dropped"}
    body["status"] = {"phase": "ignored-on-create"}
    body["metadata"]["bogus"] = "x"
    created = http.post(WIDGETS, json=body).json()
    assert "unknown" not in created["spec"] and "topLevel" not in created
    assert created["spec"]["extra"] == {
        "free": {"form": True}
    }  # x-kubernetes-preserve-unknown-fields
    assert "bogus" not in created["metadata"] and "status" not in created


def test_custom_resources_require_kind(http: httpx.Client, widgets: dict) -> None:
    body = widget("w")
    del body["kind"]
    assert http.post(WIDGETS, json=body).status_code == 400


def test_status_subresource_separates_spec_and_status(
    http: httpx.Client, fakekube: FakeKube, widgets: dict
) -> None:
    created = fakekube.create(widget("w"))
    changed = copy.deepcopy(created)
    changed["spec"]["replicas"] = 3
    changed["status"] = {"phase": "Running"}
    main = http.put(f"{WIDGETS}/w", json=changed).json()
    assert main["spec"]["replicas"] == 3 and "status" not in main
    assert main["metadata"]["generation"] == 2
    changed = copy.deepcopy(main)
    changed["spec"]["replicas"] = 9
    changed["status"] = {"phase": "Running"}
    status = http.put(f"{WIDGETS}/w/status", json=changed).json()
    assert status["status"] == {"phase": "Running"} and status["spec"]["replicas"] == 3
    assert status["metadata"]["generation"] == 2
    patched = http.patch(
        f"{WIDGETS}/w/status",
        json={"status": {"phase": "Done"}},
        headers={"Content-Type": "application/merge-patch+json"},
    ).json()
    assert patched["status"]["phase"] == "Done" and patched["metadata"]["generation"] == 2
    assert http.get(f"{WIDGETS}/w/status").json()["status"]["phase"] == "Done"


def test_status_is_validated_too(fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(widget("w"))
    with pytest.raises(StatusError) as error:
        fakekube.patch_status("example.com/v1", "Widget", "w", {"phase": 3})
    assert error.value.code == 422


def test_generation_rises_on_spec_change_only(fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(widget("w"))
    assert (
        fakekube.patch("example.com/v1", "Widget", "w", {"metadata": {"annotations": {"a": "b"}}})[
            "metadata"
        ]["generation"]
        == 1
    )
    assert (
        fakekube.patch("example.com/v1", "Widget", "w", {"spec": {"replicas": 4}})["metadata"][
            "generation"
        ]
        == 2
    )


def test_table_uses_printer_columns(http: httpx.Client, fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(widget("w", replicas=3))
    fakekube.patch_status(
        "example.com/v1",
        "Widget",
        "w",
        {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    )
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = http.get(WIDGETS, headers={"Accept": accept}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name",
        "Image",
        "Replicas",
        "Phase",
        "Ready",
        "Age",
    ]
    assert table["columnDefinitions"][0]["format"] == "name"
    name, image, replicas, phase, ready, age = table["rows"][0]["cells"]
    assert (name, image, replicas, phase, ready) == (
        "w",
        "locustio/locust:2.31",
        3,
        "Running",
        "True",
    )
    assert re.fullmatch(r"\d+s", age)
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    single = http.get(f"{WIDGETS}/w", headers={"Accept": accept}).json()
    assert single["kind"] == "Table" and len(single["rows"]) == 1


def test_deleting_a_crd_deletes_its_resources_and_ends_watches(
    http: httpx.Client, fakekube: FakeKube, widgets: dict
) -> None:
    fakekube.create(widget("a"))
    fakekube.create(widget("b"))
    with http.stream("GET", WIDGETS, params={"watch": "true"}) as response:
        deleting = http.delete(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com"
        ).json()
        assert deleting["metadata"]["deletionTimestamp"]
        assert "customresourcecleanup.apiextensions.k8s.io" in deleting["metadata"]["finalizers"]
        types = [line.split('"')[3] for line in response.iter_lines() if line]
    assert types == ["ADDED", "ADDED", "DELETED", "DELETED"]
    fakekube.wait_for(
        lambda: (
            fakekube.get(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"
            )
            is None
        ),
        message="the CRD to go",
    )
    assert http.get(WIDGETS).status_code == 404
    fakekube.apply_yaml(CRD_FILE.read_text())
    assert http.get(WIDGETS).json()["items"] == []


def test_lightkube_generic_resource_round_trip(client: Client, widgets: dict) -> None:
    created = client.create(
        Widget(metadata={"name": "lk", "namespace": "default"}, spec={"image": "img"})
    )
    assert created.spec["replicas"] == 1
    assert [w.metadata.name for w in client.list(Widget, namespace="default")] == ["lk"]
    with pytest.raises(ApiError) as error:
        client.create(
            Widget(
                metadata={"name": "bad", "namespace": "default"},
                spec={"image": "img", "replicas": 0},
            )
        )
    assert error.value.status.code == 422
    assert error.value.status.details.causes[0].field == "spec.replicas"
    client.delete(Widget, "lk", namespace="default")
    assert list(client.list(Widget, namespace="default")) == []


def test_new_defaults_apply_to_stored_objects_when_read(fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(widget("w"))
    crd = load_yaml(CRD_FILE.read_text())
    properties = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    properties["properties"]["tier"] = {"type": "string", "default": "gold"}
    fakekube.apply_yaml(yaml.safe_dump(crd))
    assert fakekube.get("example.com/v1", "Widget", "w")["spec"]["tier"] == "gold"


def test_every_served_version_reads_the_same_objects(
    http: httpx.Client, fakekube: FakeKube, widgets: dict
) -> None:
    crd = load_yaml(CRD_FILE.read_text())
    v2 = copy.deepcopy(crd["spec"]["versions"][0]) | {"name": "v2", "storage": False}
    crd["spec"]["versions"].append(v2)
    fakekube.apply_yaml(yaml.safe_dump(crd))
    fakekube.create(widget("w"))
    served = http.get("/apis/example.com/v2/namespaces/default/widgets/w").json()
    assert (
        served["apiVersion"] == "example.com/v2"
        and served["spec"]["image"] == "locustio/locust:2.31"
    )
    stored = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"
    )
    assert stored["status"]["storedVersions"] == ["v1"]
    # Discovery lists versions by Kubernetes version priority, so v2 comes first.
    assert [v["version"] for v in http.get("/apis/example.com").json()["versions"]] == ["v2", "v1"]
