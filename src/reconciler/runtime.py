"""The operator process: informers feed a work queue, workers reconcile, probes report health.

Startup: connect, serve /healthz, /readyz and /metrics, then (optionally after winning the Lease)
list and watch LocustTests and start the workers. SIGTERM or SIGINT stops the watches, lets the
reconciles in flight finish, writes the queued events, releases the Lease, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ConfigError as KubeConfigError

from . import __version__
from .config import OperatorConfig
from .controller import Outcome, Reconciler, TestKey
from .events import EventRecorder
from .informer import Informer
from .leader import LeaderElector, LeadershipLost
from .metrics import CONTROLLER, RECONCILE_ERRORS, RECONCILE_TIME, RECONCILE_TOTAL
from .probes import Probes
from .workqueue import ShutDown, WorkQueue

log = logging.getLogger("reconciler")

FIELD_MANAGER = "locust-operator"
SHUTDOWN_GRACE_SECONDS = 25.0
EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO; the operator's own lines are what users read.
    for noisy in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(config: OperatorConfig) -> int:
    """Run the operator until SIGTERM/SIGINT; return the process exit code."""
    configure_logging(config.log_level)
    return asyncio.run(Operator(config).main())


class Operator:
    def __init__(self, config: OperatorConfig):
        self.config = config
        self.queue: WorkQueue[TestKey] = WorkQueue()
        self.informers: list[Informer] = []
        self._leading = not config.leader_election.enabled
        self._lease_api_ok = False

    async def main(self) -> int:
        config = self.config
        log.info("locust-operator %s starting", __version__)
        log.info("Operator configuration loaded: %s", config.summary())
        try:
            client = AsyncClient(field_manager=FIELD_MANAGER)
        except KubeConfigError as error:
            log.error("No Kubernetes configuration: %s (set KUBECONFIG or run in a cluster)", error)
            return EXIT_INVALID
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        probes = Probes(alive=lambda: (True, "ok"), ready=self._readiness)
        try:
            await probes.start(config.health_port, config.metrics_port)
        except OSError as error:
            log.error("Cannot serve probes: %s", error)
            await client.close()
            return EXIT_FAILED
        try:
            return await self._run_until(stop, client)
        finally:
            await probes.stop()
            await client.close()

    async def _run_until(self, stop: asyncio.Event, client: AsyncClient) -> int:
        election = self.config.leader_election
        if election.enabled:
            elector = LeaderElector(client, election, on_api=self._lease_reachable)
            work = asyncio.create_task(elector.run(lambda: self._lead(client)))
        else:
            work = asyncio.create_task(self._lead(client))
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            log.info("Shutdown signal received: finishing reconciles in flight")
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            log.info("locust-operator stopped")
            return EXIT_OK
        stopping.cancel()
        try:
            work.result()
        except LeadershipLost as error:
            log.error("Leader election lost: %s", error)
            return EXIT_FAILED
        except Exception:
            log.exception("The operator stopped unexpectedly")
            return EXIT_FAILED
        return EXIT_OK

    async def _lead(self, client: AsyncClient) -> None:
        """Watch and reconcile until cancelled, then drain gracefully."""
        self._leading = True
        config = self.config
        recorder = EventRecorder(client)
        recorder.start()
        reconciler = Reconciler(client, config, recorder)
        namespaces = config.watch_namespaces or (None,)
        self.informers = [Informer(client, self._on_change, namespace=ns) for ns in namespaces]
        log.info("Watching LocustTests in %s", ", ".join(i.scope for i in self.informers))
        watches = [asyncio.create_task(i.run(), name=f"informer {i.scope}") for i in self.informers]
        workers = [
            asyncio.create_task(self._work(reconciler), name=f"worker-{n}")
            for n in range(config.max_concurrent_reconciles)
        ]
        try:
            await asyncio.gather(*watches)
        finally:
            for task in watches:
                task.cancel()
            self.queue.shut_down()
            _, late = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await recorder.stop()
            self._leading = False

    def _on_change(
        self, key: TestKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        # Deletions need no work (garbage collection removes the children); metadata-only and
        # status updates do not change what the test asks for, so only new generations count.
        if new is None:
            return
        if old is None or old["metadata"].get("generation") != new["metadata"].get("generation"):
            self.queue.add(key)

    def _lookup(self, key: TestKey) -> dict[str, Any] | None:
        for informer in self.informers:
            test = informer.cache.get(key)
            if test is not None:
                return test
        return None

    async def _work(self, reconciler: Reconciler) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self._reconcile(reconciler, key)
            finally:
                self.queue.done(key)

    async def _reconcile(self, reconciler: Reconciler, key: TestKey) -> None:
        started = time.perf_counter()
        try:
            outcome = await reconciler.reconcile(key, self._lookup(key))
        except Exception as error:
            RECONCILE_ERRORS.labels(CONTROLLER).inc()
            RECONCILE_TOTAL.labels(CONTROLLER, "error").inc()
            delay = self.queue.add_rate_limited(key)
            log.error("Reconcile of LocustTest %s failed (attempt %d), retrying in %.2fs: %s",
                      key, self.queue.failures(key), delay, _describe(error))
        else:
            RECONCILE_TOTAL.labels(CONTROLLER, outcome.value).inc()
            if outcome is Outcome.REQUEUE:
                self.queue.add(key)
            else:
                self.queue.forget(key)
        finally:
            RECONCILE_TIME.labels(CONTROLLER).observe(time.perf_counter() - started)

    def _lease_reachable(self, ok: bool) -> None:
        self._lease_api_ok = ok

    def _readiness(self) -> tuple[bool, str]:
        if not self._leading:
            if self._lease_api_ok:
                return True, "ok: standing by for the lease"
            return False, "waiting for the API server"
        if not self.informers or not all(i.synced.is_set() for i in self.informers):
            return False, "waiting for the first list of LocustTests"
        if not all(i.connected for i in self.informers):
            return False, "reconnecting to the API server"
        return True, "ok"


def _describe(error: Exception) -> str:
    status = getattr(error, "status", None)
    if status is not None and getattr(status, "message", None):
        return f"{status.code} {status.message}"
    return str(error) or type(error).__name__
