"""The demo: a LocustTest becomes a real distributed Locust run, on one machine.

Starts the built-in fake Kubernetes API server with its Job controller and local kubelet (which runs
the pods of Jobs as real Locust processes), installs the CRD (as `locust-operator crd | kubectl
apply -f -` would), starts `locust-operator run` against it through an ordinary kubeconfig, serves a
small HTTP server as the system under test behind the Service `target`, and applies everything in
examples/. Then it follows the test: its pods and its phase as they change, the operator's Service
and Jobs, the workers connecting to the master, a live progress line from the test's
`status.results` (the operator reads the master's /stats/requests every 2 s here), the final
results and the verdict on the demo's thresholds, Locust's HTML report from the ConfigMap the
operator keeps it in (written to .demo/report.html), the Jobs' final state once Locust has quit,
and the test's Events. Then it stops everything.
"""

from __future__ import annotations

import base64
import gzip
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import httpx2
from lightkube import ApiError, Client
from lightkube.codecs import from_dict, load_all_yaml
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Pod, Service

from reconciler.crds import crd_text
from reconciler.api.types import LocustTestV2  # also lets lightkube's codecs load LocustTests
from fakekube.sandbox import FakeKubeProcess, OperatorProcess, TargetServer

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
DASHBOARD = ROOT / "src" / "grafana_dashboards" / "locust-operator.json"

LIVE = sys.stdout.isatty()
REPORT = ROOT / ".demo" / "report.html"
# How often the operator reads a running test's numbers (10 s by default): often enough here to
# follow the short demo run, and to read its final numbers within the master's autoquit window.
RESULTS_INTERVAL_SECONDS = 2
# The demo judges its test (as examples/thresholds/ shows): the verdict comes from the final
# numbers; the example file itself stays as the README quotes it.
THRESHOLDS = [
    {"metric": "failRatio", "max": 0.01},
    {"metric": "p95Ms", "max": 500, "request": "GET /"},
]


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="locust-operator-demo-") as tmp:
        workdir = Path(tmp)
        print(
            "Starting the fake Kubernetes cluster (API server, Job controller, local kubelet) ..."
        )
        cluster = FakeKubeProcess(
            workdir,
            "--job-controller",
            "auto",
            "--kubelet",
            "local",
            "--kubelet-dir",
            str(workdir / "node"),
        )
        operator = None
        target = None
        try:
            client = Client(config=KubeConfig.from_file(cluster.kubeconfig), field_manager="demo")
            for crd in load_all_yaml(crd_text()):
                client.create(crd)
            _wait(lambda: _established(client), "the CRD to be established")
            print(f"  {cluster.url}  (CRD locusttests.locust.io installed)")

            print("Starting `locust-operator run` ...")
            operator = OperatorProcess(
                cluster.kubeconfig,
                workdir / "operator.log",
                {"RESULTS_INTERVAL_SECONDS": str(RESULTS_INTERVAL_SECONDS)},
            )
            seconds = operator.wait_ready()
            print(f"  ready in {seconds:.2f}s (/readyz on port {operator.health_port})")

            target = TargetServer()
            for obj in target.service_manifests("target", "default"):
                client.create(from_dict(obj))
            print(f"Serving the system under test at {target.url}, as the Service `target`")
            print("  (a Service without a selector and an EndpointSlice, as for any backend")
            print("  outside a cluster; on a real cluster `target` is your application)")

            print("Applying examples/ ...")
            tests = []
            for path in sorted((ROOT / "examples").glob("*.yaml")):
                for obj in load_all_yaml(path.read_text(), create_resources_for_crds=True):
                    if obj.kind == "LocustTest":
                        obj.spec["thresholds"] = THRESHOLDS
                    client.create(obj)
                    print(f"  {obj.kind.lower()}/{obj.metadata.name} created")
                    if obj.kind == "LocustTest":
                        tests.append(obj)
                        shown = ", ".join(_threshold(t) for t in THRESHOLDS)
                        print(f"    with the demo's thresholds: {shown}")
            for test in tests:
                _wait(
                    lambda t=test: _children_exist(client, t),
                    f"the children of {test.metadata.name}",
                )
            print()
            for test in tests:
                _summary(client, cluster.url, test)
                _follow(client, cluster.url, test.metadata.name,
                        test.metadata.namespace or "default", target)
        finally:
            code = operator.stop() if operator else None
            cluster.stop()
            if target is not None:
                target.stop()
        print("Operator log:")
        for line in operator.log().splitlines():
            print(f"  {line}")
        print(f"\nOperator stopped with exit code {code} after SIGTERM; fake cluster stopped")
        print("(its kubelet stops any Locust process still running).")
        query = urllib.parse.quote("rate(locusttest_requests_total[1m])")
        print(f"\nPrometheus scrapes the operator's /metrics (port {operator.metrics_port} here, "
              f"8080 in the charm); query: http://<prometheus>:9090/graph?g0.expr={query}")
        print(f"Grafana dashboard: {DASHBOARD.relative_to(ROOT)} (given to Grafana by the charm)")
        return 0 if code == 0 else 1


