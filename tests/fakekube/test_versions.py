"""Multi-version CRDs with ``conversion.strategy: None``: storage version, per-URL versions,
per-version schemas, served and deprecated versions, discovery and printer columns."""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from lightkube import Client
from lightkube.generic_resource import create_namespaced_resource

from fakekube import FakeKube, StatusError

from .gadgets import TABLE, V1, V2, gadget_v1, same_shape_crd, version

GadgetV1 = create_namespaced_resource("example.com", "v1", "Gadget", "gadgets")
GadgetV2 = create_namespaced_resource("example.com", "v2", "Gadget", "gadgets")
DEPRECATION = '299 - "example.com/v1 Gadget is deprecated, migrate to example.com/v2"'


@pytest.fixture
def gadgets(fakekube: FakeKube) -> dict[str, Any]:
    return fakekube.apply_yaml(yaml.safe_dump(same_shape_crd()))[0]


def invalid(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return response.json()["message"]


def test_objects_are_stored_in_the_storage_version_and_served_in_the_requested_one(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    created = http.post(V1, json=gadget_v1("a", replicas=3))
    assert created.status_code == 201
    assert created.json()["apiVersion"] == "example.com/v1"
    through_v2 = http.get(f"{V2}/a").json()
    assert through_v2["apiVersion"] == "example.com/v2"
    assert through_v2["spec"] == {
        "image": "locustio/locust:2.31",
        "command": "locust -f a.py",
        "replicas": 3,
        "tier": "gold",  # stored objects carry the storage version's defaults
    }
    assert through_v2["metadata"] == created.json()["metadata"]
    assert http.get(f"{V1}/a").json()["apiVersion"] == "example.com/v1"
    crd = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com"
    )
    assert crd["status"]["storedVersions"] == ["v2"]


def test_writes_follow_the_requested_versions_schema(http: httpx.Client, gadgets: dict) -> None:
    assert "spec.replicas in body should be less than or equal to 10" in invalid(
        http.post(V1, json=gadget_v1("a", replicas=50))
    )
    big = gadget_v1("a", replicas=50) | {"apiVersion": "example.com/v2"}
    assert http.post(V2, json=big).status_code == 201
    # v1 defaults replicas; v2 has no default for it.
    through_v1, through_v2 = gadget_v1("b"), gadget_v1("c") | {"apiVersion": "example.com/v2"}
    del through_v1["spec"]["replicas"], through_v2["spec"]["replicas"]
    assert http.post(V1, json=through_v1).json()["spec"]["replicas"] == 1
    assert "replicas" not in http.post(V2, json=through_v2).json()["spec"]


def test_reads_are_pruned_to_the_requested_versions_schema(
    http: httpx.Client, gadgets: dict
) -> None:
    body = gadget_v1("a", tier="platinum") | {"apiVersion": "example.com/v2"}
    http.post(V2, json=body)
    assert http.get(f"{V2}/a").json()["spec"]["tier"] == "platinum"
    assert "tier" not in http.get(f"{V1}/a").json()["spec"]
    listed = http.get(V1).json()
    assert listed["apiVersion"] == "example.com/v1"
    assert [item["apiVersion"] for item in listed["items"]] == ["example.com/v1"]
    assert "tier" not in listed["items"][0]["spec"]


def test_updates_patches_and_status_through_the_old_version(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    http.post(V1, json=gadget_v1("a"))
    patched = http.patch(
        f"{V1}/a",
        json={"spec": {"replicas": 4}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.json()["spec"]["replicas"] == 4
    assert patched.json()["metadata"]["generation"] == 2
    status = http.patch(
        f"{V1}/a/status",
        json={"status": {"phase": "Running"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status.json()["apiVersion"] == "example.com/v1"
    assert fakekube.get("example.com/v2", "Gadget", "a")["status"] == {"phase": "Running"}
    current = http.get(f"{V1}/a").json()
    current["spec"]["replicas"] = 11
    assert "less than or equal to 10" in invalid(http.put(f"{V1}/a", json=current))


def test_watches_stream_each_version(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    with (
        http.stream("GET", V1, params={"watch": "true", "timeoutSeconds": "1"}) as old,
        http.stream("GET", V2, params={"watch": "true", "timeoutSeconds": "1"}) as new,
    ):
        fakekube.create(gadget_v1("a", tier="platinum") | {"apiVersion": "example.com/v2"})
        v1_event = json.loads(next(old.iter_lines()))
        v2_event = json.loads(next(new.iter_lines()))
    assert v1_event["type"] == v2_event["type"] == "ADDED"
    assert v1_event["object"]["apiVersion"] == "example.com/v1"
    assert "tier" not in v1_event["object"]["spec"]
    assert v2_event["object"]["apiVersion"] == "example.com/v2"
    assert v2_event["object"]["spec"]["tier"] == "platinum"


def test_a_deprecated_version_warns_on_every_response(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    responses = [
        http.post(V1, json=gadget_v1("a")),
        http.get(f"{V1}/a"),
        http.get(V1),
        http.get(f"{V1}/missing"),  # errors too
        http.post(V1, json=gadget_v1("b", replicas=0)),
        http.delete(f"{V1}/a"),
    ]
    assert [r.status_code for r in responses] == [201, 200, 200, 404, 422, 200]
    assert {r.headers.get("Warning") for r in responses} == {DEPRECATION}
    with http.stream("GET", V1, params={"watch": "true", "timeoutSeconds": "0.1"}) as watch:
        assert watch.headers["Warning"] == DEPRECATION
    assert "Warning" not in http.get(V2).headers


def test_the_default_deprecation_warning_names_the_version_to_use(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    crd = same_shape_crd()
    del version(crd, "v1")["deprecationWarning"]
    fakekube.apply_yaml(yaml.safe_dump(crd))
    assert http.get(V1).headers["Warning"] == (
        '299 - "example.com/v1 Gadget is deprecated; use example.com/v2 Gadget"'
    )


def test_a_version_that_is_not_served_has_no_routes(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    crd = same_shape_crd()
    version(crd, "v1")["served"] = False
    fakekube.apply_yaml(yaml.safe_dump(crd))
    assert http.get(V1).status_code == 404
    assert http.post(V1, json=gadget_v1("a")).status_code == 404
    assert http.get("/apis/example.com/v1").status_code == 404
    assert [v["version"] for v in http.get("/apis/example.com").json()["versions"]] == ["v2"]
    with pytest.raises(
        StatusError, match='no matches for kind "Gadget" in version "example.com/v1"'
    ):
        fakekube.get("example.com/v1", "Gadget", "a")
    assert http.get(V2).status_code == 200


def test_a_storage_version_that_is_not_served_still_stores(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    crd = same_shape_crd()
    version(crd, "v2")["served"] = False
    fakekube.apply_yaml(yaml.safe_dump(crd))
    http.post(V1, json=gadget_v1("a"))
    assert http.get(V2).status_code == 404
    assert http.get(f"{V1}/a").json()["spec"]["replicas"] == 2
    # Deleting the CRD still finds and deletes its objects.
    http.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.example.com")
    fakekube.wait_for(
        lambda: (
            fakekube.get(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com"
            )
            is None
        )
    )


def test_changing_the_storage_version_keeps_old_objects_readable(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    http.post(V2, json=gadget_v1("old", tier="silver") | {"apiVersion": "example.com/v2"})
    crd = same_shape_crd()
    version(crd, "v1")["storage"], version(crd, "v2")["storage"] = True, False
    fakekube.apply_yaml(yaml.safe_dump(crd))
    http.post(V2, json=gadget_v1("new", tier="silver") | {"apiVersion": "example.com/v2"})
    stored = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com"
    )
    assert stored["status"]["storedVersions"] == ["v2", "v1"]
    # "old" is still stored in v2 and keeps its tier; "new" was stored in v1, which has none
    # (and reads are defaulted in the stored version, not the requested one).
    assert http.get(f"{V2}/old").json()["spec"]["tier"] == "silver"
    assert "tier" not in http.get(f"{V2}/new").json()["spec"]
    assert {i["metadata"]["name"] for i in http.get(V1).json()["items"]} == {"old", "new"}


def test_discovery_prefers_the_highest_priority_version(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    crd = same_shape_crd()
    template = version(crd, "v2")
    crd["spec"]["versions"] = [
        template | {"name": name, "storage": name == "v1beta1"}
        for name in ("v1beta1", "v2alpha1", "v1", "v10", "v1beta2")
    ]
    fakekube.apply_yaml(yaml.safe_dump(crd))
    group = http.get("/apis/example.com").json()
    assert [v["version"] for v in group["versions"]] == [
        "v10",
        "v1",
        "v1beta2",
        "v1beta1",
        "v2alpha1",
    ]
    assert group["preferredVersion"] == {"groupVersion": "example.com/v10", "version": "v10"}
    listed = next(g for g in http.get("/apis").json()["groups"] if g["name"] == "example.com")
    assert listed["preferredVersion"]["version"] == "v10"


def test_each_version_prints_its_own_columns(
    http: httpx.Client, fakekube: FakeKube, gadgets: dict
) -> None:
    http.post(V1, json=gadget_v1("a", replicas=3))
    old = http.get(V1, headers={"Accept": TABLE}).json()
    new = http.get(V2, headers={"Accept": TABLE}).json()
    assert [c["name"] for c in old["columnDefinitions"]] == ["Name", "Image", "Replicas"]
    assert old["rows"][0]["cells"] == ["a", "locustio/locust:2.31", 3]
    assert [c["name"] for c in new["columnDefinitions"]] == ["Name", "Phase", "Workers"]
    assert new["rows"][0]["cells"] == ["a", None, None]


def test_lightkube_reads_and_writes_either_version(client: Client, gadgets: dict) -> None:
    client.create(
        GadgetV1(
            metadata={"name": "lk", "namespace": "default"},
            spec={"image": "img", "command": "locust"},
        )
    )
    fetched = client.get(GadgetV2, "lk", namespace="default")
    assert fetched.apiVersion == "example.com/v2"
    assert fetched.spec == {"image": "img", "command": "locust", "replicas": 1, "tier": "gold"}
    listed = list(client.list(GadgetV1, namespace="default"))
    assert [g.apiVersion for g in listed] == ["example.com/v1"]


def test_a_warning_is_quoted_as_http_warning_headers_are(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    crd = same_shape_crd()
    version(crd, "v1")["deprecationWarning"] = 'use "v2" \\ today'
    fakekube.apply_yaml(yaml.safe_dump(crd))
    assert http.get(V1).headers["Warning"] == '299 - "use \\"v2\\" \\\\ today"'
