"""One reconcile at a time: what the controller creates, writes and records for what it sees.

The controller talks to the fake API server (lightkube's AsyncClient over HTTP, so status codes and
bodies are the API server's), and reads the test's children from `View`, a stand-in for the
caches that the test fills: a cache can lag behind the API server, and here it lags exactly as
the test says.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from fakekube import FakeKube
from reconciler.api.naming import ObjectKey
from reconciler.config import OperatorConfig
from reconciler.controller import DONE, REQUEUE, Reconciler
from reconciler.crds import crd_text
from reconciler.resources.labels import MANAGED_BY
from reconciler.status.conditions import InvolvedObject

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
USER = "locust-operator"
KEY = ObjectKey("default", "shop.checkout")
SERVICE, MASTER, WORKER = "shop-checkout-master", "shop-checkout-master", "shop-checkout-worker"


class Recorder:
    """Records events as (type, reason, message), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def record(self, subject: InvolvedObject, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))

    @property
    def reasons(self) -> list[str]:
        return [reason for _, reason, _ in self.events]


class View:
    """The caches as the controller reads them: only what `catch_up` last copied in."""

    def __init__(self, kube: FakeKube):
        self._kube = kube
        self.services: dict[ObjectKey, dict[str, Any]] = {}
        self.jobs: dict[ObjectKey, dict[str, Any]] = {}
        self.pod_list: list[dict[str, Any]] = []

    def service(self, key: ObjectKey) -> Mapping[str, Any] | None:
        return self.services.get(key)

    def job(self, key: ObjectKey) -> Mapping[str, Any] | None:
        return self.jobs.get(key)

    def pods(self, namespace: str, job_names: Sequence[str]) -> Sequence[Mapping[str, Any]]:
        return [
            pod
            for pod in self.pod_list
            if pod["metadata"]["namespace"] == namespace
            and any(o["name"] in job_names for o in pod["metadata"].get("ownerReferences") or ())
        ]

    def catch_up(self) -> None:
        """Copy the operator's children from the API server, as the informers would."""
        labels = {MANAGED_BY[0]: MANAGED_BY[1]}

        def by_key(kind: str, api_version: str) -> dict[ObjectKey, dict[str, Any]]:
            return {
                ObjectKey(o["metadata"]["namespace"], o["metadata"]["name"]): o
                for o in self._kube.list(api_version, kind, "default", labels)
            }

        self.services = by_key("Service", "v1")
        self.jobs = by_key("Job", "batch/v1")
        self.pod_list = list(by_key("Pod", "v1").values())


@pytest.fixture
def kube(fakekube: FakeKube) -> FakeKube:
    fakekube.apply_yaml(crd_text())
    return fakekube