# --- Following a run ----------------------------------------------------------------------------


def _follow(client: Client, api: str, name: str, namespace: str, target: TargetServer) -> None:
    """Pods and phase changes, workers connecting, live progress, final numbers, the Jobs' final
    state, the test's Events."""
    prefix = name.replace(".", "-")
    pods = _PodWatch(client, namespace, name)
    print("Pods (the local kubelet runs each as a Locust process on its own loopback address)")
    print("and the test, as they change:")
    master_ip = _wait(lambda: pods.poll() or pods.master_ip(prefix), "the master pod", 60)
    master_log = _LogWatch(client, namespace, pods.master_name(prefix))
    print(f"\nMaster at {master_ip}: waiting for its workers (--expect-workers)")
    progress = _Progress()
    results: dict[str, Any] = {}
    while not results.get("final"):
        pods.poll()
        # Worker connections until the users are spawned, then only the end of the run.
        spawned = bool(results)
        master_log.poll(("run-time limit",) if spawned else ("workers connected", "spawn jobs"))
        status = _status(client, name, namespace)
        results = status.get("results") or {}
        if results and not results.get("final"):
            progress.show(results)
        if status.get("phase") in ("Succeeded", "Failed") and not results.get("final"):
            break  # the test ended without its final numbers (the status says why)
        if progress.elapsed > 90:
            raise TimeoutError("the test did not finish within 90 s")
        time.sleep(1)
    master_log.poll(("run-time limit",))
    if results:
        progress.show(results, final=True)
    stopped_at = time.monotonic()
    status = _status(client, name, namespace)
    _final_results(status, target)
    _report(client, name, namespace)

    autoquit = _autoquit_seconds(client, f"{prefix}-master", namespace)
    print(f"\nLocust keeps its web UI and stats up for `--autoquit {autoquit}` after the run,")
    print("then quits; the workers follow it, and the Jobs complete:")
    jobs = [f"{prefix}-master", f"{prefix}-worker"]
    deadline = time.monotonic() + autoquit + 30
    while not all(_job_condition(client, job, namespace) for job in jobs):
        pods.poll()
        if LIVE:
            left = max(0, autoquit - int(time.monotonic() - stopped_at))
            print(f"\r  waiting for Locust to quit ... ~{left}s ", end="", flush=True)
        if time.monotonic() > deadline:
            raise TimeoutError("the Jobs did not finish")
        time.sleep(1)
    if LIVE:
        print("\r" + " " * 50 + "\r", end="")
    pods.poll()
    print()
    _wait(lambda: client.get(LocustTestV2, name, namespace=namespace).status.get("phase")
          in ("Succeeded", "Failed"), f"{name} to finish")
    _final_state(client, api, namespace, jobs, pods)
    _events(client, name, namespace)


