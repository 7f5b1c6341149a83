"""A test's status, derived from what its children say: pure functions, no I/O.

Given the LocustTest's spec and current status, its Service, Jobs and pods as the caches hold them,
and the time, `evaluate` returns the status the test should have, the events that the change is
worth, and when to look again if nothing else happens (the pod-health grace period). The controller
writes the status and records the events; everything here can be tested from plain dicts.

Phases: Pending (children being created, or the master pod not running yet), Running (the master
Job has an active pod), Succeeded / Failed (the master Job's Complete / Failed condition, or pods
that stay broken after the grace period). Terminal phases are final.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .events import NORMAL, WARNING

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)

READY, WORKERS_CONNECTED, TEST_COMPLETED, SPEC_DRIFTED, PODS_HEALTHY = (
    "Ready", "WorkersConnected", "TestCompleted", "SpecDrifted", "PodsHealthy")

# Pod failure reasons, most actionable first: when several kinds of failure are seen, the first
# one here is reported, since fixing it often fixes the others.
FAILURE_PRIORITY = (
    "ConfigurationError", "ImagePullError", "SchedulingError", "CrashLoopBackOff",
    "InitializationError",
)


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


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Evaluation:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def set_condition(conditions: list[dict[str, Any]], type_: str, status: bool, reason: str,
                  message: str, generation: int, now: datetime) -> None:
    """Set one condition; lastTransitionTime moves only when the status flips (metav1 rule)."""
    value = "True" if status else "False"
    for condition in conditions:
        if condition["type"] == type_:
            if condition["status"] != value:
                condition["lastTransitionTime"] = timestamp(now)
            condition.update(status=value, reason=reason, message=message,
                             observedGeneration=generation)
            return
    conditions.append({"type": type_, "status": value, "reason": reason, "message": message,
                       "lastTransitionTime": timestamp(now), "observedGeneration": generation})


def condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)


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
    return {"phase": PENDING, "observedGeneration": generation,
            "expectedWorkers": expected_workers, "connectedWorkers": 0, "conditions": conditions}


def invalid_status(current: Mapping[str, Any], problem: str, generation: int,
                   now: datetime) -> dict[str, Any]:
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
        set_condition(conditions, READY, True, "ResourcesCreated", "All resources created",
                      generation, now)
    elif foreign:
        set_condition(conditions, READY, False, "ResourcesCreating",
                      f"Waiting for {', '.join(foreign)}, owned by another object, to go",
                      generation, now)
    if created_generation is not None and generation > created_generation:
        set_condition(conditions, SPEC_DRIFTED, True, "SpecChangeIgnored",
                      "Spec changes after creation are ignored. Delete and recreate the CR to "
                      "apply changes.", generation, now)

    worker_status = (children.worker_job or {}).get("status") or {}
    connected = int(worker_status.get("active") or 0)
    status["connectedWorkers"] = connected
    expected = int(status.get("expectedWorkers") or expected_workers)
    set_condition(conditions, WORKERS_CONNECTED, connected >= expected,
                  "AllWorkersConnected" if connected >= expected else "WorkersMissing",
                  f"{connected}/{expected} workers connected", generation, now)

    new_phase = _phase_from_master(children.master_job, phase)
    health = _pod_health(children.pods, config_maps, missing_config_maps, now, grace_seconds)
    set_condition(conditions, PODS_HEALTHY, health.healthy, health.reason, health.message,
                  generation, now)
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
    states = {c.get("type") for c in job_status.get("conditions") or () if c.get("status") == "True"}
    if "Complete" in states:
        return SUCCEEDED
    if "Failed" in states:
        return FAILED
    if int(job_status.get("active") or 0) > 0:
        return RUNNING
    return phase


def _transition(status: dict[str, Any], old: str, new: str, generation: int, now: datetime,
                result: Evaluation) -> None:
    status["phase"] = new
    conditions = status["conditions"]
    if new == RUNNING or (new in TERMINAL and not status.get("startTime")):
        status.setdefault("startTime", timestamp(now))
    if new == RUNNING:
        result.events.append(Event(NORMAL, "TestStarted", "Load test execution started"))
        set_condition(conditions, TEST_COMPLETED, False, "TestInProgress", "Test is running",
                      generation, now)
    elif new == SUCCEEDED:
        status["completionTime"] = timestamp(now)
        result.events.append(Event(NORMAL, "TestCompleted", "Load test completed successfully"))
        set_condition(conditions, TEST_COMPLETED, True, "TestSucceeded",
                      "Test completed successfully", generation, now)
    elif new == FAILED:
        status["completionTime"] = timestamp(now)
        result.events.append(Event(WARNING, "TestFailed", "Load test execution failed"))
        set_condition(conditions, TEST_COMPLETED, True, "TestFailed", "Test failed",
                      generation, now)
        set_condition(conditions, READY, False, "ResourcesFailed", "Test failed", generation, now)


# --- Pod health -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    healthy: bool
    reason: str
    message: str
    recheck_after: float | None = None


@dataclass(frozen=True)
class PodFailure:
    pod: str
    reason: str
    detail: str


def _pod_health(pods: Sequence[Mapping[str, Any]], config_maps: Sequence[str],
                missing_config_maps: Sequence[str], now: datetime, grace_seconds: float) -> Health:
    if not pods:
        return Health(True, "PodsStarting", "Waiting for pods to be created")
    created = [t for t in (parse_time(p["metadata"].get("creationTimestamp")) for p in pods) if t]
    if created:
        age = (now - min(created)).total_seconds()
        if age < grace_seconds:
            return Health(True, "PodsStarting", "Pods are starting up",
                          recheck_after=max(grace_seconds - age, 0.1))
    failures = [f for pod in pods for f in pod_failures(pod, config_maps, missing_config_maps)]
    if not failures:
        return Health(True, "PodsHealthy", "All pods are healthy")
    reason = min((f.reason for f in failures), key=FAILURE_PRIORITY.index)
    affected = sorted({f.pod for f in failures if f.reason == reason})
    first = next(f for f in failures if f.reason == reason)
    message = f"{reason}: {len(affected)} pod(s) affected [{', '.join(affected)}]: {first.detail}"
    if reason == "ConfigurationError":
        message += ". Create the ConfigMap and the pods will restart automatically."
    return Health(False, reason, message)


def pod_failures(pod: Mapping[str, Any], config_maps: Sequence[str] = (),
                 missing_config_maps: Sequence[str] = ()) -> Iterable[PodFailure]:
    """What is wrong with one pod, in upstream's categories (a healthy pod yields nothing)."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            yield PodFailure(name, "SchedulingError",
                             cond.get("message") or cond.get("reason") or "Pod cannot be scheduled")
    sidecars = {c["name"] for c in (pod.get("spec") or {}).get("initContainers") or ()
                if c.get("restartPolicy") == "Always"}
    for init, statuses in ((True, status.get("initContainerStatuses")),
                           (False, status.get("containerStatuses"))):
        for container in statuses or ():
            failure = _container_failure(name, container, init, sidecars, config_maps,
                                         missing_config_maps)
            if failure:
                yield failure


