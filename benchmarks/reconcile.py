"""Speed and footprint of the operator against the fake API server (figures printed, never asserted).

In one run:
  * start to ready: `locust-operator run` process start until /readyz answers 200;
  * idle resident memory of the operator process (VmRSS), and its peak after the burst (VmHWM);
  * a burst of N LocustTests created at once: seconds until all 3N children exist, next to the raw
    floor, the same 3N creates issued directly with lightkube's async client against the same server
    (same concurrency as the operator's workers, each test's three creates in order), and the ratio;
    and next to the floor of every write the burst makes (the tests themselves, their children,
    Events and first status), which shows the operator's own overhead;
  * p50 / p99 latency from a test's creation (its create call returning) to its third child appearing,
    in the burst and for tests created one at a time on an idle operator, next to the API server's
    round-trip time for one create (a reconcile needs three creates, one after the other).

  * polling: N running tests (the stub image on the fake's kubelet, stub masters answering Locust's
    web API; benchmarks/stub_master.py) read every RESULTS_INTERVAL_SECONDS: the operator's CPU
    seconds and API calls per minute while it polls (from the fake's request log), and the burst
    again while it polls, next to its floor on the same cluster measured while it polls too
    (the polls load the API server as well): the ratio beside the one before polling.

Usage: python benchmarks/reconcile.py [--tests 500] [--workers 16] [--polled 200]
                                      [--results-interval 10] [--poll-window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from lightkube import AsyncClient, Client
from lightkube.codecs import load_all_yaml
from lightkube.config.kubeconfig import KubeConfig
from lightkube.models.core_v1 import ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, Service
from lightkube.types import PatchType

from reconciler.config import OperatorConfig
from reconciler.crds import crd_text
from reconciler.api.types import LocustTestV2
from reconciler.resources import build_children
from reconciler.api.parse import parse
from reconciler.status.phase import initial_status
from fakekube.sandbox import FakeKubeProcess, OperatorProcess, _child_env
from benchmarks.stub_master import STUB_REPOSITORY

OPERATOR_USER = "locust-operator"


def locusttest(name: str, namespace: str) -> dict:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": "locustio/locust:2.47.0",
            "master": {"command": "--locustfile /lotest/src/locustfile.py --users 10 --run-time 1m"},
            "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 2},
            "testFiles": {"configMapRef": "bench-locustfile"},
        },
    }


class StubCluster:
    """benchmarks/stub_master.py --serve-cluster: the fake API server with a kubelet running the
    stub image, and stub masters on its master pods, in a process of their own."""

    def __init__(self, workdir: Path):
        self.kubeconfig = workdir / "kubeconfig"
        self.operator_kubeconfig = workdir / "operator-kubeconfig"
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "stub_master.py"), "--serve-cluster",
             str(workdir), "--operator-user", OPERATOR_USER],
            cwd=ROOT, env=_child_env({}), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError(f"stub cluster did not start: {line!r}")

    def operator_requests(self) -> dict[str, int]:
        """The operator's requests so far, by "verb resource[/subresource]"."""
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write("requests\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def operator_requests_since(self, before: dict[str, int]) -> dict[str, int]:
        """The operator's requests since `before` (an earlier `operator_requests`)."""
        return {k: v - before.get(k, 0) for k, v in self.operator_requests().items()}

    def stop(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()  # ends its command loop, and with it the cluster
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stub_locusttest(name: str, namespace: str) -> dict:
    test = locusttest(name, namespace)
    test["spec"]["image"] = f"{STUB_REPOSITORY}:2.47.0"
    test["spec"]["worker"]["replicas"] = 1  # one sleeping worker process per test is enough
    return test


async def polled_tests(config: KubeConfig, namespace: str, count: int, timeout: float) -> float:
    """Create `count` stub tests; seconds until every one has status.results."""
    async with AsyncClient(config=config, field_manager="bench") as client:
        start = time.perf_counter()
        limit = asyncio.Semaphore(32)

        async def create(index: int) -> None:
            async with limit:
                document = stub_locusttest(f"polled-{index:04d}", namespace)
                await client.create(LocustTestV2.from_dict(document))

        await asyncio.gather(*(create(i) for i in range(count)))
        while True:
            tests = [t async for t in client.list(LocustTestV2, namespace=namespace)]
            if sum(1 for t in tests if (t.status or {}).get("results")) >= count:
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"not every polled test had results after {timeout:.0f}s")
            await asyncio.sleep(1.0)


def prepared_cluster(config: KubeConfig, namespaces: tuple[str, ...]) -> Client:
    """A client of the cluster, once the CRD and `namespaces` exist."""
    client = Client(config=config, field_manager="bench")
    for crd in load_all_yaml(crd_text()):
        client.create(crd)
    for namespace in namespaces:
        client.create(Namespace(metadata=ObjectMeta(name=namespace)))
    return client


def polling(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """The polling figures (see the module's docstring)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = StubCluster(workdir)
    operator = None
    try:
        config = KubeConfig.from_file(cluster.kubeconfig)
        client = prepared_cluster(config, ("polled", "quiet", "burst", "floor", "floor-polled"))
        # The stub pods mount the test's files as a real Locust pod does.
        client.create(ConfigMap(metadata=ObjectMeta(name="bench-locustfile", namespace="polled"),
                                data={"locustfile.py": "# the stub image runs no Locust\n"}))
        time.sleep(0.2)
        operator = OperatorProcess(
            cluster.operator_kubeconfig, workdir / "operator.log",
            env={"MAX_CONCURRENT_RECONCILES": str(args.workers), "LOG_LEVEL": "WARNING",
                 "WATCH_NAMESPACES": "polled,quiet,burst",
                 "RESULTS_INTERVAL_SECONDS": str(args.results_interval)},
        )
        operator.wait_ready()
        floor = asyncio.run(raw_floor(config, "floor", args.tests, args.workers))
        quiet, _ = asyncio.run(burst(config, "quiet", args.tests))  # before any test is polled
        to_results = asyncio.run(polled_tests(config, "polled", args.polled,
                                              timeout=60 + 3 * args.results_interval))
        time.sleep(args.results_interval)  # past the first polls' jitter: the steady state
        requests_before, cpu_before = cluster.operator_requests(), cpu_seconds(operator.proc.pid)
        window_start = time.perf_counter()
        time.sleep(args.poll_window)
        window = time.perf_counter() - window_start
        cpu = cpu_seconds(operator.proc.pid) - cpu_before
        calls = cluster.operator_requests_since(requests_before)
        # The API server is loaded by the polls too: the floor under the same load tells the
        # operator's slowdown from the server's.
        floor_polled = asyncio.run(raw_floor(config, "floor-polled", args.tests, args.workers))
        before_burst = cluster.operator_requests()
        elapsed, _ = asyncio.run(burst(config, "burst", args.tests))
        in_burst = cluster.operator_requests_since(before_burst)
    finally:
        if operator:
            operator.stop()
        cluster.stop()
    per_minute = 60 / window
    return {
        "to_results": to_results,
        "window": window,
        "cpu_per_minute": cpu * per_minute,
        "calls_per_minute": sum(calls.values()) * per_minute,
        "proxy_per_minute": calls.get("get pods/proxy", 0) * per_minute,
        "status_per_minute": calls.get("patch locusttests/status", 0) * per_minute,
        "burst": elapsed,
        "quiet": quiet,
        "floor": floor,
        "floor_polled": floor_polled,
        "proxy_in_burst": in_burst.get("get pods/proxy", 0),
    }


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


class ChildTracker:
    """Watches Services and Jobs in a namespace and notes when each test has all three children."""

    def __init__(self, client: AsyncClient, namespace: str):
        self._client = client
        self._namespace = namespace
        self._counts: dict[str, int] = {}
        self.complete_at: dict[str, float] = {}
        self.changed = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def __aenter__(self) -> ChildTracker:
        self._tasks = [asyncio.create_task(self._watch(r)) for r in (Service, Job)]
        await asyncio.sleep(0.3)  # both watches are open before the first test exists
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, resource) -> None:
        async for change, obj in self._client.watch(resource, namespace=self._namespace):
            if change != "ADDED":
                continue
            test = obj.metadata.labels["performance-test-name"]
            self._counts[test] = self._counts.get(test, 0) + 1
            if self._counts[test] == 3:
                self.complete_at[test] = time.perf_counter()
                self.changed.set()

    async def wait_for(self, count: int, timeout: float = 600) -> None:
        async def wait() -> None:
            while len(self.complete_at) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


async def burst(config: KubeConfig, namespace: str, count: int) -> tuple[float, list[float]]:
    """Create `count` LocustTests at once; return (seconds to all children, per-test latencies)."""
    created_at: dict[str, float] = {}
    async with AsyncClient(config=config, field_manager="bench") as client:
        async with ChildTracker(client, namespace) as tracker:
            start = time.perf_counter()
            limit = asyncio.Semaphore(64)

            async def create(index: int) -> None:
                name = f"burst-{index:04d}"
                async with limit:
                    await client.create(LocustTestV2.from_dict(locusttest(name, namespace)))
                created_at[name] = time.perf_counter()

            await asyncio.gather(*(create(i) for i in range(count)))
            await tracker.wait_for(count)
            elapsed = time.perf_counter() - start
    latencies = sorted(tracker.complete_at[name] - created_at[name] for name in created_at)
    return elapsed, latencies


async def one_at_a_time(config: KubeConfig, namespace: str, count: int) -> tuple[list[float], float]:
    """Latencies of tests created one by one on an idle operator, and one create's round trip."""
    latencies = []
    async with AsyncClient(config=config, field_manager="bench") as client:
        async with ChildTracker(client, namespace) as tracker:
            for index in range(count):
                name = f"single-{index:03d}"
                await client.create(LocustTestV2.from_dict(locusttest(name, namespace)))
                created = time.perf_counter()
                await tracker.wait_for(index + 1)
                latencies.append(tracker.complete_at[name] - created)
        round_trips = []
        for index in range(30):
            started = time.perf_counter()
            await client.create(Namespace(metadata=ObjectMeta(name=f"rtt-{index}")))
            round_trips.append(time.perf_counter() - started)
    return sorted(latencies), statistics.median(round_trips)


async def raw_floor(config: KubeConfig, namespace: str, count: int, workers: int) -> float:
    """The same 3*count creates, straight from lightkube, each test's three in order."""
    operator_config = OperatorConfig.from_env({})
    plans = [build_children(parse(locusttest(f"floor-{i:04d}", namespace)), operator_config)
             for i in range(count)]
    async with AsyncClient(config=config, field_manager="bench") as client:
        queue: asyncio.Queue = asyncio.Queue()
        for plan in plans:
            queue.put_nowait(plan)

        async def worker() -> None:
            while not queue.empty():
                for obj in queue.get_nowait():
                    await client.create(obj, namespace=namespace)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - start


async def full_floor(config: KubeConfig, namespace: str, count: int, workers: int) -> float:
    """Every write the burst puts on the server, straight from lightkube: per test the LocustTest,
    its three children, their three Created Events and one status patch, in that order."""
    operator_config = OperatorConfig.from_env({})
    tests = [locusttest(f"full-{i:04d}", namespace) for i in range(count)]
    now = datetime.now(timezone.utc)
    async with AsyncClient(config=config, field_manager="bench") as client:
        queue: asyncio.Queue = asyncio.Queue()
        for test in tests:
            queue.put_nowait(test)

        async def worker() -> None:
            while not queue.empty():
                document = queue.get_nowait()
                created = await client.create(LocustTestV2.from_dict(document))
                spec = parse({**document, "metadata": created.metadata.to_dict()})
                for child in build_children(spec, operator_config):
                    await client.create(child, namespace=namespace)
                    await client.create(Event(
                        metadata=ObjectMeta(generateName=f"{spec.name}.", namespace=namespace),
                        involvedObject=ObjectReference(kind="LocustTest", name=spec.name,
                                                       namespace=namespace),
                        type="Normal", reason="Created",
                        message=f"Created {child.kind} {child.metadata.name}", count=1,
                        firstTimestamp=now, lastTimestamp=now))
                await client.patch(LocustTestV2.Status, spec.name,
                                   {"status": initial_status(2, 1, now)}, namespace=namespace,
                                   patch_type=PatchType.MERGE)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(workers)))
        return time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--polled", type=int, default=200, help="running tests polled (0: skip)")
    parser.add_argument("--results-interval", type=float, default=10.0)
    parser.add_argument("--poll-window", type=float, default=20.0,
                        help="seconds of polling measured (scaled to per minute)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="locust-operator-bench-") as tmp:
        workdir = Path(tmp)
        cluster = FakeKubeProcess(workdir)
        operator = None
        try:
            config = KubeConfig.from_file(cluster.kubeconfig)
            prepared_cluster(config, ("burst", "floor", "full", "single"))
            time.sleep(0.2)

            operator = OperatorProcess(
                cluster.kubeconfig, workdir / "operator.log",
                env={"MAX_CONCURRENT_RECONCILES": str(args.workers), "LOG_LEVEL": "WARNING",
                     # the floors' namespaces are left alone, as if another operator owned them
                     "WATCH_NAMESPACES": "burst,single"},
            )
            ready = operator.wait_ready()
            time.sleep(2.0)
            idle_rss = rss_kib(operator.proc.pid)

            single, round_trip = asyncio.run(one_at_a_time(config, "single", 30))
            time.sleep(1.0)  # the single tests' Events are written before the floor starts
            # The floor runs while the operator is idle (it watches LocustTests; the floor creates
            # none), so nothing else competes with it for the API server.
            floor = asyncio.run(raw_floor(config, "floor", args.tests, args.workers))
            full = asyncio.run(full_floor(config, "full", args.tests, args.workers))
            cpu_before = cpu_seconds(operator.proc.pid)
            elapsed, latencies = asyncio.run(burst(config, "burst", args.tests))
            burst_cpu = cpu_seconds(operator.proc.pid) - cpu_before
            peak_rss = rss_kib(operator.proc.pid, "VmHWM")
        finally:
            code = operator.stop() if operator else None
            cluster.stop()
        polled = polling(args, workdir / "polling") if args.polled else None

    children = 3 * args.tests
    print(f"locust-operator benchmark (fake API server in its own process; {args.workers} workers)")
    print(f"  start to ready                     {ready:8.3f} s")
    print(f"  idle resident memory               {idle_rss / 1024:8.1f} MiB")
    print(f"  peak resident memory (after burst) {peak_rss / 1024:8.1f} MiB")
    print(f"  burst: {args.tests} LocustTests -> {children} children")
    print(f"    operator, all children exist     {elapsed:8.3f} s  ({children / elapsed:,.0f} objects/s)")
    print(f"    raw floor, {children} direct creates {floor:8.3f} s  ({children / floor:,.0f} objects/s)")
    print(f"    ratio operator / floor           {elapsed / floor:8.2f}")
    print(f"    operator CPU time in the burst   {burst_cpu:8.3f} s")
    print(f"    floor of every write of the burst {full:7.3f} s  (test, 3 children, 3 Events, "
          f"status)")
    print(f"    ratio operator / that floor      {elapsed / full:8.2f}")
    print(f"  creation to all three children     p50 {percentile(latencies, 50) * 1000:7.1f} ms"
          f"   p99 {percentile(latencies, 99) * 1000:7.1f} ms")
    print(f"  one test at a time, idle operator  p50 {percentile(single, 50) * 1000:7.1f} ms"
          f"   p99 {percentile(single, 99) * 1000:7.1f} ms"
          f"   (one create round trip: {round_trip * 1000:.1f} ms)")
    print(f"  operator exit code after SIGTERM   {code}")
    if polled:
        print(f"  polling {args.polled} running tests (stub masters), RESULTS_INTERVAL_SECONDS="
              f"{args.results_interval:g}, measured over {polled['window']:.0f} s")
        print(f"    creation to every test's first results {polled['to_results']:6.1f} s")
        print(f"    operator CPU                     {polled['cpu_per_minute']:8.2f} s per minute")
        print(f"    operator API calls               {polled['calls_per_minute']:8.0f} per minute"
              f"  ({polled['proxy_per_minute']:.0f} pod-proxy GETs, "
              f"{polled['status_per_minute']:.0f} status patches)")
        print(f"    on this cluster (its Jobs get pods), before polling: raw floor "
              f"{polled['floor']:.3f} s, burst {polled['quiet']:.3f} s")
        print(f"                              while polling: raw floor "
              f"{polled['floor_polled']:.3f} s, burst {polled['burst']:.3f} s "
              f"({polled['proxy_in_burst']} pod-proxy GETs during it)")
        print(f"    ratio operator / floor, polling  {polled['burst'] / polled['floor_polled']:8.2f}"
              f"   (before polling: {polled['quiet'] / polled['floor']:.2f}; on the first "
              f"cluster: {elapsed / floor:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
