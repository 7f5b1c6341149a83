"""The results poller: reads every running test's numbers from its Locust master, beside the
work queue and never inside a reconcile.

Each tick it looks in the caches for tests whose master pod runs and whose final results are not
in yet, and asks each master's web API for `/stats/requests` once per interval (with jitter, so
that tests created together are not polled together, and a bound on polls in flight). What it
learns is kept per test as an `Observation` and handed to the reconciler through the work queue:
the reconciler stays the only writer of the status, and writes it only when the numbers change.

Once Locust says `stopped`, the poller asks again a few seconds later, until two answers agree:
workers send their last numbers after the master has stopped. That settled answer is the final
snapshot; the poller then saves Locust's HTML report in a ConfigMap. A threshold with
`abortOnFail` that is breached in two polls in a row stops the test through `/stop`; Locust then
no longer quits by itself, so after the final snapshot the poller deletes the master pod, and
the master tells its workers to quit. A master stopped by hand (web UI, the stop-test action) is
ended the same way once its --autoquit delay has passed, and so is a lingering master of a test
that was finished before this operator took over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Pod

from ..api.naming import ObjectKey, child_names
from ..api.parse import parse
from ..api.types import SpecError, TestSpec
from ..config import OperatorConfig
from ..resources.report import ReportTooLarge, build_report, report_name
from ..status.conditions import NORMAL, WARNING, InvolvedObject, parse_time
from ..status.results import (
    INVALID_RESPONSE,
    Observation,
    Problem,
    Results,
    ResultsUnreadable,
    parse_stats,
    settled,
)
from ..status.thresholds import abort_breaches
from .caches import Caches
from .kube_http import LocustWebApi, WebApiError

log = logging.getLogger(__name__)

TestKey = ObjectKey
# Workers report their last numbers up to 3 s after the master says it stopped.
SETTLE_SECONDS = 3.5
POLL_TIMEOUT_SECONDS = 5.0
REPORT_TIMEOUT_SECONDS = 30.0
MAX_CONCURRENT_POLLS = 8
# Beyond its --autoquit delay (counted from the final snapshot, itself after the stop), a master
# still up after its test stopped was stopped by hand.
AUTOQUIT_GRACE_SECONDS = 10.0
ABORT_AFTER_POLLS = 2  # a breach must last this many polls in a row before the test is stopped
# A master quits its autoquit window after its run: polls come at least this many times in that
# window, so that the stop is seen, and the numbers settle, before the master is gone.
POLLS_PER_AUTOQUIT = 5


def poll_interval(interval: float, spec: TestSpec | None) -> float:
    """Seconds between two polls of a test: the operator's interval, shorter when the test's
    autoquit window would not leave time to read its final numbers (10 s and 10 s: often not)."""
    autoquit = spec.autoquit_seconds if spec is not None else None
    if autoquit is None:
        return interval
    return max(0.5, min(interval, autoquit / POLLS_PER_AUTOQUIT))


@dataclass
class _Progress:
    """The poller's memory of one test (one uid)."""

    uid: str | None
    due: float  # monotonic time of the next poll
    observation: Observation | None = None
    last: Results | None = None  # the previous answer, to tell when the numbers have settled
    breached_polls: int = 0
    aborted: bool = False
    done: bool = False  # final snapshot in, report handled, master ended if it was aborted
    polling: bool = False
    # When a master still running after its test stopped is ended: a stop through the web UI or
    # the stop-test action cancels Locust's --autoquit, and the Jobs would never finish.
    linger_deadline: float | None = None


@dataclass(frozen=True)
class _Target:
    key: TestKey
    test: dict[str, Any]
    pod: dict[str, Any]


