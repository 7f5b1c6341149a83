"""Status derivation: phases, conditions, events and pod health (upstream's status and pod-health
cases), from plain documents."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from reconciler.status.conditions import FAILED, PENDING, RUNNING, SUCCEEDED, condition, timestamp
from reconciler.status.phase import (
    Children,
    evaluate,
    final_status,
    initial_status,
    invalid_status,
)
from reconciler.status.pod_health import pod_failures

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=timezone.utc)
GRACE = 120.0


def job(active: int = 0, *conditions: str, ready: int | None = None, name: str = "j") -> dict:
    """A Job's status; `ready` None as Kubernetes before 1.24 reports it (no such field)."""
    status = {"active": active, "conditions": [{"type": c, "status": "True"} for c in conditions]}
    if ready is not None:
        status["ready"] = ready
    return {"metadata": {"name": name, "uid": f"{name}-uid"}, "status": status}


def running(ready: int = 1, name: str = "j") -> dict:
    """A Job whose `ready` pods run (and so are active)."""
    return job(ready, ready=ready, name=name)


def pod(
    name: str = "t-master-abcde",
    age: float = 300,
    *,
    phase: str = "Running",
    containers: list | None = None,
    init: list | None = None,
    scheduled: bool = True,
    sidecar: bool = False,
    ready: bool | None = None,
    job: str | None = None,
) -> dict:
    spec = (
        {"initContainers": [{"name": "locust-metrics-exporter", "restartPolicy": "Always"}]}
        if sidecar
        else {}
    )
    status = {
        "phase": phase,
        "containerStatuses": containers or [{"name": "locust", "state": {"running": {}}}],
    }
    if init is not None:
        status["initContainerStatuses"] = init
    if not scheduled:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available",
            }
        ]
    if ready is not None:
        status.setdefault("conditions", []).append(
            {"type": "Ready", "status": "True" if ready else "False"}
        )
    metadata = {"name": name, "creationTimestamp": timestamp(NOW - timedelta(seconds=age))}
    if job is not None:
        metadata["ownerReferences"] = [
            {"kind": "Job", "name": job, "uid": f"{job}-uid", "controller": True}
        ]
    return {
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }


def waiting(reason: str, message: str = "") -> list:
    return [{"name": "locust", "state": {"waiting": {"reason": reason, "message": message}}}]


def run(
    current: dict | None = None,
    *,
    master=None,
    worker=None,
    service=True,
    pods=(),
    generation: int = 1,
    created: int | None = 1,
    foreign=(),
    config_maps=(),
    missing=(),
    expected: int = 2,
):
    children = Children(
        service={"metadata": {}} if service else None,
        master_job=master,
        worker_job=worker,
        pods=list(pods),
    )
    return evaluate(
        current or {},
        generation=generation,
        expected_workers=expected,
        children=children,
        created_generation=created,
        foreign=list(foreign),
        config_maps=list(config_maps),
        missing_config_maps=list(missing),
        now=NOW,
        grace_seconds=GRACE,
    )


def cond(status: dict, type_: str) -> tuple:
    found = condition(status, type_)
    return (found["status"], found["reason"]) if found else None


def test_initial_status_is_upstreams():
    status = initial_status(3, 1, NOW)
    assert status["phase"] == PENDING and status["expectedWorkers"] == 3
    assert status["connectedWorkers"] == 0 and status["observedGeneration"] == 1
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Ready", "False", "ResourcesCreating"),
        ("WorkersConnected", "False", "WaitingForWorkers"),
        ("TestCompleted", "False", "TestInProgress"),
        ("PodsHealthy", "True", "PodsStarting"),
    ]


def test_all_children_created_make_ready_true_and_the_phase_stays_pending_until_a_pod_runs():
    result = run(master=job(0), worker=job(0))
    assert result.status["phase"] == PENDING
    assert cond(result.status, "Ready") == ("True", "ResourcesCreated")
    assert result.events == []


@pytest.mark.parametrize(
    "master, phase",
    [
        (running(), RUNNING),
        (job(1), PENDING),  # active counts a Pending pod: no sign the master runs
        (job(1, ready=0), PENDING),
        (job(0, "Complete"), SUCCEEDED),
        (job(0, "Failed"), FAILED),
        (job(0, "Complete", "Failed"), SUCCEEDED),
        (job(0), PENDING),
    ],
)
def test_the_phase_follows_the_master_job(master, phase):
    assert run(master=master, worker=job(0)).status["phase"] == phase


