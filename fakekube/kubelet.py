"""A local kubelet: runs the pods of Jobs as real processes on this machine.

It plays the scheduler and the kubelet of a single node for the pods it can run: pods controlled
by a Job whose main containers use an image in its table (by default the Locust image). Together
with the Job controller in ``auto`` mode, a Job created through the API becomes processes, and the
processes' exits become pod phases and, through the Job controller, Job conditions. With
``fail_unknown_images`` it also takes the Jobs' pods it cannot run, and reports their images as
unpullable (``ImagePullBackOff``), as a node without registry access would:

1. Scheduling: the pod is bound to the node (``spec.nodeName``, a ``Scheduled`` event) and gets its
   own loopback address as ``podIP`` (see ``containers`` for why and for every mapping rule).
2. Volumes: ConfigMap, Secret and emptyDir volumes are written to the pod's folder. A missing
   ConfigMap keeps the pod ``ContainerCreating`` with a ``FailedMount`` warning, as the kubelet
   does, and the pod starts once the ConfigMap exists.
3. Containers: each main container runs as ``containers.local_command`` says, in its own process
   group, with stdout and stderr in a per-container log (``GET .../pods/<name>/log``). Containers
   it cannot run (the metrics exporter) are reported as running, and sidecars stop when the main
   containers have exited, as native sidecars do.
4. Exits: exit codes become ``terminated`` states (reason ``Completed`` or ``Error``; with
   ``terminationMessagePolicy: FallbackToLogsOnError`` the message is the log's tail, as the kubelet
   takes it), and the pod becomes ``Succeeded`` or ``Failed``.
5. Deletion: a deleted pod (directly, or by the Job controller or the garbage collector) gets
   SIGTERM for every process of it, then SIGKILL after ``terminationGracePeriodSeconds``. Unlike a
   real apiserver, the fake removes the pod object at once instead of waiting for the kubelet.

Everything runs on the API server's event loop; processes are asyncio subprocesses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import shutil
import signal
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .containers import (
    DEFAULT_IMAGES,
    ContainerNotCreated,
    LocalCommand,
    LocalImage,
    NoEndpointYet,
    PodContext,
    image_repository,
    local_command,
    mounts_of,
)
from .errors import GroupResource, StatusError
from .meta import controller_of, now, random_hex
from .podstatus import ContainerRecord, PodState, Running, Terminated, Waiting
from .selectors import LabelSelector
from .volumes import VolumeNotReady, prepare_volumes
from .watch import DELETED, WatchEvent

if TYPE_CHECKING:
    from .apiserver import ApiServer

PODS = GroupResource("", "pods")
SERVICES = GroupResource("", "services")
CONFIGMAPS = GroupResource("", "configmaps")
SECRETS = GroupResource("", "secrets")
ENDPOINT_SLICES = GroupResource("discovery.k8s.io", "endpointslices")
EVENTS = GroupResource("", "events")
# Changes to these may let a waiting pod start: its ConfigMap appeared, its Service got a pod.
_UNBLOCKING = (PODS, SERVICES, CONFIGMAPS, SECRETS, ENDPOINT_SLICES)
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
DEFAULT_GRACE_SECONDS = 30
# What the kubelet copies from a failed container's log with FallbackToLogsOnError.
TERMINATION_MESSAGE_LINES = 80
TERMINATION_MESSAGE_BYTES = 2048


@dataclass(frozen=True)
class KubeletSettings:
    #: Where pods get their folders: ``<root>/<namespace>/<pod>/{home,volumes,logs}``.
    root: Path
    #: Image repository -> how to run it; pods whose main containers use none of these are
    #: left alone (a test can still drive them through ``FakeKube.jobs``).
    images: Mapping[str, LocalImage] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    #: A node without registry access: the main containers of a Job's pod whose image is not in
    #: ``images`` fail to pull (``ImagePullBackOff``), as they would on such a node. Off, pods
    #: whose main containers use no known image are left for tests to drive instead.
    fail_unknown_images: bool = False
    node_name: str = "fakekube-node"
    #: At server stop, how long processes get between SIGTERM and SIGKILL.
    shutdown_grace_seconds: float = 10.0


class AddressPool:
    """Pod IPs: one loopback address per pod, from a /16 picked at random, never reused.

    A random /16 keeps two sandboxes on one machine (the demo beside the tests) apart; an address
    whose pod ports are taken anyway is skipped.
    """

    def __init__(self, network: ipaddress.IPv4Network | None = None):
        if network is None:
            network = ipaddress.IPv4Network(f"127.{random.randint(16, 250)}.0.0/16")
        if not network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise ValueError(f"pod addresses must be loopback addresses, not {network}")
        self.network = network
        self._hosts: Iterator[ipaddress.IPv4Address] = network.hosts()
        next(self._hosts)  # .0.1 is the node's own address

    @property
    def node_address(self) -> str:
        return str(self.network.network_address + 1)

    def allocate(self, ports: tuple[int, ...] = ()) -> str:
        for address in self._hosts:
            if all(_port_is_free(str(address), port) for port in ports):
                return str(address)
        raise RuntimeError(f"pod address range {self.network} is exhausted")


def _port_is_free(address: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


class ServiceDirectory:
    """Cluster DNS for the runner: a Service name -> the address of an endpoint behind it.

    A Service with a selector resolves to a pod it selects that has an address: a Ready one if
    any, else one still starting, else the newest finished one (whose address refuses connections,
    as a Service without ready endpoints does). A Service without a selector resolves to the first
    ready address of its EndpointSlices, the Kubernetes way to name a backend outside the cluster;
    no EndpointSlice controller runs, so Services with a selector use their pods directly.
    """

    def __init__(self, api: ApiServer):
        self._api = api

    def lookup(self, name: str, namespace: str) -> str | None:
        service = self._api.store.get(SERVICES, namespace, name)
        if service is None:
            raise LookupError(f"{namespace}/{name}")
        selector = (service.get("spec") or {}).get("selector")
        if selector:
            return self._pod_address(LabelSelector.from_dict(selector), namespace)
        return self._slice_address(name, namespace)

    def _pod_address(self, selector: LabelSelector, namespace: str) -> str | None:
        candidates = [
            pod
            for pod in self._api.store.list(PODS, namespace)
            if selector.matches(pod["metadata"].get("labels"))
            and not pod["metadata"].get("deletionTimestamp")
            and (pod.get("status") or {}).get("podIP")
        ]

        def preference(pod: dict[str, Any]) -> tuple[int, int]:
            status = pod["status"]
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in status.get("conditions") or ()
            )
            active = status.get("phase") in ("Pending", "Running")
            return (2 if ready else 1 if active else 0, int(pod["metadata"]["resourceVersion"]))

        best = max(candidates, key=preference, default=None)
        return best["status"]["podIP"] if best else None

    def _slice_address(self, name: str, namespace: str) -> str | None:
        for endpoint_slice in self._api.store.list(ENDPOINT_SLICES, namespace):
            if (endpoint_slice["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) != name:
                continue
            for endpoint in endpoint_slice.get("endpoints") or ():
                if (endpoint.get("conditions") or {}).get("ready", True) and endpoint.get(
                    "addresses"
                ):
                    return endpoint["addresses"][0]
        return None


@dataclass
class _Container:
    """A main container the kubelet runs as a process."""

    spec: dict[str, Any]
    image: LocalImage
    log: Path
    process: asyncio.subprocess.Process | None = None
    argv: tuple[str, ...] = ()


@dataclass
class _Pod:
    uid: str
    namespace: str
    name: str
    folder: Path
    state: PodState
    runnable: dict[str, _Container]
    grace_seconds: float
    volumes: dict[str, Path] | None = None
    scheduled: bool = False
    started: bool = False
    deleted: bool = False
    events_sent: set[str] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def processes(self) -> list[asyncio.subprocess.Process]:
        return [c.process for c in self.runnable.values() if c.process is not None]


@dataclass(frozen=True)
class ProcessInfo:
    """A process the kubelet started, for tests and demos."""

    pid: int
    namespace: str
    pod: str
    container: str
    argv: tuple[str, ...]
    running: bool


class LocalKubelet:
    def __init__(self, api: ApiServer, settings: KubeletSettings):
        self._api = api
        self.settings = settings
        self.addresses = AddressPool()
        self.services = ServiceDirectory(api)
        self._pods: dict[str, _Pod] = {}
        self._retry_scheduled: set[str] = set()
        self._stopping = False
        api.store.subscribe(self.observe)

    # --- Reacting to the store ---------------------------------------------------------------

    def observe(self, storage: GroupResource, event: WatchEvent) -> None:
        if self._stopping:
            return
        meta = event.object["metadata"]
        if storage == PODS:
            pod = self._pods.get(meta["uid"])
            if event.type == DELETED or meta.get("deletionTimestamp"):
                if pod is not None and not pod.deleted:
                    self._kill(pod)
            elif pod is None and self._should_run(event.object):
                self._track(event.object)
        namespace = meta.get("namespace", "")
        if (
            storage in _UNBLOCKING
            and namespace not in self._retry_scheduled
            and any(p.namespace == namespace and not p.started for p in self._pods.values())
        ):
            self._retry_scheduled.add(namespace)
            self._api.defer(self._retry, namespace)

    def _should_run(self, pod: dict[str, Any]) -> bool:
        owner = controller_of(pod) or {}
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        return (
            owner.get("kind") == "Job"
            and status.get("phase", "Pending") == "Pending"
            and not status.get("podIP")
            and spec.get("nodeName") in (None, self.settings.node_name)
            and (
                self.settings.fail_unknown_images
                or any(self._image(c) for c in spec.get("containers") or ())
            )
        )

    def _image(self, container: Mapping[str, Any]) -> LocalImage | None:
        return self.settings.images.get(image_repository(container.get("image", "")))

    def _retry(self, namespace: str) -> None:
        self._retry_scheduled.discard(namespace)
        for pod in list(self._pods.values()):
            if pod.namespace == namespace and not pod.started and not pod.deleted:
                self._try_start(pod)

    # --- Scheduling --------------------------------------------------------------------------

    def _track(self, obj: dict[str, Any]) -> None:
        meta, spec = obj["metadata"], obj["spec"]
        ports = tuple(
            port["containerPort"]
            for container in spec.get("containers") or ()
            for port in container.get("ports") or ()
            if port.get("protocol", "TCP") == "TCP"
        )
        folder = self.settings.root / meta["namespace"] / meta["name"]
        records = [
            ContainerRecord(
                name=c["name"],
                image=c.get("image", ""),
                sidecar=c.get("restartPolicy") == "Always",
                init=c.get("restartPolicy") != "Always",
                state=Waiting("PodInitializing"),
            )
            for c in spec.get("initContainers") or ()
        ]
        records += [
            ContainerRecord(name=c["name"], image=c.get("image", ""))
            for c in spec.get("containers") or ()
        ]
        runnable = {
            c["name"]: _Container(c, image, folder / "logs" / f"{c['name']}.log")
            for c in spec.get("containers") or ()
            if (image := self._image(c)) is not None
        }
        pod = _Pod(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            folder=folder,
            state=PodState(
                containers=records,
                host_ip=self.addresses.node_address,
                pod_ip=self.addresses.allocate(ports),
                qos_class=(obj.get("status") or {}).get("qosClass"),
            ),
            runnable=runnable,
            grace_seconds=spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS),
        )
        shutil.rmtree(folder, ignore_errors=True)  # a pod of the same name before
        for sub in ("home", "volumes", "logs"):
            (folder / sub).mkdir(parents=True)
        self._pods[pod.uid] = pod
        self._api.defer(self._schedule, pod)

    def _schedule(self, pod: _Pod) -> None:
        if pod.deleted:
            return
        current = self._current(pod)
        if current is None:
            return
        # A pod created with this node's name is bound already (no scheduler involved).
        if current["spec"].get("nodeName") != self.settings.node_name:
            try:
                self._api.bind_pod(pod.namespace, pod.name, self.settings.node_name)
            except StatusError:
                return
        self._event(
            pod,
            "Scheduled",
            f"Successfully assigned {pod.namespace}/{pod.name} to {self.settings.node_name}",
            component="default-scheduler",
        )
        pod.scheduled = True
        self._publish(pod)
        self._try_start(pod)

    # --- Starting ----------------------------------------------------------------------------

    def _try_start(self, pod: _Pod) -> None:
        """Set up volumes and build every command; start them all, or wait for what is missing."""
        if pod.started or pod.deleted or not pod.scheduled:
            return
        current = self._current(pod)
        if current is None:
            return
        spec = current["spec"]
        if pod.volumes is None:
            try:
                pod.volumes = prepare_volumes(
                    spec.get("volumes") or [], pod.namespace, pod.folder / "volumes", self._lookup
                )
            except VolumeNotReady as not_ready:
                self._event(pod, "FailedMount", str(not_ready), warning=True)
                self._publish(pod)
                return
        volumes = pod.volumes
        pod.state.sandbox_ready = True
        for record in pod.state.containers:
            if record.sidecar and isinstance(record.state, Waiting):
                record.state = Running(now())
            elif record.init and isinstance(record.state, Waiting):
                # A regular init container the kubelet cannot run counts as done.
                record.state = Terminated(0, "Completed", now(), now())
        unpullable = [r for r in pod.state.containers if r.main and r.name not in pod.runnable]
        if unpullable:
            for record in unpullable:
                record.state = Waiting("ImagePullBackOff", f'Back-off pulling image "{record.image}"')
                self._event(pod, "Failed", f'Failed to pull image "{record.image}": this node '
                            "has no registry access", warning=True)
            self._publish(pod)
            return
        commands: dict[str, LocalCommand] = {}
        for name, container in pod.runnable.items():
            record = pod.state.container(name)
            try:
                context = self._context(pod, container, volumes)
                commands[name] = local_command(container.spec, container.image, context)
            except NoEndpointYet:
                record.state = Waiting("ContainerCreating")
            except ContainerNotCreated as error:
                record.state = Waiting(error.reason, error.message)
                self._event(pod, "Failed", f"Error: {error.message}", warning=True)
        if len(commands) < len(pod.runnable):
            self._publish(pod)
            return
        pod.started = True
        self._spawn(pod, self._run(pod, commands))

    def _context(
        self, pod: _Pod, container: _Container, volumes: Mapping[str, Path]
    ) -> PodContext:
        home = pod.folder / "home" / container.spec["name"]
        home.mkdir(parents=True, exist_ok=True)
        return PodContext(
            name=pod.name,
            namespace=pod.namespace,
            ip=pod.state.pod_ip,
            node_name=self.settings.node_name,
            mounts=dict(mounts_of(container.spec, volumes)),
            home=home,
            lookup=self.services.lookup,
            objects=self._lookup,
        )

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        storage = CONFIGMAPS if kind == "ConfigMap" else SECRETS
        return self._api.store.get(storage, namespace, name)

    async def _run(self, pod: _Pod, commands: Mapping[str, LocalCommand]) -> None:
        for name, command in commands.items():
            await self._start_process(pod, pod.runnable[name], command)
        if pod.deleted:  # deleted while its processes were starting
            self._terminate(pod, pod.grace_seconds)
        self._publish(pod)
        await asyncio.gather(*(self._wait(pod, c) for c in pod.runnable.values() if c.process))

    async def _start_process(
        self, pod: _Pod, container: _Container, command: LocalCommand
    ) -> None:
        record = pod.state.container(container.spec["name"])
        started = now()
        log = os.open(container.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            container.process = await asyncio.create_subprocess_exec(
                *command.argv,
                cwd=command.cwd,
                env=dict(command.env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                # Its own process group, so SIGTERM reaches processes it forks too.
                start_new_session=True,
            )
        except OSError as error:
            # What containerd reports when the entrypoint cannot be executed.
            record.state = Terminated(128, "StartError", None, now(), str(error))
            self._event(pod, "Failed", f"Error: {error}", warning=True)
            return
        finally:
            os.close(log)
        container.argv = command.argv
        record.state = Running(started)
        self._event(pod, "Started", f"Started container {record.name}")

    async def _wait(self, pod: _Pod, container: _Container) -> None:
        assert container.process is not None
        code = await container.process.wait()
        record = pod.state.container(container.spec["name"])
        started = record.state.started_at if isinstance(record.state, Running) else None
        exit_code = code if code >= 0 else 128 - code  # killed by a signal: 128 + its number
        record.state = Terminated(
            exit_code,
            "Completed" if exit_code == 0 else "Error",
            started,
            now(),
            self._termination_message(container, exit_code),
        )
        if all(c.terminated for c in pod.state.main_containers):
            for sidecar in pod.state.containers:
                if sidecar.sidecar and not sidecar.terminated:
                    # The kubelet stops native sidecars once the main containers have exited.
                    sidecar.state = Terminated(0, "Completed", sidecar.state.started_at, now())  # type: ignore[union-attr]
        self._publish(pod)

    @staticmethod
    def _termination_message(container: _Container, exit_code: int) -> str | None:
        # /dev/termination-log is not mapped, so the File policy never has a message; only
        # FallbackToLogsOnError does, from the tail of the log, as the kubelet reads it.
        policy = container.spec.get("terminationMessagePolicy", "File")
        if exit_code == 0 or policy != "FallbackToLogsOnError":
            return None
        try:
            with open(container.log, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - TERMINATION_MESSAGE_BYTES))
                tail = log.read()
        except OSError:
            return None
        lines = tail.decode(errors="replace").splitlines()[-TERMINATION_MESSAGE_LINES:]
        return "\n".join(lines) or None

    # --- Stopping ----------------------------------------------------------------------------

    def _kill(self, pod: _Pod) -> None:
        pod.deleted = True
        if pod.processes:
            self._event(pod, "Killing", "Stopping container")
            self._terminate(pod, pod.grace_seconds)
        self._forget_if_done(pod)

    def _terminate(self, pod: _Pod, grace_seconds: float) -> None:
        """SIGTERM now, SIGKILL once the grace period is over, as the kubelet stops containers."""
        self._signal(pod, signal.SIGTERM)
        self._spawn(pod, self._kill_after(pod, grace_seconds))

    async def _kill_after(self, pod: _Pod, grace_seconds: float) -> None:
        waits = [p.wait() for p in pod.processes if p.returncode is None]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), grace_seconds)
        except asyncio.TimeoutError:
            self._signal(pod, signal.SIGKILL)

    def _forget_if_done(self, pod: _Pod) -> None:
        """Drop a deleted pod once nothing of it runs any more (its folder stays, for post-mortems)."""
        done = not pod.tasks and all(p.returncode is not None for p in pod.processes)
        if pod.deleted and done and self._pods.get(pod.uid) is pod:
            del self._pods[pod.uid]

    @staticmethod
    def _signal(pod: _Pod, signum: signal.Signals) -> None:
        for process in pod.processes:
            if process.returncode is None:
                try:
                    os.killpg(process.pid, signum)
                except ProcessLookupError:
                    pass

    async def shutdown(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after the grace period); for server stop."""
        self._stopping = True
        pods = list(self._pods.values())
        for pod in pods:
            pod.deleted = True
            self._signal(pod, signal.SIGTERM)
        # Each pod's tasks end when its processes have exited (a process still being started
        # sees `deleted` and is stopped at once).
        tasks = {task for pod in pods for task in pod.tasks}
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
            if pending:
                for pod in pods:
                    self._signal(pod, signal.SIGKILL)
                await asyncio.wait(pending, timeout=5)
        self._pods.clear()

    # --- Reading -----------------------------------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        return [
            ProcessInfo(
                pid=container.process.pid,
                namespace=pod.namespace,
                pod=pod.name,
                container=name,
                argv=container.argv,
                running=container.process.returncode is None,
            )
            for pod in self._pods.values()
            for name, container in pod.runnable.items()
            if container.process is not None
        ]

    def log(
        self,
        namespace: str,
        name: str,
        container: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
    ) -> bytes:
        """The pods/log subresource: a container's output so far, with the apiserver's errors."""
        obj = self._api.get(self._type(PODS), namespace, name)
        spec = obj["spec"]
        names = [c["name"] for c in spec.get("containers") or ()]
        init_names = [c["name"] for c in spec.get("initContainers") or ()]
        if container is None:
            if len(names) != 1:
                raise StatusError.bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}] or one of the init containers: [{' '.join(init_names)}]"
                )
            container = names[0]
        if container not in names + init_names:
            raise StatusError.bad_request(f"container {container} is not valid for pod {name}")
        pod = self._pods.get(obj["metadata"]["uid"])
        if pod is not None:
            state = pod.state.container(container).state
            if isinstance(state, Waiting):
                raise StatusError.bad_request(
                    f'container "{container}" in pod "{name}" is waiting to start: {state.reason}'
                )
        path = self.settings.root / namespace / name / "logs" / f"{container}.log"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return b""
        if tail_lines is not None:
            lines = data.splitlines(keepends=True)
            data = b"".join(lines[-tail_lines:]) if tail_lines > 0 else b""
        if limit_bytes is not None:
            data = data[:limit_bytes]
        return data

    # --- Writing to the API ------------------------------------------------------------------

    def _type(self, storage: GroupResource) -> Any:
        return self._api.resources.for_storage(storage)

    def _current(self, pod: _Pod) -> dict[str, Any] | None:
        obj = self._api.store.get(PODS, pod.namespace, pod.name)
        return obj if obj is not None and obj["metadata"]["uid"] == pod.uid else None

    def _publish(self, pod: _Pod) -> None:
        if self._stopping:
            return
        current = self._current(pod)
        if current is None:
            return
        updated = {**current, "status": pod.state.status()}
        try:
            self._api.update(
                self._type(PODS), pod.namespace, pod.name, updated, subresource="status"
            )
        except StatusError:
            pass  # deleted meanwhile

    def _event(
        self,
        pod: _Pod,
        reason: str,
        message: str,
        *,
        warning: bool = False,
        component: str = "kubelet",
    ) -> None:
        """Record an Event about the pod, once per reason and message (the kubelet aggregates)."""
        key = f"{reason}:{message}"
        if key in pod.events_sent or self._stopping:
            return
        pod.events_sent.add(key)
        timestamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{pod.name}.{random_hex(16)}", "namespace": pod.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": pod.name,
                "namespace": pod.namespace,
                "uid": pod.uid,
            },
            "reason": reason,
            "message": message,
            "type": "Warning" if warning else "Normal",
            "source": {"component": component}
            | ({"host": self.settings.node_name} if component == "kubelet" else {}),
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": self.settings.node_name if component == "kubelet" else "",
        }
        try:
            self._api.create(self._type(EVENTS), pod.namespace, event)
        except StatusError:
            pass  # the namespace is going away

    def _spawn(self, pod: _Pod, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        pod.tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            pod.tasks.discard(finished)
            self._forget_if_done(pod)

        task.add_done_callback(done)
