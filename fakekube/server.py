"""``FakeKube``: the fake API server on 127.0.0.1, run in a thread of its own, plus test helpers.

    with FakeKube() as kube:
        kube.write_kubeconfig(tmp_path / "kubeconfig")   # for lightkube, kubectl, the operator
        kube.apply_yaml(crd_yaml)
        kube.faults.add(verb="create", resource="jobs", status=500, times=1)
        kube.wait_for(lambda: kube.get("batch/v1", "Job", "t-master", "default"))

    # Jobs that run for real: the Job controller makes pods, the local kubelet runs them.
    with FakeKube(kubelet=KubeletSettings(root=tmp_path / "node")) as kube:
        kube.jobs.auto = True
        ...
        kube.kubelet.processes()   # what runs, for assertions

The server owns an asyncio loop in a background thread. Every helper hops onto that loop, so the
store is only ever touched by one thread and helpers are safe to call from tests.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from .apiserver import ApiServer
from .authn import ADMIN_TOKEN
from .conversion import ServiceResolver
from .errors import StatusError
from .faults import FaultInjector
from .handlers import build_app
from .kubelet import KubeletSettings, LocalKubelet, ProcessInfo
from .patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, clone
from .podproxy import DEFAULT_TIMEOUT as DEFAULT_PROXY_TIMEOUT
from .podproxy import PodProxy
from .rbac import ALWAYS_ALLOW, MODES, AuthorizationCheck
from .requestlog import RequestLog, RequestRecord
from .resources import ResourceType
from .selectors import LabelSelector
from .tls import ServingTLS, serving_tls

T = TypeVar("T")

PATCH_TYPES = {
    "merge": MERGE_PATCH,
    "json": JSON_PATCH,
    "strategic": STRATEGIC_MERGE_PATCH,
    "apply": APPLY_PATCH,
}
CONTEXT = "fakekube"
#: The default kubeconfig's token: the cluster administrator, in system:masters.
TOKEN = ADMIN_TOKEN


class JobControls:
    """``FakeKube.jobs``: drive the Job controller from a test (see ``jobcontroller.JobController``)."""

    def __init__(self, kube: FakeKube):
        self._kube = kube

    @property
    def auto(self) -> bool:
        return self._kube._call(lambda api: api.jobs.auto)

    @auto.setter
    def auto(self, enabled: bool) -> None:
        self._kube._call(lambda api: setattr(api.jobs, "auto", enabled))

    def create_pods(
        self, namespace: str, job_name: str, count: int | None = None, node_name: str | None = None
    ) -> list[dict[str, Any]]:
        return self._kube._call(
            lambda api: [
                clone(p) for p in api.jobs.create_pods(namespace, job_name, count, node_name)
            ]
        )

    def pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        return self._kube._call(
            lambda api: clone(
                api.jobs.pods_of(api.get(api.resource_for("batch/v1", "Job"), namespace, job_name))
            )
        )

    def set_pod_phase(
        self,
        namespace: str,
        pod_name: str,
        phase: str,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        ready: bool | None = None,
    ) -> dict[str, Any]:
        return self._kube._call(
            lambda api: clone(
                api.jobs.set_pod_phase(
                    namespace, pod_name, phase, exit_code, reason, message, ready
                )
            )
        )

    def sync_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        return self._kube._call(lambda api: clone(api.jobs.sync_job(namespace, job_name)))

    def complete_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        return self._kube._call(lambda api: clone(api.jobs.complete_job(namespace, job_name)))

    def fail_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        return self._kube._call(lambda api: clone(api.jobs.fail_job(namespace, job_name)))


class KubeletControls:
    """``FakeKube.kubelet``: what the local kubelet runs (see ``kubelet.LocalKubelet``)."""

    def __init__(self, kube: FakeKube):
        self._kube = kube

    def _kubelet(self, api: ApiServer) -> LocalKubelet:
        if api.kubelet is None:
            raise RuntimeError("this FakeKube runs no kubelet: pass kubelet=KubeletSettings(...)")
        return api.kubelet

    def processes(self) -> list[ProcessInfo]:
        """Processes of pods that still exist or whose processes still run."""
        return self._kube._call(lambda api: self._kubelet(api).processes())

    def log(self, namespace: str, pod: str, container: str | None = None) -> str:
        data = self._kube._call(lambda api: self._kubelet(api).log(namespace, pod, container))
        return data.decode(errors="replace")


class FakeKube:
    """A fake kube-apiserver over HTTP. ``start()`` serves it; ``stop()`` (or ``with``) ends it.

    With ``kubelet`` settings it also runs the pods of Jobs as local processes (with
    ``jobs.auto`` on, Jobs get their pods by themselves); ``stop()`` ends those processes.

    ``authorization="RBAC"`` authorizes every request by the Roles and bindings stored in the
    server, as kube-apiserver's RBAC authorizer does (the default, ``AlwaysAllow``, lets every
    request through), and with it enforces owner references as OpenShift's
    OwnerReferencesPermissionEnforcement admission plugin does (``enforce_owner_references``
    overrides that). The default kubeconfig is the administrator; ``write_kubeconfig(path,
    user=...)`` writes one for another user, ``user=service_account_user(ns, name)`` one for a
    ServiceAccount (see ``authn``). ``tls=True`` serves HTTPS with a throwaway CA (in the
    kubeconfigs, and in ``ca_pem``): kubectl sends a kubeconfig's credentials over TLS only.

    ``pods/NAME:PORT/proxy/PATH`` forwards to the pod's address (see ``podproxy``), waiting at
    most ``proxy_timeout`` seconds to connect and for each read of the answer.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history_limit: int = 10_000,
        kubelet: KubeletSettings | None = None,
        authorization: str = ALWAYS_ALLOW,
        enforce_owner_references: bool | None = None,
        tls: bool = False,
        proxy_timeout: float = DEFAULT_PROXY_TIMEOUT,
    ):
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"fakekube only listens on loopback addresses, not {host}")
        if authorization not in MODES:
            raise ValueError(f"authorization must be one of {', '.join(MODES)}: {authorization!r}")
        self.authorization = authorization
        self._enforce_owner_references = enforce_owner_references
        self._tls: ServingTLS | None = serving_tls(host) if tls else None
        self.host = host
        self.port = port
        self.faults = FaultInjector()
        self.jobs = JobControls(self)
        self.kubelet = KubeletControls(self)
        self._kubelet_settings = kubelet
        self._history_limit = history_limit
        self._log = RequestLog()
        self._proxy = PodProxy(proxy_timeout)
        self._api: ApiServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # Lifecycle.

    @property
    def kubernetes_version(self) -> str:
        """The version ``/version`` reports (``major.minor.patch``)."""
        return self._call(lambda api: api.kubernetes_version)

    @kubernetes_version.setter
    def kubernetes_version(self, version: str) -> None:
        self._call(lambda api: setattr(api, "kubernetes_version", version))

    @property
    def proxy_timeout(self) -> float:
        """How long the pod proxy waits to connect to a pod, and for each read of its answer."""
        return self._proxy.timeout

    @proxy_timeout.setter
    def proxy_timeout(self, seconds: float) -> None:
        self._proxy.timeout = seconds

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The CA of the HTTPS certificate (``tls=True``), for clients to verify the server."""
        return self._tls.ca_pem if self._tls else None

    def start(self) -> FakeKube:
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="fakekube", daemon=True
        )
        self._thread.start()
        started.result(timeout=30)
        return self

    def _run(self, started: Future[None]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # noqa: BLE001 - handed to the starting thread
            started.set_exception(error)
            loop.close()
            return
        started.set_result(None)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    async def _serve(self) -> None:
        self._api = ApiServer(
            history_limit=self._history_limit,
            authorization=self.authorization,
            enforce_owner_references=self._enforce_owner_references,
        )
        if self._kubelet_settings is not None:
            self._api.enable_kubelet(self._kubelet_settings)
        # handler_cancellation ends a watch handler (and drops its watcher) when its client goes away.
        self._runner = web.AppRunner(
            build_app(self._api, self._log, self.faults, self._proxy),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1.0,
            handler_cancellation=True,
        )
        await self._runner.setup()
        context = self._tls.server_context() if self._tls else None
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        loop = self._loop

        async def shut_down() -> None:
            assert self._api is not None and self._runner is not None
            if self._api.kubelet is not None:
                await self._api.kubelet.shutdown()
            self._api.store.close_watches()
            await self._runner.cleanup()
            await self._proxy.close()

        asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=30)
        self._loop = self._thread = None

    def __enter__(self) -> FakeKube:  # noqa: PYI034 - never subclassed
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # Client configuration.

    def kubeconfig_dict(self, user: str = TOKEN) -> dict[str, Any]:
        """A kubeconfig for this server. `user` is its bearer token, which authenticates as the
        user of that name (``TOKEN``, the default, as the administrator); see ``authn``."""
        cluster: dict[str, Any] = {"server": self.url}
        if self._tls:
            cluster["certificate-authority-data"] = base64.b64encode(self._tls.ca_pem).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT, "cluster": cluster}],
            "users": [{"name": CONTEXT, "user": {"token": user}}],
            "contexts": [
                {
                    "name": CONTEXT,
                    "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, user: str = TOKEN) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(user), sort_keys=False))
        return path

    @property
    def service_resolver(self) -> ServiceResolver | None:
        """Where webhooks' Service references lead, ``(namespace, name, port) -> (host, port)`` on
        loopback, as there is no cluster network (see ``conversion``). Set once started."""
        return self._call(lambda api: api.crds.webhooks.service_resolver)

    @service_resolver.setter
    def service_resolver(self, resolver: ServiceResolver | None) -> None:
        self._call(lambda api: setattr(api.crds.webhooks, "service_resolver", resolver))

    # Running code on the server's loop.

    def _call(self, work: Callable[[ApiServer], T]) -> T:
        if self._loop is None or self._api is None:
            raise RuntimeError("FakeKube is not running; call start() first")
        api = self._api
        if threading.current_thread() is self._thread:
            return work(api)

        async def run() -> T:
            return work(api)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    @staticmethod
    def _namespace(rt: ResourceType, namespace: str | None) -> str | None:
        return (namespace or "default") if rt.namespaced else None

    # Object helpers: the same semantics as the HTTP API, returning copies.

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        def work(api: ApiServer) -> dict[str, Any] | None:
            rt = api.resource_for(api_version, kind)
            try:
                return clone(rt.present(api.get(rt, self._namespace(rt, namespace), name)))
            except StatusError as error:
                if error.code == 404:
                    return None
                raise

        return self._call(work)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: dict[str, str] | str | None = None,
    ) -> list[dict[str, Any]]:
        """Objects of a kind, in one namespace or (``namespace=None``) in all of them."""
        selector = (
            LabelSelector.parse(labels)
            if isinstance(labels, str)
            else LabelSelector.from_dict(labels or {})
        )

        def work(api: ApiServer) -> list[dict[str, Any]]:
            rt = api.resource_for(api_version, kind)
            items, _ = api.list(rt, namespace if rt.namespaced else None, selector)
            return [clone(rt.present(obj)) for obj in items]

        return self._call(work)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        def work(api: ApiServer) -> dict[str, Any]:
            rt = api.resource_for(obj.get("apiVersion", ""), obj.get("kind", ""))
            namespace = self._namespace(rt, (obj.get("metadata") or {}).get("namespace"))
            return clone(rt.present(api.create(rt, namespace, obj)))

        return self._call(work)

    def replace(self, obj: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        """PUT: a full update, checked against ``metadata.resourceVersion`` when it is set."""

        def work(api: ApiServer) -> dict[str, Any]:
            rt = api.resource_for(obj.get("apiVersion", ""), obj.get("kind", ""))
            meta = obj.get("metadata") or {}
            updated = api.update(
                rt,
                self._namespace(rt, meta.get("namespace")),
                meta.get("name", ""),
                obj,
                subresource=subresource,
            )
            return clone(rt.present(updated))

        return self._call(work)

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str | None = None,
        field_manager: str = "fakekube",
    ) -> dict[str, Any]:
        """PATCH with ``patch_type`` one of merge, json, strategic, apply."""

        def work(api: ApiServer) -> dict[str, Any]:
            rt = api.resource_for(api_version, kind)
            result, _ = api.patch(
                rt,
                self._namespace(rt, namespace),
                name,
                PATCH_TYPES[patch_type],
                patch,
                subresource=subresource,
                field_manager=field_manager,
                force=True,
            )
            return clone(rt.present(result))

        return self._call(work)

    def patch_status(
        self,
        api_version: str,
        kind: str,
        name: str,
        status: dict[str, Any],
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Merge ``status`` into the object's status, through /status when the kind has it."""

        def work(api: ApiServer) -> dict[str, Any]:
            rt = api.resource_for(api_version, kind)
            result, _ = api.patch(
                rt,
                self._namespace(rt, namespace),
                name,
                MERGE_PATCH,
                {"status": status},
                subresource="status" if rt.has_status else None,
            )
            return clone(rt.present(result))

        return self._call(work)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
    ) -> dict[str, Any]:
        """DELETE; returns the object (with ``deletionTimestamp`` if finalizers keep it for now)."""

        def work(api: ApiServer) -> dict[str, Any]:
            rt = api.resource_for(api_version, kind)
            obj, _ = api.delete(rt, self._namespace(rt, namespace), name, propagation=propagation)
            return clone(rt.present(obj))

        return self._call(work)

    def apply_yaml(self, text: str, field_manager: str = "kubectl") -> list[dict[str, Any]]:
        """Create or update every document, like ``kubectl apply --server-side --force-conflicts``."""
        documents = [doc for doc in yaml.safe_load_all(text) if doc]

        def work(api: ApiServer) -> list[dict[str, Any]]:
            results = []
            for doc in documents:
                rt = api.resource_for(doc.get("apiVersion", ""), doc.get("kind", ""))
                meta = doc.get("metadata") or {}
                result, _ = api.patch(
                    rt,
                    self._namespace(rt, meta.get("namespace")),
                    meta.get("name", ""),
                    APPLY_PATCH,
                    doc,
                    field_manager=field_manager,
                    force=True,
                )
                results.append(clone(rt.present(result)))
            return results

        return self._call(work)

    # Watches, history and the request log.

    @property
    def resource_version(self) -> int:
        return self._call(lambda api: api.store.resource_version)

    def compact(self) -> None:
        """Forget history: watches and lists from any older resourceVersion get 410 Gone."""
        self._call(lambda api: api.store.compact())

    def expire_watches(self) -> None:
        """End every open watch stream cleanly, as the apiserver does at timeoutSeconds."""
        self._call(lambda api: api.store.close_watches())

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    @property
    def authorization_checks(self) -> list[AuthorizationCheck]:
        """The authorizer's latest decisions, oldest first: every request's, every
        impersonation's and every admission check's (such as owner references' finalizers)."""
        return self._call(lambda api: list(api.authorizer.checks))

    @staticmethod
    def wait_for(
        predicate: Callable[[], T],
        timeout: float = 5.0,
        interval: float = 0.01,
        message: str = "condition",
    ) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
            time.sleep(interval)