class _Progress:
    """One progress line: rewritten in place on a terminal, every 5 s otherwise (logs, CI)."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._printed = -5.0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def show(self, results: dict[str, Any], final: bool = False) -> None:
        line = (
            f"  {results.get('state', '?'):<8} users {results.get('users', 0):>3}   "
            f"{results.get('rps', 0.0):6.1f} req/s   "
            f"requests {results.get('requests', 0):>5}   failures {results.get('failures', 0)}   "
            f"workers {results.get('workers', 0)}   {self.elapsed:4.0f}s"
        )
        if LIVE:
            print("\r" + line, end="\n" if final else "", flush=True)
        elif final or self.elapsed - self._printed >= 5:
            self._printed = self.elapsed
            print(line, flush=True)


def _autoquit_seconds(client: Client, job: str, namespace: str) -> int:
    """The master's `--autoquit N`, as the operator wrote it into the Job."""
    args = client.get(Job, job, namespace=namespace).spec.template.spec.containers[0].args
    return int(args[args.index("--autoquit") + 1])


def _status(client: Client, name: str, namespace: str) -> dict[str, Any]:
    return client.get(LocustTestV2, name, namespace=namespace).status or {}


def _threshold(threshold: dict[str, Any]) -> str:
    bound = f"max {threshold['max']}" if "max" in threshold else f"min {threshold['min']}"
    return f"{threshold['metric']} {bound} on {threshold.get('request', 'Aggregated')}"


def _final_results(status: dict[str, Any], target: TargetServer) -> None:
    """The test's final `status.results`, its verdict and why, as the operator wrote them."""
    results = status.get("results") or {}
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    if not results.get("final"):
        available = conditions.get("ResultsAvailable", {})
        print(f"\nNo final results: {available.get('message', 'none read')}")
    else:
        print("\nFinal results, from the test's status.results (read by the operator):")
        rows = [["NAME", "REQUESTS", "FAILURES", "AVG MS", "P50 MS", "P95 MS", "REQ/S"]]
        for entry in [*results.get("entries", []), {**results, "name": "Aggregated"}]:
            rows.append(
                [
                    f"{entry.get('method', '')} {entry['name']}".strip(),
                    str(entry["requests"]),
                    str(entry["failures"]),
                    f"{entry['avgMs']:.1f}",
                    str(entry["p50Ms"]),
                    str(entry.get("p95Ms", "-")),
                    f"{entry['rps']:.1f}",
                ]
            )
        _table(rows)
        print(f"  workers {results['workers']}   fail ratio {results['failPercent']}%")
    paths = ", ".join(f"{path} {count}" for path, count in sorted(target.requests.items()))
    print(f"  the target counted {target.total} requests ({paths})")
    met = conditions.get("ThresholdsMet", {})
    print(f"\nVerdict: {status.get('verdict', '-')}   ({met.get('reason')}: {met.get('message')})")


def _report(client: Client, name: str, namespace: str) -> None:
    """Locust's HTML report, from the ConfigMap the operator saved it in."""
    try:
        config_map = _wait(
            lambda: _config_map(client, f"{name}-report", namespace), "the report", 30
        )
    except TimeoutError:
        print("  no report ConfigMap (the test's Events say why)")
        return
    html = gzip.decompress(base64.b64decode(config_map.binaryData["report.html.gz"]))
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_bytes(html)
    print(f"Locust's HTML report (ConfigMap {name}-report): {REPORT.relative_to(ROOT)}")


def _config_map(client: Client, name: str, namespace: str) -> ConfigMap | None:
    try:
        return client.get(ConfigMap, name, namespace=namespace)
    except ApiError:
        return None