@pytest.fixture
async def client(kube: FakeKube, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig", user=USER))
    client = AsyncClient(config=config, field_manager=USER)
    yield client
    await client.close()


@pytest.fixture
def view(kube: FakeKube) -> View:
    return View(kube)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def reconciler(client: AsyncClient, view: View, recorder: Recorder) -> Reconciler:
    return Reconciler(client, OperatorConfig.from_env({}), recorder, view, clock=lambda: NOW)


def locusttest(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": KEY.name, "namespace": KEY.namespace},
        "spec": {
            "image": "locustio/locust:2.47.0",
            "master": {"command": "--locustfile /lotest/src/locustfile.py --run-time 1m"},
            "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 2},
            "testFiles": {"configMapRef": "scripts"},
            **spec,
        },
    }


def stored(kube: FakeKube) -> dict[str, Any] | None:
    """The test as the API server holds it now (what a cache shows once caught up)."""
    return kube.get("locust.io/v2", "LocustTest", KEY.name, KEY.namespace)


def children(kube: FakeKube) -> dict[str, dict[str, Any]]:
    found = {
        "service": kube.get("v1", "Service", SERVICE),
        "master": kube.get("batch/v1", "Job", MASTER),
        "worker": kube.get("batch/v1", "Job", WORKER),
    }
    return {role: obj for role, obj in found.items() if obj is not None}


def requests(kube: FakeKube, verb: str, resource: str, since: int = 0) -> list:
    return [
        r
        for r in kube.requests[since:]
        if r.user == USER and r.verb == verb and r.resource == resource
    ]


def status_writes(kube: FakeKube, since: int = 0) -> list:
    return [r for r in requests(kube, "patch", "locusttests", since) if r.subresource == "status"]


def condition(test: Mapping[str, Any], type_: str) -> tuple[str, str]:
    found = next(c for c in test["status"]["conditions"] if c["type"] == type_)
    return found["status"], found["reason"]


async def created_test(kube: FakeKube, reconciler: Reconciler, view: View) -> dict[str, Any]:
    """A test whose children the controller created, with the caches caught up."""
    kube.create(locusttest())
    assert await reconciler.reconcile(KEY, stored(kube)) == DONE
    view.catch_up()
    test = stored(kube)
    assert test is not None
    return test


def run_master(kube: FakeKube, ready: bool = True) -> None:
    (pod,) = kube.jobs.create_pods("default", MASTER)
    kube.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running", ready=ready)
    kube.jobs.sync_job("default", MASTER)


# --- Creating the children ----------------------------------------------------------------------


async def test_a_new_test_gets_its_service_then_master_then_worker_job(
    kube, reconciler, view, recorder
):
    kube.create(locusttest())

    assert await reconciler.reconcile(KEY, stored(kube)) == DONE

    creates = [r for r in kube.requests if r.user == USER and r.verb == "create"]
    assert [r.resource for r in creates] == ["services", "jobs", "jobs"]
    made = children(kube)
    assert (
        made["master"]["metadata"]["creationTimestamp"]
        and made["worker"]["spec"]["parallelism"] == 2
    )
    assert recorder.events == [
        ("Normal", "Created", f"Created Service {SERVICE}"),
        ("Normal", "Created", f"Created Job {MASTER}"),
        ("Normal", "Created", f"Created Job {WORKER}"),
    ]
    test = stored(kube)
    uid = test["metadata"]["uid"]
    assert all(child["metadata"]["ownerReferences"][0]["uid"] == uid for child in made.values())
    assert test["status"]["phase"] == "Pending"
    assert condition(test, "Ready") == ("True", "ResourcesCreated")


async def test_a_child_that_already_exists_counts_as_created(
    kube, client, reconciler, view, recorder
):
    kube.create(locusttest())
    test = stored(kube)
    # Another replica created the children; the worker Job has gone since, and this replica's
    # caches have not shown any of them yet.
    other = Reconciler(client, OperatorConfig.from_env({}), Recorder(), View(kube))
    await other.reconcile(KEY, test)
    kube.delete("batch/v1", "Job", WORKER)

    assert await reconciler.reconcile(KEY, test) == DONE

    assert recorder.events == [("Normal", "Created", f"Created Job {WORKER}")]
    assert set(children(kube)) == {"service", "master", "worker"}
    view.catch_up()  # the children's events wake the test again
    assert await reconciler.reconcile(KEY, stored(kube)) == DONE
    assert condition(stored(kube), "Ready") == ("True", "ResourcesCreated")
    assert recorder.reasons == ["Created"]


async def test_a_conflict_requeues_at_once_without_an_event(kube, reconciler, view, recorder):
    kube.create(locusttest())
    kube.faults.add(verb="create", resource="jobs", status=409, times=1)

    assert await reconciler.reconcile(KEY, stored(kube)) == REQUEUE

    assert recorder.reasons == ["Created"]  # the Service; then the master Job's conflict
    assert status_writes(kube) == []
    assert await reconciler.reconcile(KEY, stored(kube)) == DONE
    assert set(children(kube)) == {"service", "master", "worker"}


async def test_another_create_error_is_raised_with_a_create_failed_event(
    kube, reconciler, view, recorder
):
    kube.create(locusttest())
    kube.faults.add(verb="create", resource="jobs", status=500, message="etcd is down", times=1)

    with pytest.raises(ApiError) as raised:
        await reconciler.reconcile(KEY, stored(kube))

    assert raised.value.status.code == 500
    assert recorder.events[-1] == (
        "Warning",
        "CreateFailed",
        f"Failed to create Job {MASTER}: etcd is down",
    )
    assert set(children(kube)) == {"service"}
    assert status_writes(kube) == []


# --- Invalid specs and spec drift ---------------------------------------------------------------


async def test_an_invalid_test_gets_no_children_and_one_invalid_spec_event(
    kube, reconciler, view, recorder
):
    kube.create(locusttest())
    # A spec the CRD's rules refuse today, as one stored before the rule existed.
    invalid = stored(kube)
    invalid["spec"]["volumes"] = [{"name": f"{SERVICE}", "emptyDir": {}}]
    invalid["spec"]["volumeMounts"] = [{"name": f"{SERVICE}", "mountPath": "/data"}]

    assert await reconciler.reconcile(KEY, invalid) == DONE
    assert await reconciler.reconcile(KEY, invalid) == DONE  # the cache still shows no status

    assert children(kube) == {}
    assert recorder.reasons == ["InvalidSpec"]
    test = stored(kube)
    assert test["status"]["phase"] == "Failed"
    assert condition(test, "Ready") == ("False", "InvalidSpec")
    assert len(status_writes(kube)) == 1


async def test_a_spec_change_after_creation_is_logged_once_and_reported_as_drift(
    kube, reconciler, view, recorder, caplog
):
    test = await created_test(kube, reconciler, view)
    test["spec"]["worker"]["replicas"] = 9
    edited = kube.replace(test)
    assert edited["metadata"]["generation"] == 2
    caplog.set_level(logging.INFO, logger="reconciler.controller")

    await reconciler.reconcile(KEY, edited)
    await reconciler.reconcile(KEY, stored(kube))

    messages = [r.getMessage() for r in caplog.records]
    assert messages.count(f"LocustTest updated: {KEY.name} in namespace: default.") == 1
    assert messages.count(f"Update operations on {KEY.name} are not currently supported!") == 1
    drifted = stored(kube)
    assert condition(drifted, "SpecDrifted") == ("True", "SpecChangeIgnored")
    assert drifted["status"]["observedGeneration"] == 2
    assert children(kube)["worker"]["spec"]["parallelism"] == 2


# --- Children that disappear --------------------------------------------------------------------


async def test_a_child_deleted_under_a_live_test_is_recreated_with_a_warning(
    kube, reconciler, view, recorder
):
    test = await created_test(kube, reconciler, view)
    old_uid = children(kube)["service"]["metadata"]["uid"]
    kube.delete("v1", "Service", SERVICE)
    view.catch_up()

    assert await reconciler.reconcile(KEY, test) == DONE

    assert children(kube)["service"]["metadata"]["uid"] != old_uid
    assert recorder.events[-2:] == [
        (
            "Warning",
            "ResourceDeleted",
            f"Master Service {SERVICE} was deleted externally, will attempt recreation",
        ),
        ("Normal", "Created", f"Created Service {SERVICE}"),
    ]


async def test_nothing_is_recreated_for_a_test_deleted_while_the_cache_still_holds_it(
    kube, reconciler, view, recorder
):
    test = await created_test(kube, reconciler, view)
    kube.delete("locust.io/v2", "LocustTest", KEY.name, KEY.namespace)
    kube.wait_for(lambda: children(kube) == {}, message="the garbage collector")
    view.catch_up()  # the children's caches saw them go; the tests' cache has not yet
    recorder.events.clear()
    since = len(kube.requests)

    assert await reconciler.reconcile(KEY, test) == DONE

    assert requests(kube, "create", "services", since) == []
    assert requests(kube, "create", "jobs", since) == []
    assert recorder.events == []
    assert children(kube) == {}


async def test_nothing_is_recreated_for_a_deleted_test_replaced_by_a_namesake(
    kube, reconciler, view, recorder
):
    test = await created_test(kube, reconciler, view)
    kube.delete("locust.io/v2", "LocustTest", KEY.name, KEY.namespace)
    kube.wait_for(lambda: children(kube) == {}, message="the garbage collector")
    kube.create(locusttest())  # same name, new uid: the watch will bring it
    view.catch_up()
    recorder.events.clear()

    assert await reconciler.reconcile(KEY, test) == DONE

    assert children(kube) == {} and recorder.events == []


# --- Phases and status writes -------------------------------------------------------------------


async def test_the_status_is_written_only_when_it_changes(kube, reconciler, view, recorder):
    test = await created_test(kube, reconciler, view)
    since = len(kube.requests)

    assert await reconciler.reconcile(KEY, test) == DONE  # the cache still shows no status
    assert await reconciler.reconcile(KEY, stored(kube)) == DONE

    assert status_writes(kube, since) == []
    run_master(kube)
    view.catch_up()
    await reconciler.reconcile(KEY, stored(kube))
    assert len(status_writes(kube, since)) == 1


async def test_a_cache_behind_the_last_two_writes_does_not_start_the_test_twice(
    kube, reconciler, view, recorder, caplog
):
    kube.create(locusttest())
    never_written = stored(kube)
    caplog.set_level(logging.INFO, logger="reconciler.controller")
    await reconciler.reconcile(KEY, never_written)  # creates; writes Pending, Ready
    one_write_behind = stored(kube)
    run_master(kube)
    view.catch_up()

    await reconciler.reconcile(KEY, never_written)  # writes Running
    await reconciler.reconcile(KEY, one_write_behind)  # the cache shows the first write only
    await reconciler.reconcile(KEY, stored(kube))  # caught up

    assert recorder.reasons.count("TestStarted") == 1
    transitions = [r.getMessage() for r in caplog.records if "phase transition" in r.getMessage()]
    assert transitions == [f"LocustTest {KEY} phase transition: Pending -> Running"]
    assert stored(kube)["status"]["phase"] == "Running"


async def test_a_master_pod_not_yet_running_keeps_the_test_pending(
    kube, reconciler, view, recorder
):
    await created_test(kube, reconciler, view)
    kube.jobs.create_pods("default", MASTER)
    kube.jobs.create_pods("default", WORKER)
    for job in (MASTER, WORKER):
        assert kube.jobs.sync_job("default", job)["status"]["active"] > 0
    view.catch_up()

    await reconciler.reconcile(KEY, stored(kube))

    test = stored(kube)
    assert test["status"]["phase"] == "Pending" and test["status"]["connectedWorkers"] == 0
    assert "TestStarted" not in recorder.reasons


async def test_a_running_master_starts_the_test_and_ready_workers_connect(
    kube, reconciler, view, recorder
):
    await created_test(kube, reconciler, view)
    run_master(kube)
    first, second = kube.jobs.create_pods("default", WORKER)
    kube.jobs.set_pod_phase("default", first["metadata"]["name"], "Running")
    kube.jobs.set_pod_phase("default", second["metadata"]["name"], "Running", ready=False)
    kube.jobs.sync_job("default", WORKER)
    view.catch_up()

    await reconciler.reconcile(KEY, stored(kube))

    test = stored(kube)
    assert test["status"]["phase"] == "Running" and test["status"]["startTime"]
    assert test["status"]["connectedWorkers"] == 1
    assert condition(test, "WorkersConnected") == ("False", "WorkersMissing")
    assert recorder.reasons[-1] == "TestStarted"


async def test_a_finished_test_is_left_alone_and_its_workers_disconnected(
    kube, reconciler, view, recorder
):
    await created_test(kube, reconciler, view)
    run_master(kube)
    view.catch_up()
    await reconciler.reconcile(KEY, stored(kube))
    kube.jobs.complete_job("default", MASTER)
    view.catch_up()
    await reconciler.reconcile(KEY, stored(kube))
    done = stored(kube)
    assert done["status"]["phase"] == "Succeeded" and done["status"]["connectedWorkers"] == 0
    assert condition(done, "WorkersConnected") == ("False", "TestEnded")
    kube.delete("batch/v1", "Job", WORKER)  # as a TTL would
    view.catch_up()
    recorder.events.clear()
    since = len(kube.requests)

    assert await reconciler.reconcile(KEY, done) == DONE

    assert "worker" not in children(kube)
    assert recorder.events == [] and status_writes(kube, since) == []


async def test_a_finished_status_left_with_connected_workers_is_settled(
    kube, reconciler, view, recorder
):
    test = await created_test(kube, reconciler, view)
    stale = copy.deepcopy(test["status"])
    stale.update(phase="Failed", connectedWorkers=2)
    # As an older operator wrote it: this one has not written it, and sees it in its cache.
    kube.patch_status("locust.io/v2", "LocustTest", KEY.name, stale, namespace=KEY.namespace)
    recorder.events.clear()

    await reconciler.reconcile(KEY, stored(kube))

    settled = stored(kube)
    assert settled["status"]["phase"] == "Failed" and settled["status"]["connectedWorkers"] == 0
    assert condition(settled, "WorkersConnected") == ("False", "TestEnded")
    assert recorder.events == []
    since = len(kube.requests)
    await reconciler.reconcile(KEY, settled)
    assert status_writes(kube, since) == []


async def test_a_deleted_test_is_done(kube, reconciler, view, recorder):
    assert await reconciler.reconcile(KEY, None) == DONE
    assert recorder.events == []
    assert [r for r in kube.requests if r.user == USER] == []