def _container_failure(pod: str, container: Mapping[str, Any], init: bool, sidecars: set[str],
                       config_maps: Sequence[str],
                       missing_config_maps: Sequence[str]) -> PodFailure | None:
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason") or ""
    message = waiting.get("message") or reason
    if reason == "CreateContainerConfigError":
        return PodFailure(pod, "ConfigurationError", _with_config_map(message, config_maps))
    if reason == "ContainerCreating" and missing_config_maps:
        # A missing ConfigMap volume keeps the pod in ContainerCreating (the kubelet reports a
        # FailedMount event, not a container state), so the controller checks the ConfigMaps.
        missing = ", ".join(missing_config_maps)
        return PodFailure(pod, "ConfigurationError",
                          f"ConfigMap not found (expected: {missing}). {message}")
    if "ImagePull" in reason or reason == "ErrImagePull":
        return PodFailure(pod, "ImagePullError", message)
    if reason == "CrashLoopBackOff":
        return PodFailure(pod, "CrashLoopBackOff", message)
    terminated = state.get("terminated") or {}
    code = terminated.get("exitCode")
    # A native sidecar is stopped with SIGTERM when the main container exits: not a failure.
    if code and container.get("name") not in sidecars:
        detail = f"Container {container.get('name')} exited with code {code}"
        if terminated.get("reason"):
            detail += f": {terminated['reason']}"
        if terminated.get("message"):
            detail += f" ({terminated['message'].strip().splitlines()[-1]})"
        return PodFailure(pod, "InitializationError" if init else "CrashLoopBackOff", detail)
    return None


def _with_config_map(message: str, config_maps: Sequence[str]) -> str:
    for config_map in config_maps:
        if config_map in message:
            return f"ConfigMap not found (expected: {config_map}). {message}"
    return message