def _final_state(
    client: Client, api: str, namespace: str, jobs: list[str], pods: _PodWatch
) -> None:
    print(f"$ kubectl get lotest -o wide -n {namespace}; kubectl get jobs,pods -n {namespace}")
    _get_lotest(api, namespace, wide=True)
    rows = [["JOB", "STATUS", "SUCCEEDED", "FAILED", "DURATION"]]
    for name in jobs:
        job = client.get(Job, name, namespace=namespace)
        condition = _job_condition(client, name, namespace)
        status = job.status
        duration = "-"
        if status.startTime and status.completionTime:
            duration = f"{int((status.completionTime - status.startTime).total_seconds())}s"
        rows.append(
            [
                f"job/{name}",
                condition or "Running",
                str(status.succeeded or 0),
                str(status.failed or 0),
                duration,
            ]
        )
    _table(rows)
    rows = [["POD", "PHASE", "IP", "CONTAINERS (exit code, reason)"]]
    for pod in pods.pods():
        states = []
        for container in (pod.status.initContainerStatuses or []) + (
            pod.status.containerStatuses or []
        ):
            terminated = container.state.terminated if container.state else None
            if terminated:
                states.append(f"{container.name}: {terminated.exitCode} {terminated.reason}")
            else:
                states.append(f"{container.name}: running")
        rows.append(
            [
                f"pod/{pod.metadata.name}",
                pod.status.phase,
                pod.status.podIP or "-",
                "; ".join(states),
            ]
        )
    _table(rows)


def _events(client: Client, name: str, namespace: str) -> None:
    """The test's Events, as `kubectl describe lotest` ends with them."""
    print(f"$ kubectl describe lotest {name} -n {namespace}   (its Events)")
    events = [
        e
        for e in client.list(Event, namespace=namespace)
        if e.involvedObject.kind == "LocustTest" and e.involvedObject.name == name
    ]
    events.sort(key=lambda e: (e.firstTimestamp or e.eventTime or 0, e.metadata.name))
    rows = [["TYPE", "REASON", "COUNT", "MESSAGE"]]
    rows += [[e.type or "", e.reason or "", str(e.count or 1), e.message or ""] for e in events]
    _table(rows)


def _job_condition(client: Client, name: str, namespace: str) -> str | None:
    try:
        job = client.get(Job, name, namespace=namespace)
    except ApiError:
        return None
    conditions = (job.status.conditions if job.status else None) or []
    return next(
        (c.type for c in conditions if c.type in ("Complete", "Failed") and c.status == "True"),
        None,
    )


class _PodWatch:
    """Prints each pod of the test when its phase changes, and the test when its phase or
    connected workers change, like `kubectl get pods,lotest -w`."""

    def __init__(self, client: Client, namespace: str, test: str):
        self._client = client
        self._namespace = namespace
        self._test = test
        self._labels = {"performance-test-name": test}
        self._phases: dict[str, str] = {}
        self._test_state: tuple[Any, ...] | None = None

    def pods(self) -> list[Pod]:
        return sorted(
            self._client.list(Pod, namespace=self._namespace, labels=self._labels),
            key=lambda pod: pod.metadata.name,
        )

    def poll(self) -> None:
        # The test is read before its pods, and printed after them: a test shown Running had
        # its master pod running already.
        status = self._client.get(LocustTestV2, self._test, namespace=self._namespace).status or {}
        for pod in self.pods():
            phase = pod.status.phase if pod.status else "Pending"
            if self._phases.get(pod.metadata.name) != phase:
                self._phases[pod.metadata.name] = phase
                address = pod.status.podIP if pod.status and pod.status.podIP else ""
                line = f"  pod/{pod.metadata.name:<28} {phase:<10} {address}"
                print(("\r" if LIVE else "") + line.ljust(100).rstrip(), flush=True)
        state = (
            status.get("phase"),
            status.get("connectedWorkers", 0),
            status.get("expectedWorkers", "?"),
        )
        if state != self._test_state:
            self._test_state = state
            phase, connected, expected = state
            shown = f"{phase:<10} workers {connected}/{expected}" if phase else "(no status yet)"
            line = f"  lotest/{self._test:<25} {shown}"
            print(("\r" if LIVE else "") + line.ljust(100).rstrip(), flush=True)

    def master_name(self, prefix: str) -> str:
        return next(
            pod.metadata.name
            for pod in self.pods()
            if pod.metadata.name.startswith(f"{prefix}-master-")
        )

    def master_ip(self, prefix: str) -> str | None:
        for pod in self.pods():
            if pod.metadata.name.startswith(f"{prefix}-master-") and pod.status.phase == "Running":
                return pod.status.podIP
        return None


