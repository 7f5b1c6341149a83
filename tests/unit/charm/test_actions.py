"""list-tests and describe-test, reading real objects from the fake API server."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import cluster_objects
from reconciler.config import OperatorConfig
from reconciler.crds import crd_manifest
from fakekube import service_account_user
from reconciler.api.parse import parse
from reconciler.resources import build_children, to_dict
from reconciler.resources.command import master_args, worker_args
from fakekube.server import FakeKube
from tests.unit.charm.conftest import (
    APP,
    CRD,
    MODEL,
    NAMESPACES,
    default_env,
    established,
    running_container,
    state,
)

DATA = Path(__file__).parent / "data"
TRUST = f"missing cluster permissions; run: juju trust {APP} --scope=cluster"
IMAGE = "locustio/locust:2.31.0"
MASTER_SEED = (
    "--locustfile /lotest/src/demo.py --host https://example.com --users 100 --run-time 3m"
)
WORKER_SEED = "--locustfile /lotest/src/demo.py"
V2 = "locust.io/v2"
STARTED = "2026-01-01T00:00:00Z"
FINISHED = "2026-01-01T00:03:10Z"


def condition(type_: str, status: str, reason: str, message: str, since: str = STARTED) -> dict:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since,
        "observedGeneration": 1,
    }


# A test three workers were asked for, two of them connected, one pod short of its ConfigMap.
RUNNING = {
    "phase": "Running",
    "observedGeneration": 1,
    "expectedWorkers": 3,
    "connectedWorkers": 2,
    "startTime": STARTED,
    "conditions": [
        condition("Ready", "True", "ResourcesCreated", "All resources created"),
        condition("WorkersConnected", "False", "WorkersMissing", "2/3 workers connected"),
        condition("TestCompleted", "False", "TestInProgress", "Test has not started"),
        condition(
            "PodsHealthy",
            "False",
            "ConfigurationError",
            "ConfigurationError: 1 pod(s) affected [demo-test-worker-x1]: ConfigMap not found "
            "(expected: demo-locustfile).",
            since="2026-01-01T00:02:00Z",
        ),
    ],
}
SUCCEEDED = {
    "phase": "Succeeded",
    "observedGeneration": 2,
    "expectedWorkers": 1,
    "connectedWorkers": 0,
    "startTime": STARTED,
    "completionTime": FINISHED,
    "conditions": [
        condition(
            "TestCompleted", "True", "TestSucceeded", "Test completed successfully", FINISHED
        ),
        condition(
            "SpecDrifted",
            "True",
            "SpecChangeIgnored",
            "Spec changes after creation are ignored. Delete and recreate the CR to apply changes.",
        ),
    ],
}


@pytest.fixture
def crd(kube: FakeKube) -> FakeKube:
    """The fake server with the LocustTest CRD installed (as the leader would have done)."""
    kube.create(crd_manifest())
    kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
    kube.clear_requests()
    return kube


@pytest.fixture
def v1_crd(kube: FakeKube) -> FakeKube:
    """The fake server with the CRD the previous release installed: v1 only, no status."""
    kube.apply_yaml((DATA / "locusttests-v1-only.yaml").read_text())
    kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
    kube.clear_requests()
    return kube


def make_test(
    kube: FakeKube, name: str, namespace: str = MODEL, workers: int = 2, **spec: Any
) -> dict:
    return kube.create(
        {
            "apiVersion": V2,
            "kind": "LocustTest",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "image": IMAGE,
                "master": {"command": MASTER_SEED},
                "worker": {"command": WORKER_SEED, "replicas": workers},
                **spec,
            },
        }
    )


def make_v1_test(kube: FakeKube, name: str, namespace: str = MODEL, workers: int = 2) -> dict:
    return kube.create(
        {
            "apiVersion": "locust.io/v1",
            "kind": "LocustTest",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "image": IMAGE,
                "masterCommandSeed": MASTER_SEED,
                "workerCommandSeed": WORKER_SEED,
                "workerReplicas": workers,
            },
        }
    )


def set_status(kube: FakeKube, test: dict, status: dict) -> None:
    """Write the status as the reconciler would, through the status subresource."""
    meta = test["metadata"]
    kube.patch_status(V2, "LocustTest", meta["name"], status, namespace=meta["namespace"])


def make_children(kube: FakeKube, test: dict) -> None:
    """Create the Service and Jobs exactly as the reconciler would."""
    for child in build_children(parse(test), OperatorConfig.from_env(default_env())):
        kube.create(to_dict(child))


def make_event(kube: FakeKube, test: dict, index: int, *, kind: str = "LocustTest", **fields):
    meta = test["metadata"]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{index:04d}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": test["apiVersion"],
                "kind": kind,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "type": "Normal",
            "reason": "Created",
            "message": f"event {index}",
            "count": 1,
            "lastTimestamp": f"2026-01-01T00:{index // 60:02d}:{index % 60:02d}Z",
            "source": {"component": "locust-operator"},
            **fields,
        }
    )


def run_action(ctx: testing.Context, name: str, params: dict | None = None, **kwargs) -> dict:
    kwargs.setdefault("containers", {running_container(default_env())})
    ctx.run(ctx.on.action(name, params=params or {}), state(**kwargs))
    return copy.deepcopy(ctx.action_results)


def pop_ages(results: dict) -> None:
    """Ages depend on the clock: check their shape, then leave them out of exact comparisons."""
    for key, value in list(results.items()):
        if key == "age":
            assert re.fullmatch(r"\d+[smhd]", results.pop(key)), value
        elif isinstance(value, dict):
            pop_ages(value)


# --- list-tests --------------------------------------------------------------------------------


def test_list_tests_with_no_tests(ctx: testing.Context, crd: FakeKube):
    assert run_action(ctx, "list-tests") == {"count": 0}


def test_list_tests_shows_phase_workers_and_children_in_all_namespaces(
    ctx: testing.Context, crd: FakeKube
):
    running = make_test(crd, "demo.test", MODEL, workers=3)
    make_children(crd, running)
    crd.jobs.create_pods(MODEL, "demo-test-master", 1)
    crd.jobs.create_pods(MODEL, "demo-test-worker", 3)
    crd.jobs.sync_job(MODEL, "demo-test-master")
    crd.jobs.sync_job(MODEL, "demo-test-worker")
    set_status(crd, running, RUNNING)
    make_test(crd, "waiting", "staging", workers=1, image="locustio/locust:2.20.0")

    results = run_action(ctx, "list-tests")

    pop_ages(results)
    assert results == {
        "count": 2,
        "tests": {
            "test-0": {
                "name": "demo.test",
                "namespace": MODEL,
                "phase": "Running",
                "workers": "2/3",
                "image": IMAGE,
                "service": {"name": "demo-test-master", "state": "present"},
                "master-job": {
                    "name": "demo-test-master",
                    "state": "active",
                    "active": 1,
                    "succeeded": 0,
                    "failed": 0,
                },
                "worker-job": {
                    "name": "demo-test-worker",
                    "state": "active",
                    "active": 3,
                    "succeeded": 0,
                    "failed": 0,
                },
            },
            # Not reconciled yet: no status, so no phase, and the workers the spec asks for.
            "test-1": {
                "name": "waiting",
                "namespace": "staging",
                "phase": "unknown",
                "workers": "0/1",
                "image": "locustio/locust:2.20.0",
                "service": {"name": "waiting-master", "state": "missing"},
                "master-job": {"name": "waiting-master", "state": "missing"},
                "worker-job": {"name": "waiting-worker", "state": "missing"},
            },
        },
    }


def test_list_tests_counts_workers_from_the_status_after_a_spec_edit(
    ctx: testing.Context, crd: FakeKube
):
    # The Jobs keep the replicas they were created with; the status says so, the spec no longer.
    test = make_test(crd, "edited", workers=1)
    set_status(crd, test, SUCCEEDED)
    crd.patch(V2, "LocustTest", "edited", {"spec": {"worker": {"replicas": 9}}}, namespace=MODEL)

    results = run_action(ctx, "list-tests")

    listed = results["tests"]["test-0"]
    assert (listed["phase"], listed["workers"]) == ("Succeeded", "0/1")


def test_list_tests_shows_finished_jobs(ctx: testing.Context, crd: FakeKube):
    test = make_test(crd, "done", workers=2)
    make_children(crd, test)
    crd.jobs.create_pods(MODEL, "done-master", 1)
    crd.jobs.create_pods(MODEL, "done-worker", 2)
    crd.jobs.complete_job(MODEL, "done-master")
    crd.jobs.fail_job(MODEL, "done-worker")

    results = run_action(ctx, "list-tests")

    master, worker = (
        results["tests"]["test-0"]["master-job"],
        results["tests"]["test-0"]["worker-job"],
    )
    assert (master["state"], master["succeeded"], master["active"]) == ("complete", 1, 0)
    assert (worker["state"], worker["active"]) == ("failed", 0)
    assert worker["failed"] >= 1


def test_list_tests_filters_by_namespace(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test", MODEL)
    make_test(crd, "other", "staging")

    results = run_action(ctx, "list-tests", {"namespace": "staging"})

    assert results["count"] == 1
    assert results["tests"]["test-0"]["name"] == "other"
    assert {r.namespace for r in crd.requests} == {"staging"}


def test_list_tests_works_on_a_non_leader_without_writing(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test")

    results = run_action(ctx, "list-tests", leader=False)

    assert results["count"] == 1
    assert {r.verb for r in crd.requests} == {"list"}


def test_list_tests_without_the_crd_fails(ctx: testing.Context, kube: FakeKube):
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "list-tests")

    assert failed.value.message == (
        "the LocustTest CRD (locusttests.locust.io) is not installed: see the leader unit's status"
    )


def test_list_tests_reads_the_storage_version(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test")

    run_action(ctx, "list-tests")

    reads = [(r.version, r.verb) for r in crd.requests if r.resource == "locusttests"]
    assert reads == [("v2", "list")]


def test_an_older_install_serving_only_v1_is_read_as_v1(ctx: testing.Context, v1_crd: FakeKube):
    test = make_v1_test(v1_crd, "legacy.test", workers=2)
    make_children(v1_crd, test)

    listed = run_action(ctx, "list-tests")["tests"]["test-0"]
    described = run_action(ctx, "describe-test", {"name": "legacy.test"})

    assert (listed["name"], listed["phase"], listed["workers"]) == (
        "legacy.test",
        "unknown",
        "0/2",
    )
    assert listed["service"]["state"] == "present"
    assert described["phase"] == "unknown"
    assert "conditions" not in described
    assert "--expect-workers=2" in described["spec"]["master-args"]
    reads = [(r.version, r.verb) for r in v1_crd.requests if r.resource == "locusttests"]
    assert reads == [("v2", "list"), ("v1", "list")] * 2


def test_list_tests_forbidden_fails_with_the_trust_command(ctx: testing.Context, crd: FakeKube):
    crd.faults.add(verb="list", resource="locusttests", status=403)

    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "list-tests")

    assert failed.value.message == TRUST


def test_list_tests_rejects_an_invalid_namespace(ctx: testing.Context, crd: FakeKube):
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "list-tests", {"namespace": "Not_A_Namespace"})

    assert "not a valid namespace name" in failed.value.message
    assert crd.requests == []


# --- describe-test ---------------------------------------------------------------------------


def test_describe_test_shows_status_spec_children_and_events(ctx: testing.Context, crd: FakeKube):
    test = make_test(crd, "demo.test", workers=3, testFiles={"configMapRef": "demo-locustfile"})
    make_children(crd, test)
    crd.jobs.create_pods(MODEL, "demo-test-worker", 3)
    crd.jobs.sync_job(MODEL, "demo-test-worker")
    set_status(crd, test, RUNNING)
    make_event(crd, test, 1, reason="Created", message="Created Service demo-test-master")
    make_event(crd, test, 2, type="Warning", reason="PodFailure", message="no ConfigMap", count=4)
    make_event(crd, test, 3, kind="Job", message="not about the test")
    spec = parse(test)

    results = run_action(ctx, "describe-test", {"name": "demo.test", "namespace": MODEL})

    pop_ages(results)
    assert results == {
        "name": "demo.test",
        "namespace": MODEL,
        "phase": "Running",
        "observed-generation": 1,
        "expected-workers": 3,
        "connected-workers": 2,
        "start-time": STARTED,
        "conditions": {
            "ready": {
                "status": "True",
                "reason": "ResourcesCreated",
                "message": "All resources created",
                "since": STARTED,
            },
            "workers-connected": {
                "status": "False",
                "reason": "WorkersMissing",
                "message": "2/3 workers connected",
                "since": STARTED,
            },
            "test-completed": {
                "status": "False",
                "reason": "TestInProgress",
                "message": "Test has not started",
                "since": STARTED,
            },
            "pods-healthy": {
                "status": "False",
                "reason": "ConfigurationError",
                "message": "ConfigurationError: 1 pod(s) affected [demo-test-worker-x1]: "
                "ConfigMap not found (expected: demo-locustfile).",
                "since": "2026-01-01T00:02:00Z",
            },
        },
        "spec": {
            "image": IMAGE,
            "workers": 3,
            "master-args": " ".join(master_args(spec, OperatorConfig.from_env(default_env()))),
            "worker-args": " ".join(worker_args(spec)),
            "config-map": "demo-locustfile",
        },
        "children": {
            "service": {"name": "demo-test-master", "state": "present"},
            "master-job": {
                "name": "demo-test-master",
                "state": "pending",
                "active": 0,
                "succeeded": 0,
                "failed": 0,
            },
            "worker-job": {
                "name": "demo-test-worker",
                "state": "active",
                "active": 3,
                "succeeded": 0,
                "failed": 0,
            },
        },
        "events": {
            "event-0": {
                "type": "Normal",
                "reason": "Created",
                "message": "Created Service demo-test-master",
                "count": 1,
            },
            "event-1": {
                "type": "Warning",
                "reason": "PodFailure",
                "message": "no ConfigMap",
                "count": 4,
            },
        },
    }
    assert "--expect-workers=3" in results["spec"]["master-args"]
    assert "--master-host=demo-test-master" in results["spec"]["worker-args"]


def test_describe_test_shows_completion_and_spec_drift(ctx: testing.Context, crd: FakeKube):
    test = make_test(crd, "done", workers=1)
    set_status(crd, test, SUCCEEDED)

    results = run_action(ctx, "describe-test", {"name": "done"})

    assert (results["phase"], results["start-time"], results["completion-time"]) == (
        "Succeeded",
        STARTED,
        FINISHED,
    )
    assert results["conditions"]["test-completed"]["reason"] == "TestSucceeded"
    assert results["conditions"]["spec-drifted"] == {
        "status": "True",
        "reason": "SpecChangeIgnored",
        "message": "Spec changes after creation are ignored. Delete and recreate the CR to "
        "apply changes.",
        "since": STARTED,
    }


def test_describe_test_before_the_first_reconcile_shows_no_status(
    ctx: testing.Context, crd: FakeKube
):
    make_test(crd, "fresh")

    results = run_action(ctx, "describe-test", {"name": "fresh"})

    assert results["phase"] == "unknown"
    assert not {"conditions", "start-time", "observed-generation"} & set(results)


def test_describe_test_keeps_the_ten_newest_events_oldest_first(
    ctx: testing.Context, crd: FakeKube
):
    test = make_test(crd, "busy")
    for index in reversed(range(12)):
        make_event(crd, test, index)

    results = run_action(ctx, "describe-test", {"name": "busy"})

    messages = [results["events"][f"event-{i}"]["message"] for i in range(len(results["events"]))]
    assert messages == [f"event {i}" for i in range(2, 12)]


def test_describe_test_searches_all_namespaces(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "elsewhere", "staging")

    results = run_action(ctx, "describe-test", {"name": "elsewhere"})

    assert results["namespace"] == "staging"
    assert results["children"]["service"]["state"] == "missing"
    assert "events" not in results


def test_describe_test_in_several_namespaces_fails_listing_them(
    ctx: testing.Context, crd: FakeKube
):
    make_test(crd, "twin", MODEL)
    make_test(crd, "twin", "staging")

    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "describe-test", {"name": "twin"})

    assert failed.value.message == (
        f"LocustTest twin exists in several namespaces ({MODEL}, staging): give namespace=..."
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"name": "nope"}, "LocustTest nope not found in any namespace"),
        ({"name": "nope", "namespace": MODEL}, f"LocustTest nope not found in namespace {MODEL}"),
    ],
)
def test_describe_missing_test_fails(ctx: testing.Context, crd: FakeKube, params, message):
    make_test(crd, "demo.test", "staging")

    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "describe-test", params)

    assert failed.value.message == message


def test_describe_test_without_the_crd_fails(ctx: testing.Context, kube: FakeKube):
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "describe-test", {"name": "demo.test"})

    assert "is not installed" in failed.value.message


def test_describe_test_forbidden_fails_with_the_trust_command(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test")
    crd.faults.add(verb="get", resource="jobs", status=403)

    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "describe-test", {"name": "demo.test"})

    assert failed.value.message == TRUST


def test_describe_test_requires_a_valid_name(ctx: testing.Context, crd: FakeKube):
    with pytest.raises(testing.ActionFailed) as failed:
        run_action(ctx, "describe-test", {"name": "Bad Name"})

    assert "not a valid LocustTest name" in failed.value.message


def test_describe_test_never_shows_the_kafka_credentials(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test")
    secret = testing.Secret({"username": "load", "password": "s3cret"})

    results = run_action(
        ctx,
        "describe-test",
        {"name": "demo.test"},
        config={"kafka-credentials": secret.id},
        secrets={secret},
    )

    assert "s3cret" not in repr(results)
    assert not any("s3cret" in line.message for line in ctx.juju_log)


def test_describe_test_with_invalid_config_still_answers(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "demo.test")

    results = run_action(
        ctx, "describe-test", {"name": "demo.test"}, config={"pod-cpu-limit": "lots"}
    )

    assert "--master" in results["spec"]["master-args"]


def test_a_test_the_operator_rejects_is_listed_with_the_reason(
    ctx: testing.Context, crd: FakeKube
):
    # A valid object name, but its master Service's name would start with a digit.
    make_test(crd, "1st.test")

    listed = run_action(ctx, "list-tests")
    described = run_action(ctx, "describe-test", {"name": "1st.test"})

    reason = listed["tests"]["test-0"]["spec-error"]
    assert reason.startswith('metadata.name: Invalid value: "1st.test": must start with a letter')
    assert listed["tests"]["test-0"]["workers"] == "0/?"
    assert described["spec"]["error"] == reason


@pytest.fixture
def enforcing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeKube]:
    """A server that enforces RBAC, with the CRD and the charm's ClusterRole and binding, and the
    charm reaching it as the application's ServiceAccount (as in its pod)."""
    with FakeKube(authorization="RBAC") as kube:
        for namespace in NAMESPACES:
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": APP, "namespace": MODEL},
            }
        )
        kube.create(crd_manifest())
        kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
        for obj in cluster_objects.rbac_objects(APP, MODEL):
            kube.create(obj.to_dict())
        user = service_account_user(MODEL, APP)
        monkeypatch.setenv("KUBECONFIG", str(kube.write_kubeconfig(tmp_path / "sa", user=user)))
        kube.clear_requests()
        yield kube


def test_the_actions_work_within_the_charms_cluster_role(
    ctx: testing.Context, enforcing: FakeKube
):
    # The charm runs under the same ServiceAccount as the reconciler, bound to our ClusterRole;
    # the server refuses whatever the role does not grant.
    test = make_test(enforcing, "demo.test", workers=2)
    make_children(enforcing, test)
    make_event(enforcing, test, 1)

    listed = run_action(ctx, "list-tests")
    described = run_action(ctx, "describe-test", {"name": "demo.test"})

    assert listed["tests"]["test-0"]["service"]["state"] == "present"
    assert described["children"]["master-job"]["state"] == "pending"
    assert described["events"]["event-0"]["reason"]
    requests = enforcing.requests
    assert requests and {r.user for r in requests} == {service_account_user(MODEL, APP)}
    assert [r for r in requests if r.status_code == 403] == []
