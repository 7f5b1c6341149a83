"""Pod health: what is wrong with a test's pods, in upstream's categories (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import parse_time

# Pod failure reasons, most actionable first: when several kinds of failure are seen, the first
# one here is reported, since fixing it often fixes the others.
FAILURE_PRIORITY = (
    "ConfigurationError",
    "ImagePullError",
    "SchedulingError",
    "CrashLoopBackOff",
    "InitializationError",
)


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


def pod_health(
    pods: Sequence[Mapping[str, Any]],
    config_maps: Sequence[str],
    missing_config_maps: Sequence[str],
    now: datetime,
    grace_seconds: float,
) -> Health:
    if not pods:
        return Health(True, "PodsStarting", "Waiting for pods to be created")
    created = [t for t in (parse_time(p["metadata"].get("creationTimestamp")) for p in pods) if t]
    if created:
        age = (now - min(created)).total_seconds()
        if age < grace_seconds:
            return Health(
                True,
                "PodsStarting",
                "Pods are starting up",
                recheck_after=max(grace_seconds - age, 0.1),
            )
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


def pod_failures(
    pod: Mapping[str, Any],
    config_maps: Sequence[str] = (),
    missing_config_maps: Sequence[str] = (),
) -> Iterable[PodFailure]:
    """What is wrong with one pod, in upstream's categories (a healthy pod yields nothing)."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    for cond in status.get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            yield PodFailure(
                name,
                "SchedulingError",
                cond.get("message") or cond.get("reason") or "Pod cannot be scheduled",
            )
    sidecars = {
        c["name"]
        for c in (pod.get("spec") or {}).get("initContainers") or ()
        if c.get("restartPolicy") == "Always"
    }
    for init, statuses in (
        (True, status.get("initContainerStatuses")),
        (False, status.get("containerStatuses")),
    ):
        for container in statuses or ():
            failure = _container_failure(
                name, container, init, sidecars, config_maps, missing_config_maps
            )
            if failure:
                yield failure


def _container_failure(
    pod: str,
    container: Mapping[str, Any],
    init: bool,
    sidecars: set[str],
    config_maps: Sequence[str],
    missing_config_maps: Sequence[str],
) -> PodFailure | None:
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
        return PodFailure(
            pod, "ConfigurationError", f"ConfigMap not found (expected: {missing}). {message}"
        )
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
