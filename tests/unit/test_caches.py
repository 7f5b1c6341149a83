"""The caches: which changes wake which test, and what is kept of each object."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from lightkube import AsyncClient

from fakekube.server import FakeKube
from reconciler.api.naming import ObjectKey
from reconciler.crds import crd_text
from reconciler.resources.labels import MANAGED_BY
from reconciler.runtime.caches import Caches
from tests.unit.runtime_support import client, eventually, requests_for

__all__ = ["client"]  # fixture

MANAGED = {MANAGED_BY[0]: MANAGED_BY[1]}
T = ObjectKey("default", "t")


def locusttest(name: str = "t", namespace: str = "default", workers: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "locustio/locust:2.47.0",
            "master": {"command": "--locustfile /lotest/src/locustfile.py"},
            "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": workers},
        },
    }


def owned_by(test: dict[str, Any], controller: bool = True) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "locust.io/v2",
            "kind": "LocustTest",
            "name": test["metadata"]["name"],
            "uid": test["metadata"]["uid"],
            "controller": controller,
        }
    ]


def service(name: str, owners: list[dict[str, Any]], **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": labels,
            "ownerReferences": owners,
        },
        "spec": {"selector": {"app": name}, "ports": [{"port": 5557}]},
    }


def job(name: str, owners: list[dict[str, Any]], **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": labels,
            "ownerReferences": owners,
        },
        "spec": {
            "parallelism": 2,
            "template": {
                "metadata": {"labels": {"app": name, **labels}},
                "spec": {
                    "restartPolicy": "Never",
                    "initContainers": [
                        {
                            "name": "exporter",
                            "image": "containersol/locust_exporter:v0.5.0",
                            "restartPolicy": "Always",
                        }
                    ],
                    "containers": [{"name": "locust", "image": "locustio/locust:2.47.0"}],
                },
            },
        },
    }


class Wakes:
    def __init__(self) -> None:
        self.keys: list[ObjectKey] = []

    def __call__(self, key: ObjectKey) -> None:
        self.keys.append(key)


Start = Callable[..., "Caches"]


@pytest.fixture
async def start(fakekube: FakeKube, client: AsyncClient) -> AsyncIterator[Start]:
    """Fill caches from the fake API server (with the CRD installed) and keep them current."""
    fakekube.apply_yaml(crd_text())
    tasks: list[asyncio.Task[None]] = []

    async def start(wakes: Wakes, namespaces: tuple[str, ...] = ()) -> Caches:
        caches = Caches(client, namespaces, wakes)
        tasks.extend(asyncio.create_task(i.run()) for i in caches.informers)
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in caches.informers)), 20)
        return caches

    yield start  # type: ignore[misc]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_new_test_or_generation_wakes_it_but_its_status_and_its_deletion_do_not(
    fakekube: FakeKube, start: Start
) -> None:
    fakekube.create(locusttest("early"))
    wakes = Wakes()
    caches = await start(wakes)
    assert wakes.keys == [ObjectKey("default", "early")]  # found by the first list

    fakekube.create(locusttest())
    await eventually(lambda: wakes.keys[1:] == [T], "the new test to wake")

    fakekube.patch_status("locust.io/v2", "LocustTest", "t", {"phase": "Pending"}, "default")
    await eventually(
        lambda: ((caches.test(T) or {}).get("status") or {}).get("phase") == "Pending",
        "the status write in the cache",
    )
    assert wakes.keys[1:] == [T]  # the operator's own status writes do not wake the test

    fakekube.patch("locust.io/v2", "LocustTest", "t", {"spec": {"worker": {"replicas": 5}}})
    await eventually(lambda: wakes.keys[1:] == [T, T], "the new generation to wake")

    fakekube.delete("locust.io/v2", "LocustTest", "t", "default")
    await eventually(lambda: caches.test(T) is None, "the deletion in the cache")
    assert wakes.keys[1:] == [T, T]  # garbage collection removes the children


async def test_a_child_wakes_the_test_that_controls_it(fakekube: FakeKube, start: Start) -> None:
    test = fakekube.create(locusttest())
    wakes = Wakes()
    caches = await start(wakes)
    wakes.keys.clear()

    fakekube.create(service("t-master", owned_by(test), **MANAGED))
    await eventually(lambda: wakes.keys == [T], "the Service to wake the test")
    fakekube.create(job("t-master", owned_by(test), **MANAGED))
    await eventually(lambda: wakes.keys == [T, T], "the Job to wake the test")
    fakekube.patch_status("batch/v1", "Job", "t-master", {"active": 1}, "default")
    await eventually(lambda: len(wakes.keys) == 3, "the Job's status to wake the test")
    fakekube.delete("v1", "Service", "t-master", "default")
    await eventually(lambda: len(wakes.keys) == 4, "the Service's deletion to wake the test")
    assert set(wakes.keys) == {T}
    assert caches.service(ObjectKey("default", "t-master")) is None

    # Each of these is followed, in the same watch stream, by a child that does wake the test.
    fakekube.create(job("unlabelled", owned_by(test)))
    fakekube.create(job("not-controlled", owned_by(test, controller=False), **MANAGED))
    fakekube.create(job("orphan", [], **MANAGED))
    fakekube.create(job("t-worker", owned_by(test), **MANAGED))
    await eventually(lambda: caches.job(ObjectKey("default", "t-worker")), "the worker Job")
    assert len(wakes.keys) == 5
    assert caches.job(ObjectKey("default", "unlabelled")) is None
    assert caches.job(ObjectKey("default", "orphan")) is not None  # cached, waking nobody


async def test_children_are_cached_without_what_the_controller_never_reads(
    fakekube: FakeKube, start: Start
) -> None:
    test = fakekube.create(locusttest())
    fakekube.create(service("t-master", owned_by(test), **MANAGED))
    fakekube.create(job("t-master", owned_by(test), **MANAGED))
    fakekube.jobs.create_pods("default", "t-master", count=1)

    caches = await start(Wakes())

    cached_service = caches.service(ObjectKey("default", "t-master"))
    assert cached_service is not None and set(cached_service) == {"apiVersion", "kind", "metadata"}
    assert "managedFields" not in cached_service["metadata"]
    assert cached_service["metadata"]["ownerReferences"][0]["uid"] == test["metadata"]["uid"]
    cached_job = caches.job(ObjectKey("default", "t-master"))
    assert cached_job is not None and set(cached_job) == {
        "apiVersion",
        "kind",
        "metadata",
        "status",
    }
    (pod,) = caches.pods("default", ["t-master"])
    assert set(pod) == {"apiVersion", "kind", "metadata", "status", "spec"}
    assert pod["spec"] == {"initContainers": [{"name": "exporter", "restartPolicy": "Always"}]}


async def test_pods_wake_the_test_of_their_job_and_are_found_by_job(
    fakekube: FakeKube, start: Start
) -> None:
    test = fakekube.create(locusttest())
    fakekube.create(job("t-master", owned_by(test), **MANAGED))
    fakekube.create(job("t-worker", owned_by(test), **MANAGED))
    fakekube.create(job("other-master", [], **MANAGED))  # a Job no test controls
    wakes = Wakes()
    caches = await start(wakes)
    wakes.keys.clear()

    fakekube.jobs.create_pods("default", "other-master", count=1)
    master = fakekube.jobs.create_pods("default", "t-master", count=1)[0]["metadata"]["name"]
    workers = [p["metadata"]["name"] for p in fakekube.jobs.create_pods("default", "t-worker")]
    await eventually(lambda: len(wakes.keys) == 3, "three pods to wake the test")
    assert set(wakes.keys) == {T}  # the other Job's pod, first in the stream, woke nobody

    def names(*jobs: str) -> set[str]:
        return {p["metadata"]["name"] for p in caches.pods("default", list(jobs))}

    assert names("t-master") == {master}
    assert names("t-master", "t-worker") == {master, *workers}
    assert len(names("other-master")) == 1

    fakekube.jobs.set_pod_phase("default", workers[0], "Running")
    await eventually(lambda: len(wakes.keys) == 4, "the pod's phase to wake the test")
    phases = {
        p["metadata"]["name"]: p["status"]["phase"] for p in caches.pods("default", ["t-worker"])
    }
    assert phases[workers[0]] == "Running"

    fakekube.delete("v1", "Pod", workers[0], "default")
    await eventually(lambda: len(wakes.keys) == 5, "the pod's deletion to wake the test")
    assert names("t-worker") == {workers[1]}
    fakekube.delete("v1", "Pod", master, "default")
    await eventually(lambda: not names("t-master"), "the last master pod to go")
    assert caches.pods("default", ["t-master"]) == []


async def test_watch_namespaces_give_each_namespace_its_informers(
    fakekube: FakeKube, start: Start
) -> None:
    for name in ("load-a", "load-b", "elsewhere"):
        fakekube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    fakekube.create(locusttest("t", "elsewhere"))
    fakekube.create(locusttest("t", "load-b"))
    wakes = Wakes()

    caches = await start(wakes, ("load-a", "load-b"))

    assert [i.scope for i in caches.tests] == [
        "locusttests in namespace load-a",
        "locusttests in namespace load-b",
    ]
    assert len(caches.informers) == 8
    assert wakes.keys == [ObjectKey("load-b", "t")]
    assert caches.test(ObjectKey("elsewhere", "t")) is None
    assert requests_for(fakekube, "locusttests", namespace="elsewhere") == []
    assert {r.namespace for r in fakekube.requests if r.verb in ("list", "watch")} == {
        "load-a",
        "load-b",
    }