def test_transitions_record_upstreams_events_and_times():
    started = run(master=running(), worker=running(2))
    assert [(e.type, e.reason) for e in started.events] == [("Normal", "TestStarted")]
    assert started.status["startTime"] == timestamp(NOW)
    done = run(started.status, master=job(0, "Complete"), worker=job(0))
    assert [(e.type, e.reason, e.message) for e in done.events] == [
        ("Normal", "TestCompleted", "Load test completed successfully")
    ]
    assert done.status["completionTime"] == timestamp(NOW)
    assert cond(done.status, "TestCompleted") == ("True", "TestSucceeded")


def test_a_failed_master_job_fails_the_test():
    started = run(master=running(), worker=running(2))
    failed = run(started.status, master=job(0, "Failed"), worker=job(0))
    assert [(e.type, e.reason) for e in failed.events] == [("Warning", "TestFailed")]
    assert cond(failed.status, "TestCompleted") == ("True", "TestFailed")
    assert cond(failed.status, "Ready") == ("False", "ResourcesFailed")


def test_no_event_when_the_phase_does_not_change():
    started = run(master=running(), worker=running(2))
    assert run(started.status, master=running(), worker=running(2)).events == []


def test_a_running_test_does_not_fall_back_to_pending_between_pods():
    started = run(master=running(), worker=running(2))
    assert run(started.status, master=job(0), worker=running(2)).status["phase"] == RUNNING


def test_terminal_phases_are_final():
    done = run(master=job(0, "Complete"), worker=job(0)).status
    later = run(done, master=None, worker=None, service=False)
    assert later.status == done and later.events == []


def test_workers_connected_counts_ready_worker_pods():
    some = run(master=running(), worker=job(3, ready=1), expected=3)
    assert some.status["connectedWorkers"] == 1
    found = condition(some.status, "WorkersConnected")
    assert (found["status"], found["reason"], found["message"]) == (
        "False",
        "WorkersMissing",
        "1/3 workers connected",
    )
    all_in = run(some.status, master=running(), worker=running(3), expected=3)
    assert cond(all_in.status, "WorkersConnected") == ("True", "AllWorkersConnected")


def workers(status: dict) -> tuple:
    found = condition(status, "WorkersConnected")
    return status["connectedWorkers"], found["status"], found["reason"], found["message"]


def test_pods_still_pending_are_no_running_test_and_no_connected_workers():
    # Job.status.active counts Pending pods: a test whose pods all wait has not started.
    pods = [
        pod(
            "t-master-a",
            age=5,
            phase="Pending",
            containers=waiting("ContainerCreating"),
            ready=False,
            job="t-master",
        ),
        *(
            pod(
                f"t-worker-{n}",
                age=5,
                phase="Pending",
                containers=waiting("ContainerCreating"),
                ready=False,
                job="t-worker",
            )
            for n in "ab"
        ),
    ]
    result = run(
        master=job(1, ready=0, name="t-master"), worker=job(2, ready=0, name="t-worker"), pods=pods
    )
    assert result.status["phase"] == PENDING
    assert workers(result.status) == (
        0,
        "False",
        "WaitingForWorkers",
        "Waiting for workers to connect",
    )
    assert result.events == []


def test_ready_workers_count_only_once_the_master_runs():
    result = run(master=job(1, ready=0), worker=running(2))
    assert result.status["phase"] == PENDING and result.status["connectedWorkers"] == 0


@pytest.mark.parametrize(
    "master_pod",
    [
        pod("t-master-a", phase="Running", ready=False, job="t-master"),  # containers starting
        pod("t-master-a", phase="Running", ready=True, job="t-master"),
    ],
)
def test_without_job_ready_counts_a_running_master_pod_means_running(master_pod):
    # Before Kubernetes 1.24 a Job has no status.ready: the pods in the cache tell.
    result = run(master=job(1, name="t-master"), worker=job(0, name="t-worker"), pods=[master_pod])
    assert result.status["phase"] == RUNNING
    assert [e.reason for e in result.events] == ["TestStarted"]


def test_a_running_worker_pod_does_not_make_the_master_run():
    worker_pod = pod("t-worker-a", phase="Running", ready=True, job="t-worker")
    result = run(master=job(1, name="t-master"), worker=job(1, name="t-worker"), pods=[worker_pod])
    assert result.status["phase"] == PENDING


