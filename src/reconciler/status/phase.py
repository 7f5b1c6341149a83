"""A test's phase and conditions, derived from what its children say: pure, no I/O.

Given the LocustTest's current status, its Service, Jobs and pods as the caches hold them, and the
time, `evaluate` returns the status the test should have, the events that the change is worth, and
when to look again if nothing else happens (the pod-health grace period). The controller writes
the status and records the events; everything here can be tested from plain dicts.

Phases: Pending (children being created, or the master pod not running yet), Running (the master
Job has an active pod), Succeeded / Failed (the master Job's Complete / Failed condition, or pods
that stay broken after the grace period). Terminal phases are final.
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
    status = _copy(current)
    result = Evaluation(status)
    if phase in TERMINAL:
        return result  # final: a finished test's children may be gone by TTL, legitimately

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

    worker_status = (children.worker_job or {}).get("status") or {}
    connected = int(worker_status.get("active") or 0)
    status["connectedWorkers"] = connected
    expected = int(status.get("expectedWorkers") or expected_workers)
    set_condition(
        conditions,
        WORKERS_CONNECTED,
        connected >= expected,
        "AllWorkersConnected" if connected >= expected else "WorkersMissing",
        f"{connected}/{expected} workers connected",
        generation,
        now,
    )

    new_phase = _phase_from_master(children.master_job, phase)
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
    return result


def _phase_from_master(master_job: Mapping[str, Any] | None, phase: str) -> str:
    """Complete wins over Failed (upstream); an active pod means Running; never back to Pending."""
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
    if int(job_status.get("active") or 0) > 0:
        return RUNNING
    return phase


def _transition(
    status: dict[str, Any], old: str, new: str, generation: int, now: datetime, result: Evaluation
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
