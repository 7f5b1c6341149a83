"""The operator process: informers feed a work queue, workers reconcile, probes report health.

Startup: connect, serve /healthz, /readyz and /metrics, then (optionally after winning the Lease)
list and watch LocustTests and start the workers. SIGTERM or SIGINT stops the watches, lets the
reconciles in flight finish, writes the queued events, releases the Lease, and exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.core.exceptions import ConfigError as KubeConfigError

from .. import __version__
from ..api.compatibility import version_problem
from ..config import OperatorConfig
from ..controller import Reconciler, TestKey
from .caches import Caches
from .events import EventRecorder
from .kube_http import get_json
from .leader import LeaderElector, LeadershipLost
from .locusttest_metrics import LOCUSTTESTS
from .metrics import CONTROLLER, RECONCILE_ERRORS, RECONCILE_TIME, RECONCILE_TOTAL
from .notices import TEST_CHANGED, PebbleNotifier, worth_a_notice
from .probes import Probes
from .results import ResultsPoller
from .webhook import ConversionWebhook
from .workqueue import ShutDown, WorkQueue

log = logging.getLogger("reconciler")

FIELD_MANAGER = "locust-operator"
SHUTDOWN_GRACE_SECONDS = 25.0
VERSION_TIMEOUT_SECONDS = 5.0
# Polls of running tests wait while new work came into the queue this recently (a burst).
BUSY_SECONDS = 1.0
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
        self.caches: Caches | None = None
        self.webhook: ConversionWebhook | None = None
        self._leading = not config.leader_election.enabled
        self._lease_api_ok = False

    async def main(self) -> int:
        config = self.config
        log.info("locust-operator %s starting", __version__)
        log.info("Operator configuration loaded: %s", config.summary())
        try:
            client = AsyncClient(field_manager=FIELD_MANAGER)
        except KubeConfigError as error:
            log.error(
                "No Kubernetes configuration: %s (set KUBECONFIG or run in a cluster)", error
            )
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
        webhook_task = None
        if config.enable_webhooks:
            self.webhook = ConversionWebhook(Path(config.webhook_cert_dir), config.webhook_port)
            webhook_task = asyncio.create_task(self.webhook.run(), name="conversion webhook")
        try:
            return await self._run_until(stop, client, webhook_task)
        finally:
            if webhook_task:
                webhook_task.cancel()
                await asyncio.gather(webhook_task, return_exceptions=True)
            await probes.stop()
            await client.close()

    async def _run_until(
        self, stop: asyncio.Event, client: AsyncClient, webhook_task: asyncio.Task[None] | None
    ) -> int:
        problem = await self._cluster_problem(client, stop)
        if problem:
            log.error("%s", problem)
            return EXIT_INVALID
        if stop.is_set():
            return EXIT_OK
        election = self.config.leader_election
        if election.enabled:
            elector = LeaderElector(client, election, on_api=self._lease_reachable)
            work = asyncio.create_task(elector.run(lambda: self._lead(client)))
        else:
            work = asyncio.create_task(self._lead(client))
        stopping = asyncio.create_task(stop.wait())
        waits = {work, stopping} | ({webhook_task} if webhook_task else set())
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if stopping in done:
            log.info("Shutdown signal received: finishing reconciles in flight")
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            log.info("locust-operator stopped")
            return EXIT_OK
        stopping.cancel()
        failed = work if work in done else webhook_task
        assert failed is not None
        work.cancel()
        try:
            failed.result()
        except LeadershipLost as error:
            log.error("Leader election lost: %s", error)
            return EXIT_FAILED
        except OSError as error:
            log.error("Cannot serve the conversion webhook: %s", error)
            return EXIT_FAILED
        except Exception:
            log.exception("The operator stopped unexpectedly")
            return EXIT_FAILED
        finally:
            await asyncio.gather(work, return_exceptions=True)
        return EXIT_OK

    async def _cluster_problem(self, client: AsyncClient, stop: asyncio.Event) -> str | None:
        """Ask the API server its version until it answers (or SIGTERM); why it cannot run the
        operator's tests, or None."""
        failures = 0
        while not stop.is_set():
            try:
                info = await get_json(client, "/version", timeout=VERSION_TIMEOUT_SECONDS)
            except (httpx2.HTTPError, ValueError) as error:
                failures += 1
                if failures <= 3 or failures % 10 == 0:
                    log.warning("Cannot read the API server's version yet: %s", _describe(error))
                delay = min(0.2 * 2 ** (failures - 1), 10.0)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            log.info("Kubernetes %s", info.get("gitVersion", "(version unknown)"))
            return version_problem(info)
        return None

    async def _lead(self, client: AsyncClient) -> None:
        """Watch and reconcile until cancelled, then drain gracefully."""
        self._leading = True
        config = self.config
        recorder = EventRecorder(client)
        recorder.start()
        caches = self.caches = Caches(client, config.watch_namespaces, self.queue.add)
        # In the cluster the master pods can be reached at their IPs, without the API server.
        plain = httpx2.AsyncClient() if config.results_via == "pod-ip" else None
        poller = ResultsPoller(
            client,
            config,
            caches,
            self.queue.add_low_priority,
            recorder,
            http=plain,
            busy=lambda: self.queue.added_within(BUSY_SECONDS),
        )
        # Under Pebble (the charm), a test's new phase or verdict reaches the charm at once.
        notifier = PebbleNotifier.from_env()

        async def status_written(
            key: TestKey, before: Mapping[str, Any], after: Mapping[str, Any]
        ) -> None:
            if notifier is not None and worth_a_notice(before, after):
                await notifier.notify(TEST_CHANGED, {"namespace": key.namespace, "name": key.name})

        reconciler = Reconciler(
            client, config, recorder, caches, results=poller, on_status_written=status_written
        )
        log.info("Watching %s", ", ".join(i.scope for i in caches.tests))
        watches = [
            asyncio.create_task(i.run(), name=f"informer {i.scope}") for i in caches.informers
        ]
        workers: list[asyncio.Task[None]] = []
        polling: asyncio.Task[None] | None = None
        LOCUSTTESTS.add_source(caches.all_tests)
        try:
            # Reconciling before every cache is filled would mistake children not yet listed
            # for deleted ones.
            await asyncio.gather(*(i.synced.wait() for i in caches.informers))
            workers = [
                asyncio.create_task(self._work(reconciler), name=f"worker-{n}")
                for n in range(config.max_concurrent_reconciles)
            ]
            polling = asyncio.create_task(poller.run(), name="results poller")
            await asyncio.gather(*watches)
        finally:
            LOCUSTTESTS.remove_source(caches.all_tests)
            for task in [*watches, *([polling] if polling else [])]:
                task.cancel()
            if polling:
                await asyncio.gather(polling, return_exceptions=True)
            if plain:
                await plain.aclose()
            if notifier is not None:
                await notifier.close()
            self.queue.shut_down()
            if workers:
                _, late = await asyncio.wait(workers, timeout=SHUTDOWN_GRACE_SECONDS)
                for task in late:
                    task.cancel()
            await recorder.stop()
            self._leading = False

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
        assert self.caches is not None
        started = time.perf_counter()
        try:
            result = await reconciler.reconcile(key, self.caches.test(key))
        except Exception as error:
            RECONCILE_ERRORS.labels(CONTROLLER).inc()
            RECONCILE_TOTAL.labels(CONTROLLER, "error").inc()
            delay = self.queue.add_rate_limited(key)
            log.error(
                "Reconcile of LocustTest %s failed (attempt %d), retrying in %.2fs: %s",
                key,
                self.queue.failures(key),
                delay,
                _describe(error),
            )
        else:
            RECONCILE_TOTAL.labels(CONTROLLER, result.label).inc()
            self.queue.forget(key)
            if result.requeue:
                self.queue.add_after(key, result.after)
        finally:
            RECONCILE_TIME.labels(CONTROLLER).observe(time.perf_counter() - started)

    def _lease_reachable(self, ok: bool) -> None:
        self._lease_api_ok = ok

    def _readiness(self) -> tuple[bool, str]:
        if self.webhook is not None and not self.webhook.serving:
            return False, "waiting for the conversion webhook's certificate"
        if not self._leading:
            if self._lease_api_ok:
                return True, "ok: standing by for the lease"
            return False, "waiting for the API server"
        # Not the LocustTests' own list: reading tests still stored as v1 goes through this
        # replica's conversion webhook, which the apiserver reaches only once a pod is ready.
        informers = self.caches.child_informers if self.caches else []
        if not informers or not all(i.synced.is_set() for i in informers):
            return False, "waiting for the first list of the operator's Services, Jobs and pods"
        if not all(i.connected for i in informers):
            return False, "reconnecting to the API server"
        return True, "ok"


def _describe(error: Exception) -> str:
    """One line: the API's status, the HTTP status, or the error itself."""
    # Before the HTTP status: lightkube's ApiError is an HTTPStatusError with the Status inside.
    status = getattr(error, "status", None)
    if status is not None and getattr(status, "message", None):
        return f"{status.code} {status.message}"
    if isinstance(error, httpx2.HTTPStatusError):
        return f"{error.response.status_code} {error.response.reason_phrase}"
    return str(error) or type(error).__name__