def test_without_job_ready_counts_connected_workers_are_the_ready_worker_pods():
    pods = [
        pod("t-master-a", ready=True, job="t-master"),
        pod("t-worker-a", ready=True, job="t-worker"),
        pod("t-worker-b", ready=False, job="t-worker"),  # Running, its container not ready yet
        pod("other-worker-c", ready=True, job="other-worker"),
    ]
    result = run(master=job(1, name="t-master"), worker=job(2, name="t-worker"), pods=pods)
    assert workers(result.status) == (1, "False", "WorkersMissing", "1/2 workers connected")


def test_workers_that_stop_being_ready_are_missing_again():
    everyone = run(master=running(), worker=running(2)).status
    assert workers(everyone)[:3] == (2, "True", "AllWorkersConnected")
    one_lost = run(everyone, master=running(), worker=job(2, ready=1)).status
    assert workers(one_lost) == (1, "False", "WorkersMissing", "1/2 workers connected")


@pytest.mark.parametrize(
    "master, phase", [(job(0, "Complete"), SUCCEEDED), (job(0, "Failed"), FAILED)]
)
def test_the_end_of_a_test_disconnects_its_workers(master, phase):
    started = run(master=running(), worker=running(2)).status
    ended = run(started, master=master, worker=running(2)).status
    assert ended["phase"] == phase
    assert workers(ended) == (
        0,
        "False",
        "TestEnded",
        "The test has ended: no workers are connected",
    )


def test_failing_pods_disconnect_the_workers():
    started = run(master=running(), worker=running(2)).status
    broken = [pod("t-worker-a", containers=waiting("CrashLoopBackOff", "back-off"))]
    failed = run(started, master=running(), worker=running(2), pods=broken).status
    assert failed["phase"] == FAILED
    assert workers(failed)[:3] == (0, "False", "TestEnded")


def test_a_finished_status_left_with_connected_workers_is_settled_once():
    started = run(master=running(), worker=running(2)).status
    stale = {**started, "phase": SUCCEEDED}  # as an older operator ended a test
    settled = run(stale, master=None, worker=None, service=False)
    assert settled.events == []
    assert workers(settled.status)[:3] == (0, "False", "TestEnded")
    assert final_status(settled.status, NOW + timedelta(minutes=1)) == settled.status


def test_an_invalid_test_has_no_connected_workers():
    status = invalid_status({}, "spec.volumes[0].name: reserved", 1, NOW)
    assert workers(status)[:3] == (0, "False", "TestEnded")


def test_spec_drift_is_reported_for_a_generation_newer_than_the_children():
    assert cond(run(master=job(1), worker=job(1)).status, "SpecDrifted") is None
    drifted = run(master=job(1), worker=job(1), generation=2, created=1)
    assert cond(drifted.status, "SpecDrifted") == ("True", "SpecChangeIgnored")
    assert drifted.status["observedGeneration"] == 2


def test_children_built_from_the_current_generation_are_not_drift():
    # A test edited before the operator first saw it is created from its newest spec.
    assert (
        cond(run(master=job(1), worker=job(1), generation=3, created=3).status, "SpecDrifted")
        is None
    )


def test_a_foreign_child_keeps_the_test_waiting_and_says_why():
    result = run(service=False, master=None, worker=None, foreign=["Service t-master"])
    found = condition(result.status, "Ready")
    assert found["status"] == "False" and "Service t-master" in found["message"]


def test_last_transition_time_moves_only_when_a_condition_flips():
    first = run(master=running(), worker=running(1), expected=2).status
    stamp = condition(first, "WorkersConnected")["lastTransitionTime"]
    later = evaluate(
        first,
        generation=1,
        expected_workers=2,
        children=Children({"metadata": {}}, running(), running(1)),
        created_generation=1,
        foreign=[],
        config_maps=[],
        missing_config_maps=[],
        now=NOW + timedelta(minutes=5),
        grace_seconds=GRACE,
    ).status
    assert condition(later, "WorkersConnected")["lastTransitionTime"] == stamp


def test_invalid_status_fails_the_test_with_the_reason():
    status = invalid_status({}, "spec.volumes[0].name: reserved", 1, NOW)
    assert status["phase"] == FAILED
    found = condition(status, "Ready")
    assert (found["reason"], found["message"]) == ("InvalidSpec", "spec.volumes[0].name: reserved")


