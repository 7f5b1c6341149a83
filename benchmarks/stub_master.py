"""Stub Locust masters for the benchmark: one asyncio process answering Locust's web API on many
pod addresses at once, so hundreds of tests can be "running" without hundreds of Locusts.

Two halves:

1. An image for the fake's kubelet, ``STUB_REPOSITORY`` (``fakekube/locust-stub``), whose
   container is a no-op ``sleep`` (about 1 MB each; Locust's ``--master``/``--worker`` arguments
   are accepted and ignored). Pods of a test whose ``image`` is ``fakekube/locust-stub:<any tag>``
   become Running with a pod IP like any Locust pod, without launching Locust::

       kube = FakeKube(kubelet=KubeletSettings(root=..., images=stub_images()))

2. ``StubMasters``: one aiohttp server process (or task) that listens on port 8089 of each
   master pod's address and answers as Locust 2.47's web UI does:

   - ``GET /stats/requests``: the JSON Locust sends (``tests/data/locust-2.47/
     stats-requests-running.json``, captured from a real master with one worker), with the
     counts growing at that capture's rates since the stub started listening; after a stop, the
     counts stay put, ``state`` is ``stopped`` and ``user_count`` 0, as Locust reports them.
   - ``POST /stop``: ``{"success": true, "message": "Test stopped"}``.
   - ``GET /stats/report``: a small HTML page (Locust's own is about 1 MB of inlined scripts).

   ``StubMasters.sync(addresses)`` listens on new addresses and closes those no longer given
   (``silence(address)`` keeps one closed, as a master whose web UI went away);
   ``follow(kube_url)`` keeps it in step with the master pods the API server lists (Running
   pods whose containers have ``--master`` among their args).

Standalone, next to a fake cluster (``make sandbox``) whose tests use the stub image::

    python benchmarks/stub_master.py --server http://127.0.0.1:PORT [--token TOKEN]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

import httpx2  # noqa: E402
from aiohttp import web  # noqa: E402

from fakekube.containers import DEFAULT_IMAGES, LocalImage  # noqa: E402

CAPTURE = ROOT / "tests" / "data" / "locust-2.47" / "stats-requests-running.json"
STUB_REPOSITORY = "fakekube/locust-stub"
STUB_IMAGE = LocalImage(
    # `sh -c SCRIPT NAME ARGS...`: the container's args land in $1... and are ignored.
    entrypoint=("/bin/sh", "-c", "exec sleep infinity", "locust-stub"),
    workdir="/home/locust",
    entrypoint_names=frozenset({"locust"}),
)
WEB_PORT = 8089


def stub_images() -> dict[str, LocalImage]:
    """The kubelet's image table with the stub image beside the real Locust image."""
    return {**DEFAULT_IMAGES, STUB_REPOSITORY: STUB_IMAGE}


class StubMaster:
    """One master's state: started when first listened on, stopped by ``POST /stop``."""

    def __init__(self, template: Mapping[str, Any], started: float):
        self._template = template
        self.started = started
        self.stopped_at: float | None = None
        self.stops = 0

    def payload(self, now: float) -> dict[str, Any]:
        end = self.stopped_at if self.stopped_at is not None else now
        elapsed = max(end - self.started, 0.0)
        report = copy.deepcopy(dict(self._template))
        total_requests = total_failures = 0
        for entry in report["stats"][:-1]:
            rate = float(entry["total_rps"])
            failure_share = (
                entry["num_failures"] / entry["num_requests"] if entry["num_requests"] else 0
            )
            entry["num_requests"] = int(rate * elapsed)
            entry["num_failures"] = int(entry["num_requests"] * failure_share)
            total_requests += entry["num_requests"]
            total_failures += entry["num_failures"]
        total = report["stats"][-1]
        total["num_requests"], total["num_failures"] = total_requests, total_failures
        report["fail_ratio"] = total_failures / total_requests if total_requests else 0.0
        for error in report["errors"]:
            matching = [s for s in report["stats"] if s["name"] == error["name"]]
            error["occurrences"] = matching[0]["num_failures"] if matching else 0
        if self.stopped_at is not None:
            report["state"] = "stopped"
            report["user_count"] = 0
            for worker in report.get("workers", []):
                worker["state"], worker["user_count"] = "ready", 0
        return report


