"""/openapi/v2 and /openapi/v3: the documents kubectl downloads to validate, explain and patch."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import yaml

from fakekube import FakeKube

from .conftest import CRD_FILE

WIDGET = "com.example.v1.Widget"
WIDGET_LIST = "com.example.v1.WidgetList"
OBJECT_META = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def v3_index(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi/v3")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    return response.json()["paths"]


def v3_document(http: httpx.Client, key: str) -> dict[str, Any]:
    """The document the index points at, fetched the way kubectl does: by its hashed URL."""
    url = v3_index(http)[key]["serverRelativeURL"]
    response = http.get(url, headers={"Accept": "application/json"})
    assert response.status_code == 200
    return response.json()


def references(node: Any) -> set[str]:
    """Every $ref in a document."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(references(v) for v in node))
    return set()


def operations(document: dict[str, Any], method: str, kind: str) -> list[dict[str, Any]]:
    return [
        item[method]
        for item in document["paths"].values()
        if method in item and item[method]["x-kubernetes-group-version-kind"]["kind"] == kind
    ]


def test_index_lists_every_group_version_with_a_hashed_url(http: httpx.Client) -> None:
    index = v3_index(http)
    assert {
        "api/v1",
        "apis/batch/v1",
        "apis/coordination.k8s.io/v1",
        "apis/discovery.k8s.io/v1",
        "apis/events.k8s.io/v1",
        "apis/rbac.authorization.k8s.io/v1",
        "apis/apiextensions.k8s.io/v1",
    } <= set(index)
    for key, entry in index.items():
        path, _, query = entry["serverRelativeURL"].partition("?")
        assert path == f"/openapi/v3/{key}"
        assert query.startswith("hash=") and len(query) == len("hash=") + 128


def test_a_document_is_cached_by_its_hash(http: httpx.Client) -> None:
    url = v3_index(http)["api/v1"]["serverRelativeURL"]
    etag = url.rpartition("hash=")[2]
    response = http.get(url)
    assert response.headers["ETag"] == f'"{etag}"'
    assert response.headers["Cache-Control"] == "public, immutable"
    assert response.headers["Vary"] == "Accept"
    assert http.get(url, headers={"If-None-Match": f'"{etag}"'}).status_code == 304
    stale = http.get("/openapi/v3/api/v1?hash=0123", follow_redirects=False)
    assert stale.status_code == 301
    assert stale.headers["Location"] == url


def test_unknown_group_versions_and_protobuf_only_clients_get_no_document(
    http: httpx.Client,
) -> None:
    assert http.get("/openapi/v3/apis/example.com/v1").status_code == 404
    protobuf = {"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    assert http.get("/openapi/v2", headers=protobuf).status_code == 406
    assert http.get("/openapi/v3/api/v1", headers=protobuf).status_code == 406


def test_built_in_kinds_carry_their_kubernetes_schemas(http: httpx.Client) -> None:
    core = v3_document(http, "api/v1")
    schemas = core["components"]["schemas"]
    for kind in ("Namespace", "Pod", "Service", "ConfigMap", "Secret", "Event"):
        definition = schemas[f"io.k8s.api.core.v1.{kind}"]
        assert definition["x-kubernetes-group-version-kind"] == [
            {"group": "", "kind": kind, "version": "v1"}
        ]
        assert definition["type"] == "object"
    config_map = schemas["io.k8s.api.core.v1.ConfigMap"]
    assert config_map["properties"]["apiVersion"]["type"] == "string"
    assert "enum" not in config_map["properties"]["apiVersion"]
    assert config_map["properties"]["data"]["additionalProperties"] == {"type": "string"}
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert references(core) <= {f"#/components/schemas/{name}" for name in schemas}
    for key, group, kind in (
        ("apis/batch/v1", "batch", "Job"),
        ("apis/coordination.k8s.io/v1", "coordination.k8s.io", "Lease"),
        ("apis/discovery.k8s.io/v1", "discovery.k8s.io", "EndpointSlice"),
        ("apis/events.k8s.io/v1", "events.k8s.io", "Event"),
        ("apis/rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io", "Role"),
        ("apis/rbac.authorization.k8s.io/v1", "rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("apis/apiextensions.k8s.io/v1", "apiextensions.k8s.io", "CustomResourceDefinition"),
    ):
        document = v3_document(http, key)
        gvks = [
            gvk
            for schema in document["components"]["schemas"].values()
            for gvk in schema.get("x-kubernetes-group-version-kind", [])
        ]
        assert {"group": group, "kind": kind, "version": "v1"} in gvks


def test_paths_say_which_parameters_and_patch_types_each_kind_takes(http: httpx.Client) -> None:
    core = v3_document(http, "api/v1")
    item = core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]
    assert {p["name"] for p in item["parameters"]} == {"name", "namespace", "pretty"}
    patch = item["patch"]
    assert patch["operationId"] == "patchCoreV1NamespacedConfigMap"
    assert patch["x-kubernetes-action"] == "patch"
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "",
        "kind": "ConfigMap",
        "version": "v1",
    }
    assert {p["name"] for p in patch["parameters"]} >= {
        "dryRun",
        "fieldManager",
        "fieldValidation",
    }
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]
    assert core["paths"]["/api/v1/configmaps"]["get"]["operationId"] == (
        "listCoreV1ConfigMapForAllNamespaces"
    )
    assert "/api/v1/namespaces/{namespace}/pods/{name}/status" in core["paths"]
    assert "/api/v1/namespaces/{namespace}/pods/{name}/log" in core["paths"]
    assert "delete" not in core["paths"]["/api/v1/namespaces"]  # no deletecollection


