"""Paths, discovery, Status errors and object metadata, per the Kubernetes API conventions."""

from __future__ import annotations

import re

import httpx2 as httpx
import pytest
from lightkube import ApiError, Client
from lightkube.resources.core_v1 import ConfigMap, Namespace

from fakekube import FakeKube, StatusError

from .conftest import configmap

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_health_and_version_endpoints_answer(http: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        assert http.get(path).text == "ok"
    assert http.get("/version").json()["major"] == "1"


def test_discovery_lists_groups_and_resources(http: httpx.Client) -> None:
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert {
        "batch",
        "coordination.k8s.io",
        "apiextensions.k8s.io",
        "rbac.authorization.k8s.io",
        "events.k8s.io",
    } <= set(groups)
    assert groups["batch"]["preferredVersion"] == {"groupVersion": "batch/v1", "version": "v1"}
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["pods"]["namespaced"] is True and core["pods"]["shortNames"] == ["po"]
    assert core["namespaces"]["namespaced"] is False
    assert "pods/status" in core and core["pods/status"]["verbs"] == ["get", "patch", "update"]
    batch = http.get("/apis/batch/v1").json()
    assert batch["groupVersion"] == "batch/v1"
    assert {"name": "jobs", "kind": "Job"}.items() <= batch["resources"][0].items()
    assert "watch" in batch["resources"][0]["verbs"]
    assert http.get("/apis/batch").json()["kind"] == "APIGroup"


def test_default_namespaces_exist(fakekube: FakeKube) -> None:
    names = {ns["metadata"]["name"] for ns in fakekube.list("v1", "Namespace")}
    assert {"default", "kube-system"} <= names
    default = fakekube.get("v1", "Namespace", "default")
    assert default["status"]["phase"] == "Active"
    assert default["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"


def test_not_found_is_a_status_with_exact_json_content_type(http: httpx.Client) -> None:
    response = http.get("/api/v1/namespaces/default/configmaps/missing")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "kind": "configmaps"},
        "code": 404,
    }
    group_response = http.get("/apis/batch/v1/namespaces/default/jobs/missing").json()
    assert group_response["message"] == 'jobs.batch "missing" not found'
    assert group_response["details"] == {"name": "missing", "group": "batch", "kind": "jobs"}


def test_unknown_paths_are_404_and_wrong_methods_405(http: httpx.Client) -> None:
    assert http.get("/apis/nope.example.com/v1/things").status_code == 404
    assert http.get("/api/v1/namespaces/default/nodes").status_code == 404
    assert http.get("/api/v1/namespaces/default/namespaces").status_code == 404
    not_allowed = http.post("/api/v1/namespaces/default/configmaps/x", json=configmap("x"))
    assert not_allowed.status_code == 405 and not_allowed.json()["reason"] == "MethodNotAllowed"
    assert (
        http.put("/api/v1/namespaces/default/configmaps", json=configmap("x")).status_code == 405
    )


def test_lightkube_raises_api_error_from_status(client: Client) -> None:
    with pytest.raises(ApiError) as error:
        client.get(ConfigMap, "missing", namespace="default")
    assert error.value.status.code == 404
    assert error.value.status.reason == "NotFound"