class StubMasters:
    """Locust's web API on port ``port`` of many addresses, in one aiohttp application."""

    def __init__(self, port: int = WEB_PORT, template: Mapping[str, Any] | None = None):
        self.port = port
        self._template = template or json.loads(CAPTURE.read_text())
        self.masters: dict[str, StubMaster] = {}
        self._sites: dict[str, web.TCPSite] = {}
        #: Addresses not to listen on again (a master whose web UI went away).
        self.silenced: set[str] = set()
        #: Raw answers to ``GET /stats/requests`` per address: (HTTP status, body, content type).
        self.answers: dict[str, tuple[int, bytes, str]] = {}
        #: Addresses whose ``/stats/requests`` never answers (until ``close``).
        self.hanging: set[str] = set()
        self._released = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def _master(self, request: web.Request) -> StubMaster:
        address = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        return self.masters[address]

    async def _stats(self, request: web.Request) -> web.Response:
        address = request.transport.get_extra_info("sockname")[0] if request.transport else ""
        if address in self.hanging:
            await self._released.wait()
            return web.Response(status=503)
        if address in self.answers:
            status, body, content_type = self.answers[address]
            return web.Response(status=status, body=body, content_type=content_type)
        return web.json_response(self._master(request).payload(time.monotonic()))

    async def _stop(self, request: web.Request) -> web.Response:
        master = self._master(request)
        if master.stopped_at is None:
            master.stopped_at = time.monotonic()
        master.stops += 1
        return web.json_response({"success": True, "message": "Test stopped"})

    async def _report(self, request: web.Request) -> web.Response:
        payload = self._master(request).payload(time.monotonic())
        rows = "".join(
            f"<tr><td>{s['method']}</td><td>{s['name']}</td><td>{s['num_requests']}</td>"
            f"<td>{s['num_failures']}</td></tr>"
            for s in payload["stats"]
        )
        page = (
            "<!DOCTYPE html><html><head><title>Locust</title></head><body>"
            f"<h1>Test Report</h1><table>{rows}</table></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    async def start(self) -> StubMasters:
        app = web.Application()
        app.router.add_get("/stats/requests", self._stats)
        app.router.add_post("/stop", self._stop)
        app.router.add_get("/stats/report", self._report)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        return self

    async def listen(self, address: str) -> None:
        if address in self._sites:
            return
        assert self._runner is not None, "start() first"
        site = web.TCPSite(self._runner, address, self.port)
        await site.start()
        self._sites[address] = site
        self.masters[address] = StubMaster(self._template, time.monotonic())

    async def forget(self, address: str) -> None:
        site = self._sites.pop(address, None)
        self.masters.pop(address, None)
        if site is not None:
            await site.stop()

    async def silence(self, address: str) -> None:
        """Stop answering on `address`, and never again, though its pod still runs."""
        self.silenced.add(address)
        await self.forget(address)

    async def sync(self, addresses: Iterable[str]) -> None:
        wanted = set(addresses) - self.silenced
        for address in set(self._sites) - wanted:
            await self.forget(address)
        for address in wanted - set(self._sites):
            try:
                await self.listen(address)
            except OSError as error:
                print(f"stub master: cannot listen on {address}:{self.port}: {error}")

    async def close(self) -> None:
        self._released.set()
        for address in list(self._sites):
            await self.forget(address)
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> StubMasters:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def master_addresses(pods: Iterable[Mapping[str, Any]]) -> list[str]:
    """The addresses of Running pods with a container started with ``--master``."""
    found = []
    for pod in pods:
        status = pod.get("status") or {}
        containers = (pod.get("spec") or {}).get("containers") or []
        master = any("--master" in (c.get("args") or []) for c in containers)
        if master and status.get("phase") == "Running" and status.get("podIP"):
            found.append(status["podIP"])
    return found


async def follow(
    stubs: StubMasters, server: str, token: str | None = None, interval: float = 0.2
) -> None:
    """Keep ``stubs`` listening on the master pods ``server`` lists, until cancelled."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(base_url=server, headers=headers, verify=False) as http:
        while True:
            # Only Running pods: the thousands of Pending ones a burst leaves would make this
            # listing the fake's heaviest load, and no real cluster carries it.
            response = await http.get(
                "/api/v1/pods", params={"fieldSelector": "status.phase=Running"}, timeout=10
            )
            response.raise_for_status()
            await stubs.sync(master_addresses(response.json()["items"]))
            await asyncio.sleep(interval)


async def _main(server: str, token: str | None) -> None:
    async with StubMasters() as stubs:
        print(f"stub masters following the master pods of {server}")
        await follow(stubs, server, token)


async def _serve_cluster(workdir: Path, operator_user: str) -> None:
    """A fake cluster whose kubelet runs the stub image (Jobs get their pods by themselves), and
    stub masters on its master pods, in this process. Writes `kubeconfig` (the administrator)
    and `operator-kubeconfig` (`operator_user`) into `workdir`, prints the URL, then answers
    each line `requests` on stdin with a JSON line: the requests `operator_user` made so far,
    counted by "verb resource[/subresource]"."""
    from collections import Counter

    from fakekube import FakeKube, KubeletSettings

    settings = KubeletSettings(root=workdir / "node", images={STUB_REPOSITORY: STUB_IMAGE})
    with FakeKube(kubelet=settings) as kube:
        kube.jobs.auto = True
        kube.write_kubeconfig(workdir / "kubeconfig")
        kube.write_kubeconfig(workdir / "operator-kubeconfig", user=operator_user)
        async with StubMasters() as stubs:
            # Each listing is work for the API server the figures measure: seldom enough.
            following = asyncio.create_task(follow(stubs, kube.url, interval=2.0))
            print(f"fakekube listening on {kube.url}", flush=True)
            loop = asyncio.get_running_loop()
            while line := await loop.run_in_executor(None, sys.stdin.readline):
                if line.strip() == "requests":
                    counts = Counter(
                        f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"
                        for r in kube.requests
                        if r.user == operator_user
                    )
                    print(json.dumps(counts), flush=True)
            following.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", help="the API server's URL")
    parser.add_argument("--token", help="a bearer token (default: none)")
    parser.add_argument(
        "--serve-cluster",
        type=Path,
        metavar="DIR",
        help="instead: serve a fake cluster running the stub image, with stub masters "
        "(kubeconfigs written into DIR; stdin: `requests` prints the operator's request counts)",
    )
    parser.add_argument("--operator-user", default="locust-operator")
    arguments = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        if arguments.serve_cluster:
            asyncio.run(_serve_cluster(arguments.serve_cluster, arguments.operator_user))
        elif arguments.server:
            asyncio.run(_main(arguments.server, arguments.token))
        else:
            parser.error("--server or --serve-cluster is required")
