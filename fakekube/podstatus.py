"""Pod status as the kubelet reports it, built from what the local kubelet knows of each container.

Pure: ``PodState`` holds the facts (address, times, each container's state) and ``status()`` renders
``PodStatus`` the way the kubelet computes it for ``restartPolicy: Never``:

* phase ``Pending`` until the main containers have started; ``Running`` while any runs;
  ``Succeeded`` when all exited 0, ``Failed`` when all exited and one did not exit 0. Sidecars
  (init containers with ``restartPolicy: Always``) do not count towards the phase.
* conditions ``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready`` and
  ``PodScheduled``, each with a stable ``lastTransitionTime`` (it moves only when the status flips).
* ``containerStatuses`` / ``initContainerStatuses``: ``waiting`` (ContainerCreating,
  PodInitializing, CreateContainerError ...), ``running`` or ``terminated`` with exitCode, reason
  ``Completed`` / ``Error`` and the termination message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .meta import now, random_hex

CONDITION_ORDER = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


@dataclass(frozen=True)
class Waiting:
    reason: str
    message: str | None = None


@dataclass(frozen=True)
class Running:
    started_at: str


@dataclass(frozen=True)
class Terminated:
    exit_code: int
    reason: str
    started_at: str | None
    finished_at: str
    message: str | None = None


ContainerState = Waiting | Running | Terminated


@dataclass
class ContainerRecord:
    name: str
    image: str
    #: An init container with restartPolicy Always: started first, stopped after the main ones.
    sidecar: bool = False
    #: An init container that runs to completion before the main containers.
    init: bool = False
    state: ContainerState = field(default_factory=lambda: Waiting("ContainerCreating"))
    container_id: str = field(default_factory=lambda: f"containerd://{random_hex(64)}")

    @property
    def main(self) -> bool:
        return not (self.sidecar or self.init)

    @property
    def running(self) -> bool:
        return isinstance(self.state, Running)

    @property
    def terminated(self) -> bool:
        return isinstance(self.state, Terminated)

    def status(self) -> dict[str, Any]:
        state = self.state
        created = not isinstance(state, Waiting)
        rendered: dict[str, Any]
        if isinstance(state, Waiting):
            rendered = {"waiting": _compact(reason=state.reason, message=state.message)}
        elif isinstance(state, Running):
            rendered = {"running": {"startedAt": state.started_at}}
        else:
            rendered = {
                "terminated": _compact(
                    exitCode=state.exit_code,
                    reason=state.reason,
                    message=state.message,
                    startedAt=state.started_at,
                    finishedAt=state.finished_at,
                    containerID=self.container_id,
                )
            }
        status = {
            "name": self.name,
            "state": rendered,
            "lastState": {},
            "ready": self.running,
            "restartCount": 0,
            "image": self.image,
            "imageID": "",
            "started": self.running,
        }
        if created:
            status["containerID"] = self.container_id
        return status


@dataclass
class _Condition:
    status: str
    since: str
    reason: str | None = None
    message: str | None = None


@dataclass
class PodState:
    """What the kubelet knows about one pod; ``status()`` renders it."""

    containers: list[ContainerRecord]
    host_ip: str
    pod_ip: str
    start_time: str = field(default_factory=now)
    qos_class: str | None = None
    #: The sandbox exists and volumes are set up.
    sandbox_ready: bool = False
    _conditions: dict[str, _Condition] = field(default_factory=dict)

    def container(self, name: str) -> ContainerRecord:
        return next(c for c in self.containers if c.name == name)

    @property
    def main_containers(self) -> list[ContainerRecord]:
        return [c for c in self.containers if c.main]

    @property
    def phase(self) -> str:
        main = self.main_containers
        if all(c.terminated for c in main):
            failed = any(c.state.exit_code != 0 for c in main)  # type: ignore[union-attr]
            return "Failed" if failed else "Succeeded"
        if any(not isinstance(c.state, Waiting) for c in main):
            return "Running"
        return "Pending"

    def status(self) -> dict[str, Any]:
        phase = self.phase
        initializing = [c.name for c in self.containers if not c.main and not self._initialized(c)]
        unready = [c.name for c in self.containers if not c.running and not c.init]
        finished = phase in ("Succeeded", "Failed")
        self._set("PodScheduled", True)
        self._set("PodReadyToStartContainers", self.sandbox_ready)
        self._set(
            "Initialized",
            not initializing,
            None if not initializing else "ContainersNotInitialized",
            None
            if not initializing
            else f"containers with incomplete status: [{' '.join(initializing)}]",
        )
        for kind in ("ContainersReady", "Ready"):
            if finished:
                self._set(kind, False, "PodCompleted")
            else:
                self._set(
                    kind,
                    not unready,
                    None if not unready else "ContainersNotReady",
                    None
                    if not unready
                    else f"containers with unready status: [{' '.join(unready)}]",
                )
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [self._render(kind) for kind in CONDITION_ORDER],
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.pod_ip,
            "podIPs": [{"ip": self.pod_ip}],
            "startTime": self.start_time,
        }
        init = [c.status() for c in self.containers if not c.main]
        if init:
            status["initContainerStatuses"] = init
        status["containerStatuses"] = [c.status() for c in self.main_containers]
        if self.qos_class:
            status["qosClass"] = self.qos_class
        return status

    @staticmethod
    def _initialized(container: ContainerRecord) -> bool:
        if container.sidecar:
            return not isinstance(container.state, Waiting)
        return container.terminated and container.state.exit_code == 0  # type: ignore[union-attr]

    def _set(
        self, kind: str, value: bool, reason: str | None = None, message: str | None = None
    ) -> None:
        status = "True" if value else "False"
        current = self._conditions.get(kind)
        since = current.since if current and current.status == status else now()
        self._conditions[kind] = _Condition(status, since, reason, message)

    def _render(self, kind: str) -> dict[str, Any]:
        condition = self._conditions[kind]
        return _compact(
            type=kind,
            status=condition.status,
            lastProbeTime=None,
            lastTransitionTime=condition.since,
            reason=condition.reason,
            message=condition.message,
            keep_none=("lastProbeTime",),
        )


def _compact(keep_none: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    """The fields that are set: Kubernetes omits empty optional status fields."""
    return {key: value for key, value in fields.items() if value is not None or key in keep_none}