def test_create_sets_server_fields(http: httpx.Client) -> None:
    response = http.post("/api/v1/namespaces/default/configmaps", json=configmap("a"))
    assert response.status_code == 201
    meta = response.json()["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert RFC3339.match(meta["creationTimestamp"])
    assert meta["resourceVersion"].isdigit()
    second = http.post("/api/v1/namespaces/default/configmaps", json=configmap("b")).json()[
        "metadata"
    ]
    assert int(second["resourceVersion"]) > int(meta["resourceVersion"])
    assert second["uid"] != meta["uid"]


def test_create_fills_kind_and_namespace_and_strips_unknown_metadata(http: httpx.Client) -> None:
    body = {"metadata": {"name": "c", "bogus": 1, "uid": "client-chosen"}, "data": {"a": "b"}}
    created = http.post("/api/v1/namespaces/default/configmaps", json=body).json()
    assert created["kind"] == "ConfigMap" and created["apiVersion"] == "v1"
    assert created["metadata"]["namespace"] == "default"
    assert "bogus" not in created["metadata"] and created["metadata"]["uid"] != "client-chosen"


def test_create_rejects_mismatched_namespace_and_version(http: httpx.Client) -> None:
    other = configmap("x", namespace="kube-system")
    assert http.post("/api/v1/namespaces/default/configmaps", json=other).status_code == 400
    wrong_version = {**configmap("x"), "apiVersion": "v2"}
    assert (
        http.post("/api/v1/namespaces/default/configmaps", json=wrong_version).status_code == 400
    )


def test_create_in_missing_namespace_is_namespace_not_found(http: httpx.Client) -> None:
    response = http.post("/api/v1/namespaces/nowhere/configmaps", json=configmap("x", "nowhere"))
    assert response.status_code == 404
    assert response.json()["message"] == 'namespaces "nowhere" not found'


def test_namespaces_created_through_the_api_can_hold_objects(
    client: Client, fakekube: FakeKube
) -> None:
    client.create(Namespace(metadata={"name": "team-a"}))
    fakekube.create(configmap("x", "team-a"))
    assert fakekube.get("v1", "ConfigMap", "x", "team-a") is not None


def test_already_exists(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/default/configmaps", json=configmap("dup"))
    response = http.post("/api/v1/namespaces/default/configmaps", json=configmap("dup"))
    assert response.status_code == 409
    assert response.json()["reason"] == "AlreadyExists"
    assert response.json()["message"] == 'configmaps "dup" already exists'


def test_generate_name_appends_five_random_characters(fakekube: FakeKube) -> None:
    body = configmap("")
    body["metadata"] = {"generateName": "cache-", "namespace": "default"}
    names = {fakekube.create(body)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"cache-[a-z0-9]{5}", n) for n in names)


def test_missing_name_is_invalid(http: httpx.Client) -> None:
    response = http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {}})
    assert response.status_code == 422
    body = response.json()
    assert body["reason"] == "Invalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_invalid_names_and_labels_are_rejected(fakekube: FakeKube) -> None:
    with pytest.raises(StatusError) as error:
        fakekube.create(configmap("Not_A_Name"))
    assert error.value.code == 422
    assert "a lowercase RFC 1123 subdomain must consist of" in error.value.message
    with pytest.raises(StatusError) as error:
        fakekube.create(configmap("ok", app="x" * 64))
    assert "metadata.labels: Invalid value" in error.value.message
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "my.svc"},
        "spec": {"ports": [{"port": 80}]},
    }
    with pytest.raises(StatusError) as error:
        fakekube.create(service)
    assert "a DNS-1035 label" in error.value.message


