"""fieldValidation: unknown and duplicate fields are refused, reported or dropped."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest

from fakekube import FakeKube

from .conftest import configmap, widget

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"
# A ConfigMap with a duplicate key and unknown fields at the top, in metadata and in a field.
BAD_CONFIGMAP = """{
  "apiVersion": "v1",
  "kind": "ConfigMap",
  "metadata": {"name": "bad", "name": "bad", "colour": "red"},
  "spare": 1,
  "data": {"k": "v"},
  "immutable": false,
  "immutable": false
}"""


def post(http: httpx.Client, url: str, body: str, **params: str) -> httpx.Response:
    return http.post(
        url, content=body, params=params, headers={"Content-Type": "application/json"}
    )


def warnings(response: httpx.Response) -> list[str]:
    return response.headers.get_list("Warning")


def test_strict_refuses_unknown_and_duplicate_fields_in_document_order(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    response = post(http, CONFIGMAPS, BAD_CONFIGMAP, fieldValidation="Strict")
    assert response.status_code == 400
    status = response.json()
    assert status["reason"] == "BadRequest"
    assert status["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'duplicate field "metadata.name", unknown field "metadata.colour", '
        'unknown field "spare", duplicate field "immutable"'
    )
    assert fakekube.get("v1", "ConfigMap", "bad", "default") is None


@pytest.mark.parametrize("directive", ["Warn", None])
def test_warn_is_the_default_and_stores_the_object_without_unknown_fields(
    http: httpx.Client, fakekube: FakeKube, directive: str | None
) -> None:
    params = {"fieldValidation": directive} if directive else {}
    response = post(http, CONFIGMAPS, BAD_CONFIGMAP, **params)
    assert response.status_code == 201
    assert warnings(response) == [
        '299 - "duplicate field \\"metadata.name\\""',
        '299 - "unknown field \\"metadata.colour\\""',
        '299 - "unknown field \\"spare\\""',
        '299 - "duplicate field \\"immutable\\""',
    ]
    stored = fakekube.get("v1", "ConfigMap", "bad", "default")
    assert stored is not None
    assert "spare" not in stored and "colour" not in stored["metadata"]


def test_ignore_drops_unknown_fields_silently(http: httpx.Client, fakekube: FakeKube) -> None:
    response = post(http, CONFIGMAPS, BAD_CONFIGMAP, fieldValidation="Ignore")
    assert response.status_code == 201
    assert warnings(response) == []
    assert "spare" not in response.json()


def test_an_unknown_directive_is_refused(http: httpx.Client) -> None:
    response = post(http, CONFIGMAPS, json.dumps(configmap("a")), fieldValidation="Loud")
    assert response.status_code == 422
    assert response.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loud": '
        'supported values: "", "Ignore", "Strict", "Warn"'
    )


def test_nested_unknown_fields_name_their_path(http: httpx.Client) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "imagePullPolcy": "Never"}]},
    }
    response = post(
        http, "/api/v1/namespaces/default/pods", json.dumps(pod), fieldValidation="Strict"
    )
    assert response.status_code == 400
    assert response.json()["message"].endswith(
        'strict decoding error: unknown field "spec.containers[0].imagePullPolcy"'
    )


def test_merge_patch_reports_patch_duplicates_then_unknown_fields(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("cm"))
    patch = '{"data": {"k": "1", "k": "2"}, "zeta": 1, "alpha": 2}'
    response = http.patch(
        f"{CONFIGMAPS}/cm",
        content=patch,
        params={"fieldValidation": "Strict"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        'strict decoding error: duplicate field "data.k", unknown field "alpha", '
        'unknown field "zeta"'
    )
    response = http.patch(
        f"{CONFIGMAPS}/cm",
        content=patch,
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    )
    assert response.status_code == 200
    assert len(warnings(response)) == 3
    assert "zeta" not in fakekube.get("v1", "ConfigMap", "cm", "default")


def test_json_patch_reports_its_own_unknown_and_duplicate_fields(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("cm"))
    patch = '[{"op": "add", "path": "/spare", "value": 1, "extra": 0}]'
    response = http.patch(
        f"{CONFIGMAPS}/cm",
        content=patch,
        params={"fieldValidation": "Strict"},
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == (
        'strict decoding error: json patch unknown field "[0].extra", unknown field "spare"'
    )


def test_custom_resources_list_duplicates_then_pruned_fields(
    http: httpx.Client, fakekube: FakeKube, widgets: object
) -> None:
    body = json.dumps(widget("w"))[:-1] + ', "extra": 1}'
    body = body.replace('"spec": {', '"spec": {"zz": 1, "image": "x", ')
    response = post(http, WIDGETS, body, fieldValidation="Strict")
    assert response.status_code == 400
    assert response.json()["message"] == (
        'Widget in version "v1" cannot be handled as a Widget: strict decoding error: '
        'duplicate field "spec.image", unknown field "extra", unknown field "spec.zz"'
    )
    response = post(http, WIDGETS, body)
    assert response.status_code == 201
    assert "zz" not in response.json()["spec"] and "extra" not in response.json()
    assert len(warnings(response)) == 3

    response = http.patch(
        f"{WIDGETS}/w",
        content='{"spec": {"foo": 1}}',
        params={"fieldValidation": "Strict"},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert response.status_code == 400
    assert response.json()["message"] == 'strict decoding error: unknown field "spec.foo"'