class _LogWatch:
    """Prints the new lines of a pod's log (the pods/log subresource) that mention any of a few
    phrases, without their timestamp and logger prefix."""

    def __init__(self, client: Client, namespace: str, pod: str):
        self._client = client
        self._namespace = namespace
        self._pod = pod
        self._seen = 0

    def poll(self, phrases: tuple[str, ...]) -> None:
        try:
            lines = list(self._client.log(self._pod, namespace=self._namespace))
        except ApiError:
            return
        for line in lines[self._seen :]:
            if any(phrase in line for phrase in phrases):
                message = line.split(": ", 1)[-1].rstrip()
                print(("\r" if LIVE else "") + f"  master: {message}".ljust(100).rstrip())
        self._seen = len(lines)


# --- Setup helpers and tables -------------------------------------------------------------------


def _wait(condition: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


def _established(client: Client) -> bool:
    crd = client.get(CustomResourceDefinition, "locusttests.locust.io")
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _children_exist(client: Client, test) -> bool:
    prefix = test.metadata.name.replace(".", "-")
    namespace = test.metadata.namespace or "default"
    names = {s.metadata.name for s in client.list(Service, namespace=namespace)}
    names |= {f"job/{j.metadata.name}" for j in client.list(Job, namespace=namespace)}
    return {f"{prefix}-master", f"job/{prefix}-master", f"job/{prefix}-worker"} <= names


def _age(created) -> str:
    seconds = int((datetime.now(timezone.utc) - created).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()


def _get_lotest(api: str, namespace: str, wide: bool = False) -> None:
    """`kubectl get lotest` (`-o wide`): the CRD's printer columns, as the API server renders
    them."""
    url = f"{api}/apis/locust.io/v2/namespaces/{namespace}/locusttests"
    table = httpx2.get(url, headers={"Accept": TABLE}).json()
    limit = 1 if wide else 0
    columns = [
        c["name"].upper() for c in table["columnDefinitions"] if c.get("priority", 0) <= limit
    ]
    rows = [[str(cell) for cell, c in zip(row["cells"], table["columnDefinitions"])
             if c.get("priority", 0) <= limit] for row in table["rows"]]
    _table([columns, *rows])


def _summary(client: Client, api: str, created) -> None:
    name, namespace = created.metadata.name, created.metadata.namespace or "default"
    print(f"$ kubectl get lotest,svc,jobs -n {namespace}")
    _get_lotest(api, namespace)
    prefix = name.replace(".", "-")
    service = client.get(Service, f"{prefix}-master", namespace=namespace)
    ports = ",".join(f"{p.port}/{p.protocol}" for p in service.spec.ports)
    _table(
        [
            ["SERVICE", "TYPE", "CLUSTER-IP", "PORTS", "OWNER"],
            [
                service.metadata.name,
                service.spec.type or "ClusterIP",
                service.spec.clusterIP or "-",
                ports,
                _owner(service),
            ],
        ]
    )
    rows = [["JOB", "PARALLELISM", "COMPLETIONS", "BACKOFF-LIMIT", "OWNER"]]
    for role in ("master", "worker"):
        job = client.get(Job, f"{prefix}-{role}", namespace=namespace)
        rows.append(
            [
                job.metadata.name,
                str(job.spec.parallelism),
                str(job.spec.completions or "-"),
                str(job.spec.backoffLimit),
                _owner(job),
            ]
        )
    _table(rows)
    master = client.get(Job, f"{prefix}-master", namespace=namespace)
    container = master.spec.template.spec.containers[0]
    print(f"  master args: {' '.join(container.args)}")
    worker = client.get(Job, f"{prefix}-worker", namespace=namespace)
    print(f"  worker args: {' '.join(worker.spec.template.spec.containers[0].args)}")
    print()


def _owner(obj) -> str:
    owners = obj.metadata.ownerReferences or []
    return ", ".join(f"{o.kind}/{o.name}" for o in owners) or "-"


if __name__ == "__main__":
    sys.exit(main())