# --- Pod health ---------------------------------------------------------------------------------


def test_within_the_grace_period_pods_count_as_starting_and_a_recheck_is_scheduled():
    result = run(
        master=job(0), worker=job(0), pods=[pod(age=30, containers=waiting("ImagePullBackOff"))]
    )
    assert cond(result.status, "PodsHealthy") == ("True", "PodsStarting")
    assert result.requeue_after == pytest.approx(90)
    assert result.status["phase"] == PENDING


def test_no_pods_yet_is_healthy():
    assert cond(run(master=job(0), worker=job(0)).status, "PodsHealthy") == (
        "True",
        "PodsStarting",
    )


def test_healthy_pods_after_the_grace_period():
    result = run(master=job(1), worker=job(1), pods=[pod(), pod("t-worker-x")])
    assert cond(result.status, "PodsHealthy") == ("True", "PodsHealthy")
    assert result.requeue_after is None


@pytest.mark.parametrize(
    "broken, reason",
    [
        (pod(containers=waiting("ErrImagePull", "pull access denied")), "ImagePullError"),
        (pod(containers=waiting("ImagePullBackOff", "Back-off pulling")), "ImagePullError"),
        (pod(containers=waiting("CrashLoopBackOff", "back-off 5m0s")), "CrashLoopBackOff"),
        (pod(scheduled=False, phase="Pending"), "SchedulingError"),
        (
            pod(containers=waiting("CreateContainerConfigError", 'configmap "env" not found')),
            "ConfigurationError",
        ),
        (
            pod(
                phase="Failed",
                containers=[
                    {"name": "locust", "state": {"terminated": {"exitCode": 2, "reason": "Error"}}}
                ],
            ),
            "CrashLoopBackOff",
        ),
        (
            pod(
                init=[
                    {"name": "setup", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
                ]
            ),
            "InitializationError",
        ),
    ],
)
def test_a_broken_pod_after_the_grace_period_fails_the_test_with_its_reason(broken, reason):
    result = run(master=job(0), worker=job(0), pods=[broken])
    assert cond(result.status, "PodsHealthy") == ("False", reason)
    assert result.status["phase"] == FAILED
    assert ("Warning", "PodFailure") in [(e.type, e.reason) for e in result.events]


def test_a_native_sidecar_stopped_by_sigterm_is_not_a_failure():
    stopped = [
        {
            "name": "locust-metrics-exporter",
            "state": {"terminated": {"exitCode": 143, "reason": "Error"}},
        }
    ]
    assert list(pod_failures(pod(sidecar=True, init=stopped))) == []


def test_a_native_sidecar_in_crash_loop_is_a_failure():
    looping = [
        {
            "name": "locust-metrics-exporter",
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
        }
    ]
    (failure,) = pod_failures(pod(sidecar=True, init=looping))
    assert failure.reason == "CrashLoopBackOff"


def test_a_missing_configmap_volume_is_named():
    stuck = pod(phase="Pending", containers=waiting("ContainerCreating"))
    result = run(
        master=job(0), worker=job(0), pods=[stuck], config_maps=["scripts"], missing=["scripts"]
    )
    found = condition(result.status, "PodsHealthy")
    assert found["reason"] == "ConfigurationError"
    assert "ConfigMap not found (expected: scripts)" in found["message"]
    assert found["message"].endswith(
        "Create the ConfigMap and the pods will restart automatically."
    )


def test_the_most_actionable_failure_is_reported_with_the_pods_it_affects():
    pods = [
        pod("t-worker-a", containers=waiting("CrashLoopBackOff", "x")),
        pod("t-worker-b", containers=waiting("ErrImagePull", "denied")),
        pod("t-worker-c", containers=waiting("ErrImagePull", "denied")),
    ]
    found = condition(run(master=job(0), worker=job(0), pods=pods).status, "PodsHealthy")
    assert found["reason"] == "ImagePullError"
    assert found["message"].startswith(
        "ImagePullError: 2 pod(s) affected [t-worker-b, t-worker-c]: denied"
    )


def test_unhealthy_pods_never_override_a_terminal_job():
    pods = [pod(containers=waiting("CrashLoopBackOff", "x"))]
    result = run(master=job(0, "Complete"), worker=job(0), pods=pods)
    assert result.status["phase"] == SUCCEEDED
    assert [e.reason for e in result.events] == ["TestCompleted"]
