"""A test's phase and conditions, derived from what its children say: pure, no I/O.

Given the LocustTest's current status, its Service, Jobs and pods as the caches hold them, and the
time, `evaluate` returns the status the test should have, the events that the change is worth, and
when to look again if nothing else happens (the pod-health grace period). The controller writes
the status and records the events; everything here can be tested from plain dicts.

Phases: Pending (children being created, or the master pod not running yet), Running (the master
pod runs: the master Job counts a ready pod, or the pod itself is Running or Ready), Succeeded /
Failed (the master Job's Complete / Failed condition, or pods that stay broken after the grace
period). Terminal phases are final. A Job's `status.active` is no sign of life: it counts Pending
pods too.

Connected workers are the worker pods that are ready while the master runs: the worker Job's
`status.ready` (Kubernetes 1.24 and later report it), else the ready worker pods in the cache.
Before the master runs and once the test has ended, none are connected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .conditions import (
    FAILED,
    NORMAL,
    PENDING,
    PODS_HEALTHY,
    READY,
    RUNNING,
    SPEC_DRIFTED,
    SUCCEEDED,
    TERMINAL,
    TEST_COMPLETED,
    WARNING,
    WORKERS_CONNECTED,
    Event,
    set_condition,
    timestamp,
)
from .pod_health import pod_health


@dataclass(frozen=True)
class Children:
    """The test's children as the caches hold them (None: absent, or owned by someone else)."""

    service: Mapping[str, Any] | None
    master_job: Mapping[str, Any] | None
    worker_job: Mapping[str, Any] | None
    pods: Sequence[Mapping[str, Any]] = ()

    @property
    def complete(self) -> bool:
        return None not in (self.service, self.master_job, self.worker_job)

    def pods_of(self, job: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
        """The pods `job` controls, matched by its uid as the Job controller matches them."""
        uid = ((job or {}).get("metadata") or {}).get("uid")
        if uid is None:
            return []
        return [
            pod
            for pod in self.pods
            if any(
                o.get("controller") and o.get("uid") == uid
                for o in (pod.get("metadata") or {}).get("ownerReferences") or ()
            )
        ]


@dataclass
class Evaluation:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def initial_status(expected_workers: int, generation: int, now: datetime) -> dict[str, Any]:
    """A new test's status: Pending, nothing created yet (upstream's initial conditions)."""
    conditions: list[dict[str, Any]] = []
    for type_, ok, reason, message in (
        (READY, False, "ResourcesCreating", "Creating resources"),
        (WORKERS_CONNECTED, False, "WaitingForWorkers", "Waiting for workers to connect"),
        (TEST_COMPLETED, False, "TestInProgress", "Test has not started"),
        (PODS_HEALTHY, True, "PodsStarting", "Waiting for pods to start"),
    ):
        set_condition(conditions, type_, ok, reason, message, generation, now)
    return {
        "phase": PENDING,
        "observedGeneration": generation,
        "expectedWorkers": expected_workers,
        "connectedWorkers": 0,
        "conditions": conditions,
    }


def invalid_status(
    current: Mapping[str, Any], problem: str, generation: int, now: datetime
) -> dict[str, Any]:
    """A test the operator cannot run as written: no children, Ready=False/InvalidSpec, Failed."""
    status = _copy(current) if current.get("phase") else initial_status(0, generation, now)
    set_condition(status["conditions"], READY, False, "InvalidSpec", problem, generation, now)
    status.update(phase=FAILED, observedGeneration=generation)
    _end_workers(status, generation, now)
    return status


def final_status(current: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A finished test's status: as it was, but with no workers connected.

    The write that ends a test already says so; this also settles a status an older operator
    left with workers connected after the end. A status that says so already comes back equal.
    """
    status = _copy(current)
    generation = int(status.get("observedGeneration") or 1)
    _end_workers(status, generation, now)
    return status


def _copy(status: Mapping[str, Any]) -> dict[str, Any]:
    copied = dict(status)
    copied["conditions"] = [dict(c) for c in status.get("conditions") or ()]
    return copied


def evaluate(
    current: Mapping[str, Any],
    *,
    generation: int,
    expected_workers: int,
    children: Children,
    created_generation: int | None,
    foreign: Sequence[str],
    config_maps: Sequence[str],
    missing_config_maps: Sequence[str],
    now: datetime,
    grace_seconds: float,
) -> Evaluation:
    """The status the test should have now, the events worth recording, and when to look again.

    `created_generation` is the generation the children were built from (None before they exist);
    `foreign` names children that exist under the same name but belong to another owner;
    `config_maps` are the ConfigMaps the pods use, `missing_config_maps` those found absent.
    """
    if not current.get("phase"):
        current = initial_status(expected_workers, generation, now)
    phase = current["phase"]
    if phase in TERMINAL:
        # Final: a finished test's children may be gone by TTL, legitimately.
        return Evaluation(final_status(current, now))
    status = _copy(current)
    result = Evaluation(status)

    conditions = status["conditions"]
    status["observedGeneration"] = generation
    if children.complete:
        set_condition(
            conditions, READY, True, "ResourcesCreated", "All resources created", generation, now
        )
    elif foreign:
        set_condition(
            conditions,
            READY,
            False,
            "ResourcesCreating",
            f"Waiting for {', '.join(foreign)}, owned by another object, to go",
            generation,
            now,
        )
    if created_generation is not None and generation > created_generation:
        set_condition(
            conditions,
            SPEC_DRIFTED,
            True,
            "SpecChangeIgnored",
            "Spec changes after creation are ignored. Delete and recreate the CR to "
            "apply changes.",
            generation,
            now,
        )

    new_phase = _phase_from_master(children, phase)
    health = pod_health(children.pods, config_maps, missing_config_maps, now, grace_seconds)
    set_condition(
        conditions, PODS_HEALTHY, health.healthy, health.reason, health.message, generation, now
    )
    result.requeue_after = health.recheck_after
    if not health.healthy and new_phase not in TERMINAL:
        new_phase = FAILED
        result.events.append(Event(WARNING, "PodFailure", health.message))

    if new_phase != phase:
        _transition(status, phase, new_phase, generation, now, result)
    if new_phase == RUNNING:
        expected = int(status.get("expectedWorkers") or expected_workers)
        _count_workers(status, _ready_workers(children), expected, generation, now)
    elif new_phase == PENDING:
        _await_workers(status, generation, now)  # ready workers have no master to talk to yet
    return result


def _phase_from_master(children: Children, phase: str) -> str:
    """Complete wins over Failed (upstream); a running master pod means Running; never back."""
    master_job = children.master_job
    if master_job is None:
        return phase
    job_status = master_job.get("status") or {}
    states = {
        c.get("type") for c in job_status.get("conditions") or () if c.get("status") == "True"
    }
    if "Complete" in states:
        return SUCCEEDED
    if "Failed" in states:
        return FAILED
    if int(job_status.get("ready") or 0) > 0:
        return RUNNING
    if any(_pod_runs(pod) for pod in children.pods_of(master_job)):
        return RUNNING
    return phase


def _pod_runs(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == RUNNING or _pod_ready(pod)


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def _ready_workers(children: Children) -> int:
    """The worker Job's ready count; the ready worker pods where the Job does not report it."""
    job_status = (children.worker_job or {}).get("status") or {}
    if job_status.get("ready") is not None:
        return int(job_status["ready"])
    return sum(1 for pod in children.pods_of(children.worker_job) if _pod_ready(pod))


def _count_workers(
    status: dict[str, Any], connected: int, expected: int, generation: int, now: datetime
) -> None:
    status["connectedWorkers"] = connected
    everyone = connected >= expected
    set_condition(
        status["conditions"],
        WORKERS_CONNECTED,
        everyone,
        "AllWorkersConnected" if everyone else "WorkersMissing",
        f"{connected}/{expected} workers connected",
        generation,
        now,
    )


def _await_workers(status: dict[str, Any], generation: int, now: datetime) -> None:
    status["connectedWorkers"] = 0
    set_condition(
        status["conditions"],
        WORKERS_CONNECTED,
        False,
        "WaitingForWorkers",
        "Waiting for workers to connect",
        generation,
        now,
    )


def _end_workers(status: dict[str, Any], generation: int, now: datetime) -> None:
    status["connectedWorkers"] = 0
    set_condition(
        status["conditions"],
        WORKERS_CONNECTED,
        False,
        "TestEnded",
        "The test has ended: no workers are connected",
        generation,
        now,
    )


def _transition(
    status: dict[str, Any],
    old: str,
    new: str,
    generation: int,
    now: datetime,
    result: Evaluation,
) -> None:
    status["phase"] = new
    conditions = status["conditions"]
    if new == RUNNING or (new in TERMINAL and not status.get("startTime")):
        status.setdefault("startTime", timestamp(now))
    if new == RUNNING:
        result.events.append(Event(NORMAL, "TestStarted", "Load test execution started"))
        set_condition(
            conditions, TEST_COMPLETED, False, "TestInProgress", "Test is running", generation, now
        )
    elif new == SUCCEEDED:
        status["completionTime"] = timestamp(now)
        result.events.append(Event(NORMAL, "TestCompleted", "Load test completed successfully"))
        set_condition(
            conditions,
            TEST_COMPLETED,
            True,
            "TestSucceeded",
            "Test completed successfully",
            generation,
            now,
        )
    elif new == FAILED:
        status["completionTime"] = timestamp(now)
        result.events.append(Event(WARNING, "TestFailed", "Load test execution failed"))
        set_condition(
            conditions, TEST_COMPLETED, True, "TestFailed", "Test failed", generation, now
        )
        set_condition(conditions, READY, False, "ResourcesFailed", "Test failed", generation, now)
    if new in TERMINAL:
        _end_workers(status, generation, now)
