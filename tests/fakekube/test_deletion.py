"""Deletion: finalizers, propagation policies and ownerReference garbage collection."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from lightkube import Client
from lightkube.resources.batch_v1 import Job
from lightkube.types import CascadeType

from fakekube import FakeKube, StatusError

from .conftest import configmap, job, widget


def owned_by(obj: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": block,
    }


def child(name: str, owner: dict[str, Any], *, block: bool = False) -> dict[str, Any]:
    body = configmap(name)
    body["metadata"]["ownerReferences"] = [owned_by(owner, block=block)]
    return body


def exists(fakekube: FakeKube, name: str) -> bool:
    return fakekube.get("v1", "ConfigMap", name) is not None


def test_delete_returns_the_object_or_a_success_status(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("cm"))
    status = http.delete("/api/v1/namespaces/default/configmaps/cm").json()
    assert status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"]["name"] == "cm" and status["details"]["kind"] == "configmaps"
    fakekube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}})
    deleted = http.delete("/api/v1/namespaces/default/serviceaccounts/sa").json()
    assert deleted["kind"] == "ServiceAccount"
    assert http.delete("/api/v1/namespaces/default/configmaps/cm").status_code == 404


def test_finalizers_hold_an_object_until_they_are_removed(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    body = configmap("held")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    fakekube.create(body)
    with http.stream(
        "GET",
        "/api/v1/namespaces/default/configmaps",
        params={"watch": "true", "timeoutSeconds": "10"},
    ) as response:
        lines = response.iter_lines()
        assert '"ADDED"' in next(lines)
        deleting = http.delete("/api/v1/namespaces/default/configmaps/held")
        assert deleting.status_code == 200
        meta = deleting.json()["metadata"]
        assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
        assert '"MODIFIED"' in next(lines)
        assert exists(fakekube, "held")
        with pytest.raises(StatusError) as error:
            fakekube.patch(
                "v1",
                "ConfigMap",
                "held",
                {"metadata": {"finalizers": ["example.com/cleanup", "new/one"]}},
            )
        assert error.value.code == 422
        fakekube.patch("v1", "ConfigMap", "held", {"metadata": {"finalizers": None}})
        assert '"DELETED"' in next(lines)
        fakekube.expire_watches()
    assert not exists(fakekube, "held")


def test_delete_preconditions(http: httpx.Client, fakekube: FakeKube) -> None:
    created = fakekube.create(configmap("cm"))
    wrong = {"preconditions": {"uid": "not-the-uid"}}
    response = http.request("DELETE", "/api/v1/namespaces/default/configmaps/cm", json=wrong)
    assert response.status_code == 409
    right = {"preconditions": {"uid": created["metadata"]["uid"]}}
    assert (
        http.request("DELETE", "/api/v1/namespaces/default/configmaps/cm", json=right).status_code
        == 200
    )


def test_background_deletion_cascades_through_two_levels(
    fakekube: FakeKube, widgets: dict
) -> None:
    owner = fakekube.create(widget("top"))
    middle = fakekube.create(
        job("middle") | {"metadata": {"name": "middle", "ownerReferences": [owned_by(owner)]}}
    )
    leaf = fakekube.create(child("leaf", middle))
    fakekube.create(configmap("bystander"))
    fakekube.delete("example.com/v1", "Widget", "top")
    fakekube.wait_for(
        lambda: not exists(fakekube, "leaf"), message="the grandchild to be collected"
    )
    assert fakekube.get("batch/v1", "Job", "middle") is None
    assert exists(fakekube, "bystander")
    assert leaf["metadata"]["uid"] != middle["metadata"]["uid"]


def test_dependents_with_another_live_owner_survive(fakekube: FakeKube) -> None:
    first = fakekube.create(configmap("first"))
    second = fakekube.create(configmap("second"))
    shared = configmap("shared")
    shared["metadata"]["ownerReferences"] = [
        owned_by(first),
        owned_by(second) | {"controller": False},
    ]
    fakekube.create(shared)
    fakekube.delete("v1", "ConfigMap", "first")
    fakekube.wait_for(
        lambda: len(fakekube.get("v1", "ConfigMap", "shared")["metadata"]["ownerReferences"]) == 1,
        message="the dangling reference to be removed",
    )
    assert (
        fakekube.get("v1", "ConfigMap", "shared")["metadata"]["ownerReferences"][0]["name"]
        == "second"
    )


def test_objects_whose_owner_never_existed_are_collected(fakekube: FakeKube) -> None:
    orphan = configmap("orphan")
    orphan["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": "ghost",
            "uid": "00000000-0000-0000-0000-000000000000",
        }
    ]
    fakekube.create(orphan)
    fakekube.wait_for(lambda: not exists(fakekube, "orphan"), message="garbage collection")


def test_orphan_policy_keeps_dependents_and_drops_their_references(fakekube: FakeKube) -> None:
    owner = fakekube.create(configmap("owner"))
    fakekube.create(child("kept", owner))
    deleting = fakekube.delete("v1", "ConfigMap", "owner", propagation="Orphan")
    assert deleting["metadata"]["finalizers"] == ["orphan"]
    fakekube.wait_for(lambda: not exists(fakekube, "owner"), message="the owner to go")
    assert "ownerReferences" not in fakekube.get("v1", "ConfigMap", "kept")["metadata"]


def test_jobs_default_to_orphaning_their_pods(client: Client, fakekube: FakeKube) -> None:
    fakekube.create(job("j"))
    pods = fakekube.jobs.create_pods("default", "j")
    client.delete(Job, "j", namespace="default")
    fakekube.wait_for(
        lambda: fakekube.get("batch/v1", "Job", "j") is None, message="the Job to go"
    )
    pod = fakekube.get("v1", "Pod", pods[0]["metadata"]["name"])
    assert pod is not None and "ownerReferences" not in pod["metadata"]


def test_jobs_deleted_in_background_take_their_pods(client: Client, fakekube: FakeKube) -> None:
    fakekube.create(job("j"))
    pod_name = fakekube.jobs.create_pods("default", "j")[0]["metadata"]["name"]
    client.delete(Job, "j", namespace="default", cascade=CascadeType.BACKGROUND)
    fakekube.wait_for(
        lambda: fakekube.get("v1", "Pod", pod_name) is None, message="the pod to be collected"
    )


def test_foreground_deletion_waits_for_blocking_dependents(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    owner = fakekube.create(configmap("owner"))
    blocker = child("blocker", owner, block=True)
    blocker["metadata"]["finalizers"] = ["example.com/slow"]
    fakekube.create(blocker)
    response = http.request(
        "DELETE",
        "/api/v1/namespaces/default/configmaps/owner",
        json={"propagationPolicy": "Foreground"},
    )
    assert "foregroundDeletion" in response.json()["metadata"]["finalizers"]
    fakekube.wait_for(
        lambda: fakekube.get("v1", "ConfigMap", "blocker")["metadata"].get("deletionTimestamp"),
        message="the dependent to be deleted",
    )
    assert exists(fakekube, "owner")
    fakekube.patch("v1", "ConfigMap", "blocker", {"metadata": {"finalizers": None}})
    fakekube.wait_for(
        lambda: not exists(fakekube, "owner"), message="the owner to go after its dependent"
    )


def test_deleting_a_namespace_deletes_its_contents(fakekube: FakeKube) -> None:
    fakekube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
    fakekube.create(configmap("inside", "doomed"))
    held = configmap("held", "doomed")
    held["metadata"]["finalizers"] = ["example.com/slow"]
    fakekube.create(held)
    deleting = fakekube.delete("v1", "Namespace", "doomed")
    assert deleting["status"]["phase"] == "Terminating"
    fakekube.wait_for(
        lambda: fakekube.get("v1", "ConfigMap", "inside", "doomed") is None,
        message="the namespace's contents to go",
    )
    with pytest.raises(StatusError) as error:
        fakekube.create(configmap("late", "doomed"))
    assert error.value.code == 403
    assert fakekube.get("v1", "Namespace", "doomed") is not None  # still waiting for "held"
    fakekube.patch(
        "v1", "ConfigMap", "held", {"metadata": {"finalizers": None}}, namespace="doomed"
    )
    fakekube.wait_for(
        lambda: fakekube.get("v1", "Namespace", "doomed") is None, message="the namespace to go"
    )


def test_delete_collection_by_label(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("a", app="x"))
    fakekube.create(configmap("b", app="x"))
    fakekube.create(configmap("c", app="y"))
    response = http.delete(
        "/api/v1/namespaces/default/configmaps", params={"labelSelector": "app=x"}
    )
    assert response.json()["kind"] == "ConfigMapList" and len(response.json()["items"]) == 2
    assert [c["metadata"]["name"] for c in fakekube.list("v1", "ConfigMap", "default")] == ["c"]