def test_crd_schemas_are_published_and_follow_the_crd(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    assert "apis/example.com/v1" not in v3_index(http)
    crd = fakekube.apply_yaml(CRD_FILE.read_text())[0]

    document = v3_document(http, "apis/example.com/v1")
    widget = document["components"]["schemas"][WIDGET]
    assert widget["x-kubernetes-group-version-kind"] == [
        {"group": "example.com", "kind": "Widget", "version": "v1"}
    ]
    published_spec = widget["properties"]["spec"]
    declared = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert published_spec["properties"]["replicas"] == declared["properties"]["replicas"]
    assert widget["properties"]["metadata"]["$ref"] == OBJECT_META
    assert widget["properties"]["apiVersion"]["type"] == "string"
    assert widget["properties"]["kind"]["type"] == "string"
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in document["components"]["schemas"]
    listing = document["components"]["schemas"][WIDGET_LIST]
    assert listing["properties"]["items"]["items"] == {"$ref": f"#/components/schemas/{WIDGET}"}
    assert document["info"]["title"] == "Kubernetes CRD Swagger"
    schemas = document["components"]["schemas"]
    assert references(document) <= {f"#/components/schemas/{name}" for name in schemas}
    (patch,) = [
        op
        for path, item in document["paths"].items()
        if not path.endswith("/status")
        for op in [item.get("patch")]
        if op
    ]
    assert patch["operationId"] == "patchExampleComV1NamespacedWidget"
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert set(patch["requestBody"]["content"]) == {
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    }
    assert len(operations(document, "get", "Widget")) == 4  # list all, list, read, read status

    v2 = http.get("/openapi/v2").json()
    assert v2["swagger"] == "2.0"
    assert v2["definitions"][WIDGET]["properties"]["metadata"]["$ref"] == (
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    )
    assert (
        "default" not in v2["definitions"][WIDGET]["properties"]["spec"]["properties"]["replicas"]
    )
    assert "/apis/example.com/v1/namespaces/{namespace}/widgets/{name}" in v2["paths"]

    # A schema change shows at a new hash.
    old_url = v3_index(http)["apis/example.com/v1"]["serverRelativeURL"]
    changed = yaml.safe_load(CRD_FILE.read_text())
    spec_schema = changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["properties"]["colour"] = {"type": "string", "description": "Paint."}
    fakekube.apply_yaml(yaml.safe_dump(changed))
    new_url = v3_index(http)["apis/example.com/v1"]["serverRelativeURL"]
    assert new_url != old_url
    colour = http.get(new_url).json()["components"]["schemas"][WIDGET]["properties"]["spec"]
    assert colour["properties"]["colour"] == {"type": "string", "description": "Paint."}

    fakekube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com")
    fakekube.wait_for(
        lambda: "apis/example.com/v1" not in v3_index(http), message="the CRD's document to go"
    )
    assert WIDGET not in http.get("/openapi/v2").json()["definitions"]
    assert http.get(new_url).status_code == 404