@dataclass
class ResultsPoller:
    client: AsyncClient
    config: OperatorConfig
    caches: Caches
    enqueue: Callable[[TestKey], None]
    recorder: Any  # runtime.events.EventRecorder
    clock: Callable[[], float] = time.monotonic
    # Whether new work is coming into the queue (a burst): due polls wait (see `_deferred`).
    busy: Callable[[], bool] = lambda: False
    http: httpx2.AsyncClient | None = None  # for RESULTS_VIA=pod-ip
    _progress: dict[TestKey, _Progress] = field(default_factory=dict)
    _slots: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(MAX_CONCURRENT_POLLS)
    )
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def observation(self, key: TestKey) -> Observation | None:
        """What the reconciler merges into the test's status."""
        progress = self._progress.get(key)
        return progress.observation if progress else None

    async def run(self) -> None:
        interval = self.config.results_interval_seconds
        # Due polls start within half a second: a settle poll is due 3.5 s after a stop.
        tick = min(0.5, interval / 4)
        try:
            while True:
                self.poll_due()
                await asyncio.sleep(tick)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def poll_due(self) -> None:
        """Start a poll for every target that is due; forget the tests that are gone."""
        now = self.clock()
        present: set[TestKey] = set()
        for target in self._targets():
            present.add(target.key)
            uid = target.test["metadata"].get("uid")
            progress = self._progress.get(target.key)
            if progress is None or progress.uid != uid:
                progress = self._progress[target.key] = self._first_seen(target, uid, now)
            if progress.done:
                if progress.linger_deadline is not None and progress.linger_deadline <= now:
                    progress.linger_deadline = None
                    log.info(
                        "LocustTest %s: its master is still up after the test stopped: ending it",
                        target.key,
                    )
                    self._spawn(self._end_master(target), f"end master {target.key}")
                continue
            if progress.polling or progress.due > now:
                continue
            if self._deferred(progress, now):
                continue
            progress.polling = True
            self._spawn(self._poll(target, progress), f"results {target.key}")
        for key in [k for k in self._progress if k not in present and self.caches.test(k) is None]:
            del self._progress[key]

    def _deferred(self, progress: _Progress, now: float) -> bool:
        """Whether a due poll waits for the reconciles of new work (a burst of new tests): the
        API server serves those first. Never for longer than an interval past its time, and
        never once Locust said it stopped: the settled numbers must be read before it quits."""
        if (progress.last is not None and progress.last.stopped) or progress.aborted:
            return False
        overdue = now - progress.due >= self.config.results_interval_seconds
        return not overdue and self.busy()

    def _first_seen(self, target: _Target, uid: str | None, now: float) -> _Progress:
        if not _final_in(target.test):
            return _Progress(uid, now + random.uniform(0, self.config.results_interval_seconds))
        # Finished before this operator knew it (a restart, a new leader), its master still up:
        # nothing is read again, but a master the last operator stopped, or that was stopped by
        # hand, is ended as that operator would have.
        spec = _spec_of(target.test)
        progress = _Progress(uid, now, done=True)
        if spec is not None and spec.autoquit_seconds is not None:
            progress.linger_deadline = now + spec.autoquit_seconds + AUTOQUIT_GRACE_SECONDS
        elif spec is not None and _aborted_maybe(spec, target.test):
            progress.linger_deadline = now
        return progress

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _targets(self) -> Iterator[_Target]:
        for informer in self.caches.tests:
            for key, test in list(informer.cache.items()):
                if test["metadata"].get("deletionTimestamp"):
                    continue
                pod = self._running_master(key)
                if pod is not None:
                    yield _Target(TestKey(*key), test, pod)

    def _running_master(self, key: ObjectKey) -> dict[str, Any] | None:
        job = child_names(key.name).master_job
        for pod in self.caches.pods(key.namespace, [job]):
            status = pod.get("status") or {}
            deleting = (pod.get("metadata") or {}).get("deletionTimestamp")
            if status.get("phase") == "Running" and status.get("podIP") and not deleting:
                return pod
        return None

    def _web_api(self, target: _Target, timeout: float = POLL_TIMEOUT_SECONDS) -> LocustWebApi:
        metadata = target.pod["metadata"]
        if self.config.results_via == "pod-ip" and self.http is not None:
            return LocustWebApi(
                target.key.namespace,
                metadata["name"],
                pod_ip=target.pod["status"]["podIP"],
                http=self.http,
                via_proxy=False,
                timeout=timeout,
            )
        return LocustWebApi(
            target.key.namespace, metadata["name"], client=self.client, timeout=timeout
        )

    async def _poll(self, target: _Target, progress: _Progress) -> None:
        try:
            async with self._slots:
                await self._poll_once(target, progress)
        except Exception:  # a poll must never take the operator down
            log.exception("Reading the results of LocustTest %s failed", target.key)
            progress.due = self.clock() + self.config.results_interval_seconds
        finally:
            progress.polling = False

    async def _poll_once(self, target: _Target, progress: _Progress) -> None:
        spec = _spec_of(target.test)
        interval = poll_interval(self.config.results_interval_seconds, spec)
        progress.due = self.clock() + interval * random.uniform(0.9, 1.1)
        api = self._web_api(target)
        try:
            results = parse_stats(await api.get_json("/stats/requests"), _utcnow())
        except WebApiError as error:
            self._publish(
                target.key, progress, Observation(problem=Problem(error.reason, error.message))
            )
            return
        except ResultsUnreadable as error:
            message = f"{api.pod}: /stats/requests: {error}"
            self._publish(
                target.key, progress, Observation(problem=Problem(INVALID_RESPONSE, message))
            )
            return
        if results.stopped:
            if settled(progress.last, results):
                await self._finish(target, progress, spec, results)
                return
            progress.due = self.clock() + SETTLE_SECONDS
        elif spec is not None and spec.thresholds:
            await self._abort_if_breached(target, progress, spec, results, api)
        progress.last = results
        self._publish(target.key, progress, Observation(results=results))

    async def _abort_if_breached(
        self,
        target: _Target,
        progress: _Progress,
        spec: TestSpec,
        results: Results,
        api: LocustWebApi,
    ) -> None:
        found = abort_breaches(spec.thresholds, results)
        progress.breached_polls = progress.breached_polls + 1 if found else 0
        if progress.aborted or progress.breached_polls < ABORT_AFTER_POLLS:
            return
        reasons = "; ".join(breach.message() for breach in found)
        try:
            await api.post("/stop")
        except WebApiError as error:
            log.warning("Could not stop LocustTest %s early: %s", target.key, error.message)
            return
        progress.aborted = True
        progress.due = self.clock() + SETTLE_SECONDS
        log.info("LocustTest %s stopped early (abortOnFail): %s", target.key, reasons)
        self._record(target, WARNING, "TestAborted", f"Stopped early (abortOnFail): {reasons}")

    async def _finish(
        self, target: _Target, progress: _Progress, spec: TestSpec | None, results: Results
    ) -> None:
        status = target.test.get("status") or {}
        final = results.as_final(parse_time(status.get("startTime")), _utcnow())
        self._publish(target.key, progress, Observation(results=final))
        if spec is not None:
            await self._save_report(target, spec)
        if progress.aborted:
            await self._end_master(target)
        elif spec is not None and spec.autoquit_seconds is not None:
            progress.linger_deadline = (
                self.clock() + spec.autoquit_seconds + AUTOQUIT_GRACE_SECONDS
            )
        progress.done = True

    async def _save_report(self, target: _Target, spec: TestSpec) -> None:
        try:
            html = await self._web_api(target, REPORT_TIMEOUT_SECONDS).get_bytes("/stats/report")
        except WebApiError as error:
            self._record(target, WARNING, "ReportUnavailable", f"Locust's report: {error.message}")
            return
        try:
            config_map = build_report(spec, html)
        except ReportTooLarge as error:
            self._record(target, WARNING, "ReportTooLarge", f"{error}: not kept")
            return
        name = report_name(spec.name)
        try:
            await self.client.create(config_map)
        except ApiError as error:
            if error.status.code == 409:
                log.info("LocustTest %s: ConfigMap %s already exists", target.key, name)
                return
            self._record(
                target, WARNING, "ReportNotSaved", f"ConfigMap {name}: {error.status.message}"
            )
            return
        self._record(target, NORMAL, "ReportSaved", f"Locust's HTML report is in ConfigMap {name}")

    async def _end_master(self, target: _Target) -> None:
        name = target.pod["metadata"]["name"]
        try:
            await self.client.delete(Pod, name, namespace=target.key.namespace)
        except ApiError as error:
            if error.status.code != 404:
                log.warning("Could not end the master %s of %s: %s", name, target.key, error)

    def _publish(self, key: TestKey, progress: _Progress, observation: Observation) -> None:
        """Keep the observation; wake the reconciler only when what it would write changes."""
        if _comparable(observation) != _comparable(progress.observation):
            progress.observation = observation
            self.enqueue(key)
        elif progress.observation is not None and observation.results is not None:
            progress.observation = observation  # the same numbers, seen later

    def _record(self, target: _Target, type_: str, reason: str, message: str) -> None:
        subject = InvolvedObject.of_test(target.test, target.key.namespace, target.key.name)
        self.recorder.record(subject, type_, reason, message)


def _spec_of(test: dict[str, Any]) -> TestSpec | None:
    """The test's spec; None when it does not parse (its results are still read)."""
    try:
        return parse(test)
    except SpecError:
        return None


def _final_in(test: dict[str, Any]) -> bool:
    """Whether the test's status holds its final snapshot already: it is never read again (an
    operator that restarts, or takes over the lease, has no memory of having read it)."""
    results = (test.get("status") or {}).get("results")
    return isinstance(results, dict) and results.get("final") is True


def _aborted_maybe(spec: TestSpec, test: dict[str, Any]) -> bool:
    """Whether a finished test may have been stopped by its abortOnFail thresholds: its master,
    which has no --autoquit to end it, is ended then."""
    failed = (test.get("status") or {}).get("verdict") == "Failed"
    return failed and any(threshold.abort_on_fail for threshold in spec.thresholds)


def _comparable(observation: Observation | None) -> Any:
    """An observation without the time it was made: equal numbers need no new status."""
    if observation is None:
        return None
    if observation.results is None:
        return observation.problem
    document = observation.results.to_status()
    document.pop("observedAt")
    return document


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)
