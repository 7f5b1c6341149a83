"""When the results poller reads a master: due polls wait while new work comes into the work
queue (a burst of new tests goes first), never longer than an interval, and never once Locust
has said it stopped (its settled numbers must be read before it quits)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx2

from reconciler.api.naming import ObjectKey
from reconciler.config import OperatorConfig
from reconciler.runtime.results import SETTLE_SECONDS, ResultsPoller

DATA = Path(__file__).resolve().parents[1] / "data" / "locust-2.47"
KEY = ObjectKey("default", "t")
TEST = {
    "apiVersion": "locust.io/v2",
    "kind": "LocustTest",
    "metadata": {"name": "t", "namespace": "default", "uid": "u-1"},
    "spec": {
        "image": "locustio/locust:2.47.0",
        "master": {"command": "--locustfile /lotest/src/locustfile.py"},
        "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 1},
    },
}
MASTER = {
    "metadata": {"name": "t-master-abcde", "namespace": "default"},
    "status": {"phase": "Running", "podIP": "127.0.0.9"},
}


class OneRunningTest:
    """The caches as the poller reads them: one test, its master pod running."""

    def __init__(self) -> None:
        self.tests = [SimpleNamespace(cache={KEY: TEST})]

    def pods(self, namespace: str, jobs: list[str]) -> list[dict[str, Any]]:
        return [MASTER]

    def test(self, key: ObjectKey) -> dict[str, Any] | None:
        return TEST


class Master:
    """Locust's /stats/requests, running or stopped, counting the polls it answers."""

    def __init__(self) -> None:
        self.polls = 0
        self.state = "running"

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.path != "/stats/requests":
            return httpx2.Response(404)  # no report to keep: the poller says so and goes on
        self.polls += 1
        answer = json.loads((DATA / f"stats-requests-{self.state}.json").read_text())
        return httpx2.Response(200, json=answer)


class Poller:
    def __init__(self) -> None:
        self.now = 1000.0
        self.busy = False
        self.master = Master()
        self.poller = ResultsPoller(
            client=None,  # type: ignore[arg-type]  # pod-ip: the API server is not asked
            config=OperatorConfig.from_env(
                {"RESULTS_INTERVAL_SECONDS": "10", "RESULTS_VIA": "pod-ip"}
            ),
            caches=OneRunningTest(),  # type: ignore[arg-type]
            enqueue=lambda key: None,
            recorder=SimpleNamespace(record=lambda *event: None),
            clock=lambda: self.now,
            http=httpx2.AsyncClient(transport=httpx2.MockTransport(self.master)),
            busy=lambda: self.busy,
        )

    async def tick(self, seconds: float) -> int:
        """Let `seconds` pass, start what is due, wait for it; the polls answered so far."""
        self.now += seconds
        self.poller.poll_due()
        for _ in range(20):
            await asyncio.sleep(0)
        return self.master.polls


async def test_a_due_poll_waits_while_new_work_comes_in():
    poller = Poller()
    assert await poller.tick(0) == 0  # first seen: its first poll within one interval
    assert await poller.tick(10) == 1
    poller.busy = True
    assert await poller.tick(11) == 1  # due, but a burst is being reconciled
    poller.busy = False
    assert await poller.tick(0.5) == 2


async def test_a_poll_waits_no_longer_than_an_interval_past_its_time():
    poller = Poller()
    await poller.tick(0)
    assert await poller.tick(10) == 1
    poller.busy = True
    assert await poller.tick(15) == 1  # due 4 s ago, or so (jitter)
    assert await poller.tick(10) == 2  # overdue by more than an interval


async def test_once_locust_has_stopped_the_settling_poll_never_waits():
    poller = Poller()
    await poller.tick(0)
    poller.master.state = "stopped"
    assert await poller.tick(10) == 1
    poller.busy = True
    assert await poller.tick(SETTLE_SECONDS) == 2