def test_put_checks_resource_version(http: httpx.Client) -> None:
    created = http.post("/api/v1/namespaces/default/configmaps", json=configmap("cm")).json()
    fresh = {**created, "data": {"k": "v2"}}
    updated = http.put("/api/v1/namespaces/default/configmaps/cm", json=fresh)
    assert updated.status_code == 200
    assert int(updated.json()["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    stale = http.put(
        "/api/v1/namespaces/default/configmaps/cm", json={**created, "data": {"k": "v3"}}
    )
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert stale.json()["message"] == (
        'Operation cannot be fulfilled on configmaps "cm": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_put_without_resource_version_is_unconditional(http: httpx.Client) -> None:
    created = http.post("/api/v1/namespaces/default/configmaps", json=configmap("cm")).json()
    del created["metadata"]["resourceVersion"]
    response = http.put(
        "/api/v1/namespaces/default/configmaps/cm", json={**created, "data": {"k": "new"}}
    )
    assert response.status_code == 200 and response.json()["data"] == {"k": "new"}


def test_put_with_mismatched_name_is_bad_request(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces/default/configmaps", json=configmap("cm"))
    assert (
        http.put("/api/v1/namespaces/default/configmaps/cm", json=configmap("other")).status_code
        == 400
    )
    assert (
        http.put(
            "/api/v1/namespaces/default/configmaps/missing", json=configmap("missing")
        ).status_code
        == 404
    )


def test_no_op_update_keeps_resource_version(fakekube: FakeKube) -> None:
    created = fakekube.create(configmap("same"))
    again = fakekube.replace(created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_generation_follows_spec_changes_only(fakekube: FakeKube) -> None:
    from .conftest import job

    created = fakekube.create(job("gen", parallelism=1))
    assert created["metadata"]["generation"] == 1
    labelled = fakekube.patch("batch/v1", "Job", "gen", {"metadata": {"labels": {"x": "y"}}})
    assert labelled["metadata"]["generation"] == 1
    with_status = fakekube.patch_status("batch/v1", "Job", "gen", {"active": 1})
    assert with_status["metadata"]["generation"] == 1
    resized = fakekube.patch("batch/v1", "Job", "gen", {"spec": {"parallelism": 3}})
    assert resized["metadata"]["generation"] == 2
    assert "generation" not in fakekube.create(configmap("no-generation"))["metadata"]


def test_list_is_a_typed_list_with_the_current_resource_version(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    http.post("/api/v1/namespaces/default/configmaps", json=configmap("one"))
    body = http.get("/api/v1/namespaces/default/configmaps").json()
    assert body["kind"] == "ConfigMapList" and body["apiVersion"] == "v1"
    assert body["metadata"]["resourceVersion"] == str(fakekube.resource_version)
    assert [item["metadata"]["name"] for item in body["items"]] == ["one"]


def test_cluster_wide_list_spans_namespaces(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("a", "default"))
    fakekube.create(configmap("b", "kube-system"))
    items = http.get("/api/v1/configmaps").json()["items"]
    assert {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items} == {
        ("default", "a"),
        ("kube-system", "b"),
    }


def test_label_selectors(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("web", app="web", tier="front"))
    fakekube.create(configmap("api", app="api", tier="back"))
    fakekube.create(configmap("bare"))

    def names(selector: str) -> set[str]:
        response = http.get(
            "/api/v1/namespaces/default/configmaps", params={"labelSelector": selector}
        )
        return {item["metadata"]["name"] for item in response.json()["items"]}

    assert names("app=web") == {"web"}
    assert names("app==api") == {"api"}
    assert names("app!=web") == {"api", "bare"}
    assert names("app in (web, api)") == {"web", "api"}
    assert names("app notin (web)") == {"api", "bare"}
    assert names("tier") == {"web", "api"}
    assert names("!tier") == {"bare"}
    assert names("app in (web,api),tier=back") == {"api"}
    assert http.get("/api/v1/configmaps", params={"labelSelector": "a b c"}).status_code == 400


def test_field_selectors(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("a", "default"))
    fakekube.create(configmap("b", "kube-system"))

    def names(selector: str) -> set[str]:
        response = http.get("/api/v1/configmaps", params={"fieldSelector": selector})
        return {item["metadata"]["name"] for item in response.json()["items"]}

    assert names("metadata.name=a") == {"a"}
    assert names("metadata.namespace=kube-system") == {"b"}
    assert names("metadata.name!=a,metadata.namespace!=kube-system") == set()
    unsupported = http.get("/api/v1/configmaps", params={"fieldSelector": "data.k=v"})
    assert unsupported.status_code == 400
    assert unsupported.json()["message"] == "field label not supported: data.k"


def test_list_pagination_with_limit_and_continue(
    http: httpx.Client, fakekube: FakeKube, client: Client
) -> None:
    for index in range(5):
        fakekube.create(configmap(f"cm-{index}"))
    first = http.get("/api/v1/namespaces/default/configmaps", params={"limit": 2}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["cm-0", "cm-1"]
    assert first["metadata"]["remainingItemCount"] == 3
    rest = http.get(
        "/api/v1/namespaces/default/configmaps",
        params={"limit": 10, "continue": first["metadata"]["continue"]},
    ).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["cm-2", "cm-3", "cm-4"]
    assert "continue" not in rest["metadata"]
    assert len(list(client.list(ConfigMap, namespace="default", chunk_size=2))) == 5


def test_dry_run_does_not_persist(http: httpx.Client, fakekube: FakeKube) -> None:
    response = http.post(
        "/api/v1/namespaces/default/configmaps", params={"dryRun": "All"}, json=configmap("ghost")
    )
    assert response.status_code == 201
    assert fakekube.get("v1", "ConfigMap", "ghost") is None


def test_yaml_request_bodies_are_accepted(http: httpx.Client) -> None:
    body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n"
    response = http.post(
        "/api/v1/namespaces/default/configmaps",
        content=body,
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == 201 and response.json()["data"] == {"a": "b"}
    bad = http.post(
        "/api/v1/namespaces/default/configmaps",
        content="x",
        headers={"Content-Type": "text/plain"},
    )
    assert bad.status_code == 415


def test_secret_string_data_is_folded_into_data(fakekube: FakeKube) -> None:
    secret = fakekube.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {"password": "hunter2"},
        }
    )
    assert secret["data"] == {"password": "aHVudGVyMg=="}
    assert secret["type"] == "Opaque" and "stringData" not in secret


def test_core_and_events_k8s_io_events_share_storage(fakekube: FakeKube) -> None:
    fakekube.create(
        {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "e1"},
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "note": "hello",
            "reason": "Created",
            "type": "Normal",
            "reportingController": "me",
            "reportingInstance": "me-1",
            "action": "Create",
            "eventTime": "2025-01-01T00:00:00.000000Z",
        }
    )
    core = fakekube.get("v1", "Event", "e1")
    assert core["message"] == "hello" and core["involvedObject"]["name"] == "p"
    assert core["reportingComponent"] == "me"
    assert fakekube.get("events.k8s.io/v1", "Event", "e1")["note"] == "hello"


def test_table_output_for_builtins_has_name_and_age(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("tabled"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    table = http.get("/api/v1/namespaces/default/configmaps", headers={"Accept": accept}).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"][0] == "tabled"
    assert re.fullmatch(r"\d+s", table["rows"][0]["cells"][1])
