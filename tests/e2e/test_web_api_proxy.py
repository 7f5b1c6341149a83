"""A real Locust master's web API read through the API server's pod proxy, as the operator's
results poller reads it: its live numbers, a stop, and the HTML report (a large answer)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from reconciler.runtime.kube_http import LocustWebApi, WebApiError
from tests.e2e.conftest import API_VERSION, SRC, Cluster, locustfile, locusttest
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.timeout(240)
T = TypeVar("T")
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task
    def home(self):
        self.client.get("/")
"""


async def eventually(
    read: Callable[[], Awaitable[T]], accept: Callable[[T], bool], what: str
) -> T:
    """Poll `read` until its answer is accepted (answers that fail to come are retried)."""
    deadline = time.monotonic() + 60
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = await read()
            if accept(last):
                return last
        except WebApiError as error:  # the master's web UI is not up yet
            last = error
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_a_running_master_is_read_and_stopped_through_the_pod_proxy(
    cluster: Cluster, tmp_path: Path
) -> None:
    target = cluster.target("proxied-target", "default")
    config = KubeConfig.from_file(cluster.kube.write_kubeconfig(tmp_path / "kubeconfig"))
    client = AsyncClient(config=config)
    try:
        cluster.apply(
            locustfile("proxied-locustfile", "default", LOCUSTFILE),
            locusttest(
                "proxied",
                "default",
                master_seed=f"--locustfile {SRC}/locustfile.py --host http://proxied-target:8080"
                " --users 2 --spawn-rate 2 --run-time 10m",
                workers=1,
                config_map="proxied-locustfile",
            ),
        )
        await asyncio.to_thread(cluster.running_master_ip, "default", "proxied")
        (pod,) = cluster.pods("default", "proxied-master")
        api = LocustWebApi("default", pod["metadata"]["name"], client=client)

        running = await eventually(
            lambda: api.get_json("/stats/requests"),
            lambda stats: stats["state"] == "running" and stats["stats"][-1]["num_requests"] > 0,
            "requests counted by the master",
        )
        assert running["stats"][-1]["name"] == "Aggregated"
        assert running["worker_count"] == 1

        assert (await api.post("/stop")).json() == {"success": True, "message": "Test stopped"}
        await eventually(
            lambda: api.get_json("/stats/requests"),
            lambda stats: stats["state"] == "stopped",
            "the stopped state",
        )
        report = await api.get_bytes("/stats/report")
        assert report.lstrip().lower().startswith(b"<!doctype html>")
        assert len(report) > 100_000  # Locust's report inlines its scripts: streamed whole
        verbs = {(r.method, r.verb) for r in cluster.kube.requests if r.subresource == "proxy"}
        assert verbs == {("GET", "get"), ("POST", "create")}
    finally:
        await client.close()
        target.stop()
    pids = [p.pid for p in cluster.processes("default", "proxied-")]
    cluster.kube.delete(API_VERSION, "LocustTest", "proxied", "default")
    wait_until(
        lambda: not any(psutil.pid_exists(pid) for pid in pids),
        timeout=60,
        what="the test's processes to stop",
    )
