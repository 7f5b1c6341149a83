"""PATCH: merge (RFC 7386), JSON (RFC 6902), strategic merge, and server-side apply."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from lightkube import ApiError, Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from fakekube import FakeKube
from fakekube.builtins import builtin_list_strategy
from fakekube.patch import json_patch, merge_patch, strategic_merge

from .conftest import configmap, widget

CM_URL = "/api/v1/namespaces/default/configmaps/cm"
POD_URL = "/api/v1/namespaces/default/pods/p"


def patch(
    http: httpx.Client, url: str, body: Any, content_type: str, **params: str
) -> httpx.Response:
    return http.patch(url, json=body, headers={"Content-Type": content_type}, params=params)


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:1",
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    "ports": [{"containerPort": 80}],
                },
                {"name": "sidecar", "image": "sidecar:1"},
            ]
        },
    }


def test_merge_patch_rfc7386() -> None:
    target = {"a": {"b": 1, "c": 2}, "list": [1, 2], "gone": True}
    patched = merge_patch(
        target, {"a": {"b": 9, "c": None}, "list": [3], "gone": None, "new": "x"}
    )
    assert patched == {"a": {"b": 9}, "list": [3], "new": "x"}


def test_json_patch_rfc6902() -> None:
    document = {"a": {"b": [1, 2]}, "c": "d"}
    operations = [
        {"op": "add", "path": "/a/b/1", "value": 5},
        {"op": "add", "path": "/a/b/-", "value": 9},
        {"op": "replace", "path": "/c", "value": "e"},
        {"op": "copy", "from": "/c", "path": "/f"},
        {"op": "move", "from": "/f", "path": "/g~1h"},
        {"op": "remove", "path": "/a/b/0"},
        {"op": "test", "path": "/c", "value": "e"},
    ]
    assert json_patch(document, operations) == {"a": {"b": [5, 2, 9]}, "c": "e", "g/h": "e"}
    assert document == {"a": {"b": [1, 2]}, "c": "d"}


def test_strategic_merge_directives() -> None:
    original = {
        "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]},
        "metadata": {"finalizers": ["x"]},
    }
    patched = strategic_merge(
        original,
        {
            "spec": {
                "containers": [{"name": "b", "$patch": "delete"}, {"name": "c", "image": "3"}]
            },
            "metadata": {"finalizers": ["y"], "$deleteFromPrimitiveList/finalizers": ["x"]},
        },
        builtin_list_strategy,
    )
    assert patched["spec"]["containers"] == [
        {"name": "a", "image": "1"},
        {"name": "c", "image": "3"},
    ]
    assert patched["metadata"]["finalizers"] == ["y"]
    replaced = strategic_merge(
        original, {"spec": {"$patch": "replace", "hostNetwork": True}}, builtin_list_strategy
    )
    assert replaced["spec"] == {"hostNetwork": True}


def test_merge_patch_over_http(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create({**configmap("cm"), "data": {"a": "1", "b": "2"}})
    response = patch(http, CM_URL, {"data": {"a": None, "c": "3"}}, "application/merge-patch+json")
    assert response.status_code == 200
    assert response.json()["data"] == {"b": "2", "c": "3"}


def test_merge_patch_with_stale_resource_version_conflicts(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    created = fakekube.create(configmap("cm"))
    fakekube.patch("v1", "ConfigMap", "cm", {"data": {"k": "changed"}})
    stale = {
        "metadata": {"resourceVersion": created["metadata"]["resourceVersion"]},
        "data": {"k": "x"},
    }
    assert patch(http, CM_URL, stale, "application/merge-patch+json").status_code == 409


def test_json_patch_over_http(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("cm"))
    ops = [{"op": "add", "path": "/data/new", "value": "v"}, {"op": "remove", "path": "/data/k"}]
    assert patch(http, CM_URL, ops, "application/json-patch+json").json()["data"] == {"new": "v"}
    failed = patch(
        http,
        CM_URL,
        [{"op": "test", "path": "/data/new", "value": "other"}],
        "application/json-patch+json",
    )
    assert failed.status_code == 422


def test_strategic_merge_patch_merges_containers_env_and_ports_by_key() -> None:
    # On a Pod only images may change, so the merge itself is checked here, not through the API.
    body = {
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "app:2",
                    "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 8080}],
                }
            ]
        }
    }
    patched = strategic_merge(pod(), body, builtin_list_strategy)
    app, sidecar = patched["spec"]["containers"]
    assert app["image"] == "app:2" and sidecar["name"] == "sidecar"
    assert app["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "20"},
        {"name": "C", "value": "3"},
    ]
    assert [p["containerPort"] for p in app["ports"]] == [80, 8080]


def test_strategic_merge_patch_of_a_pod_may_only_change_images(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(pod())
    image = {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}
    patched = patch(http, POD_URL, image, "application/strategic-merge-patch+json")
    assert patched.status_code == 200
    assert patched.json()["spec"]["containers"][0]["image"] == "app:2"
    env = {"spec": {"containers": [{"name": "app", "env": [{"name": "C", "value": "3"}]}]}}
    refused = patch(http, POD_URL, env, "application/strategic-merge-patch+json")
    assert refused.status_code == 422
    [cause] = refused.json()["details"]["causes"]
    assert cause["field"] == "spec" and cause["reason"] == "FieldValueForbidden"
    assert cause["message"].startswith(
        "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    )


def test_strategic_merge_replaces_lists_without_merge_keys() -> None:
    first = strategic_merge(
        pod(),
        {"spec": {"containers": [{"name": "app", "command": ["a", "a2"]}]}},
        builtin_list_strategy,
    )
    patched = strategic_merge(
        first, {"spec": {"containers": [{"name": "app", "command": ["b"]}]}}, builtin_list_strategy
    )
    assert patched["spec"]["containers"][0]["command"] == ["b"]


def test_strategic_merge_is_unsupported_for_custom_resources(
    http: httpx.Client, fakekube: FakeKube, widgets: dict
) -> None:
    fakekube.create(widget("w"))
    response = patch(
        http,
        "/apis/example.com/v1/namespaces/default/widgets/w",
        {"spec": {"replicas": 3}},
        "application/strategic-merge-patch+json",
    )
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in response.json()["message"]


def test_unknown_patch_type_is_415(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("cm"))
    assert patch(http, CM_URL, {}, "application/json").status_code == 415


def test_server_side_apply_creates_when_missing_then_merges(http: httpx.Client) -> None:
    url = "/api/v1/namespaces/default/configmaps/applied"
    applied = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "applied"},
        "data": {"a": "1"},
    }
    created = patch(http, url, applied, "application/apply-patch+yaml", fieldManager="me")
    assert created.status_code == 201
    second = {**applied, "metadata": {"name": "applied", "labels": {"x": "y"}}, "data": {"b": "2"}}
    updated = patch(
        http, url, second, "application/apply-patch+yaml", fieldManager="me", force="true"
    )
    assert updated.status_code == 200
    assert updated.json()["data"] == {"a": "1", "b": "2"}
    assert updated.json()["metadata"]["labels"] == {"x": "y"}


def test_server_side_apply_requires_field_manager(http: httpx.Client) -> None:
    applied = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    response = patch(
        http, "/api/v1/namespaces/default/configmaps/x", applied, "application/apply-patch+yaml"
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "BadRequest"


def test_server_side_apply_accepts_yaml(http: httpx.Client) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n"
    response = http.patch(
        "/api/v1/namespaces/default/configmaps/y",
        content=body,
        headers={"Content-Type": "application/apply-patch+yaml"},
        params={"fieldManager": "m"},
    )
    assert response.status_code == 201 and response.json()["data"] == {"k": "v"}


def test_apply_merges_custom_resource_map_lists_by_key(fakekube: FakeKube, widgets: dict) -> None:
    fakekube.create(widget("w", ports=[{"name": "http", "number": 80}], tags=["a"]))
    applied = widget("w", ports=[{"name": "metrics", "number": 9090}], tags=["b"])
    result = fakekube.patch("example.com/v1", "Widget", "w", applied, patch_type="apply")
    assert [p["name"] for p in result["spec"]["ports"]] == ["http", "metrics"]
    assert result["spec"]["tags"] == ["b"]  # atomic list: replaced


def test_lightkube_patch_and_apply(client: Client) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="lk"), data={"a": "1"}))
    patched = client.patch(ConfigMap, "lk", {"data": {"b": "2"}}, patch_type=PatchType.MERGE)
    assert patched.data == {"a": "1", "b": "2"}
    applied = client.apply(
        ConfigMap(metadata=ObjectMeta(name="lk2", namespace="default"), data={"z": "1"})
    )
    assert applied.data == {"z": "1"}
    client.apply(
        ConfigMap(metadata=ObjectMeta(name="lk2", namespace="default"), data={"y": "2"}),
        force=True,
    )
    assert client.get(ConfigMap, "lk2").data == {"z": "1", "y": "2"}


def test_lightkube_patch_of_missing_object_is_not_found(client: Client) -> None:
    with pytest.raises(ApiError) as error:
        client.patch(ConfigMap, "missing", {"data": {}}, patch_type=PatchType.MERGE)
    assert error.value.status.code == 404
