"""A LocustTest becomes a real distributed Locust run: operator, fake API server, local kubelet.

What is checked is what a user of a real cluster would see: the target's request counts, the
master's ``/stats/requests``, pod phases, exit codes and messages, Job conditions, the pods' logs,
and that no Locust process outlives its pod.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import API_VERSION, SRC, Cluster, locustfile, locusttest
from tests.integration.conftest import wait_until
from fakekube.sandbox import TargetServer, locust_stats

pytestmark = pytest.mark.timeout(240)

USERS = 4
WORKER_REPORT_SECONDS = 3  # Locust workers send their stats to the master this often
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task(3)
    def home(self):
        self.client.get("/")

    @task
    def item(self):
        self.client.get("/items/42", name="/items/[id]")
"""
BROKEN_LOCUSTFILE = """\
from locust import HttpUser, task


class Visitor(HttpUser)
    @task
    def home(self):
        self.client.get("/")
"""


def final_stats(master_ip: str, timeout: float = 90) -> dict[str, Any]:
    """The master's numbers once its run has ended: it reports ``stopped`` at once, but workers
    send their last samples with their next report (every 3 s), so wait for them to settle."""
    settled: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stats = locust_stats(master_ip)
        except OSError:  # not listening yet
            stats = {}
        if stats.get("state") == "stopped":
            total = stats["stats"][-1]["num_requests"]
            if settled and settled["stats"][-1]["num_requests"] == total:
                return stats
            settled = stats
            time.sleep(WORKER_REPORT_SECONDS + 0.5)
        else:
            time.sleep(0.5)
    raise TimeoutError(f"the master at {master_ip} never settled in the stopped state")


def assert_stopped(pids: list[int]) -> None:
    """Every process is gone (reaped, not a zombie, not orphaned)."""
    assert pids, "expected the kubelet to have started processes"
    wait_until(
        lambda: not any(psutil.pid_exists(pid) for pid in pids),
        timeout=40,
        what=f"processes {pids} to end",
    )


@dataclass
class Run:
    """A LocustTest running in the background, its final numbers caught while the master waits
    out its autoquit window."""

    namespace: str
    name: str
    target: TargetServer
    master_ip: str = ""
    final: dict[str, Any] = field(default_factory=dict)
    target_total_at_stop: int = 0
    pids: list[int] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    def watch(self, cluster: Cluster) -> None:
        try:
            self.master_ip = cluster.running_master_ip(self.namespace, self.name)
            self.final = final_stats(self.master_ip)
            self.target_total_at_stop = self.target.total
            self.pids = [p.pid for p in cluster.processes(self.namespace, self.name)]
        except BaseException as error:  # noqa: BLE001 - reported by the test that reads it
            self.error = repr(error)
        finally:
            self._done.set()

    def result(self) -> Run:
        assert self._done.wait(150), "the run never finished"
        assert not self.error, self.error
        return self

    @property
    def aggregated(self) -> dict[str, Any]:
        return next(row for row in self.final["stats"] if row["name"] == "Aggregated")


@pytest.fixture(scope="module", autouse=True)
def runs(cluster: Cluster) -> dict[str, Run]:
    """Two tests of the same name in two namespaces, started together as the module begins.

    Each loads its own target for a few seconds with two workers; the short tests of this module
    run meanwhile. The two spell their target's Service name in different ways.
    """
    hosts = {
        "team-a": "http://target:8080",
        "team-b": "http://target.team-b.svc.cluster.local:8080",
    }
    started = {}
    for namespace, host in hosts.items():
        cluster.namespace(namespace)
        run = Run(namespace, "load", cluster.target("target", namespace))
        cluster.apply(
            locustfile("load-locustfile", namespace, LOCUSTFILE),
            locusttest(
                "load",
                namespace,
                master_seed=f"--locustfile {SRC}/locustfile.py --host {host} "
                f"--users {USERS} --spawn-rate {USERS} --run-time 6s",
                workers=2,
                config_map="load-locustfile",
            ),
        )
        threading.Thread(target=run.watch, args=(cluster,), daemon=True).start()
        started[namespace] = run
    yield started
    for run in started.values():
        run.target.stop()


def test_a_locustfile_with_a_syntax_error_fails_its_pods_with_the_error(cluster: Cluster) -> None:
    cluster.apply(
        locustfile("broken-locustfile", "default", BROKEN_LOCUSTFILE),
        locusttest(
            "broken",
            "default",
            master_seed=f"--locustfile {SRC}/locustfile.py --host http://127.0.0.1:9 -t 5s",
            workers=2,
            config_map="broken-locustfile",
        ),
    )

    for job in ("broken-master", "broken-worker"):
        condition = cluster.wait_for_condition("default", job, timeout=60)
        assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")
    (master,) = cluster.pods("default", "broken-master")
    assert master["status"]["phase"] == "Failed"
    terminated = master["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (1, "Error")
    assert "SyntaxError: expected ':'" in terminated["message"]
    assert 'File "' in terminated["message"]  # the traceback points at the file and line
    (exporter,) = master["status"]["initContainerStatuses"]
    assert "terminated" in exporter["state"]  # the sidecar stopped with the main container
    # The first failed worker fails the Job (backoffLimit 0), which deletes any other one.
    workers = cluster.pods("default", "broken-worker")
    assert workers
    for worker in workers:
        state = worker["status"]["containerStatuses"][0]["state"]["terminated"]
        assert state["exitCode"] == 1 and "SyntaxError" in state["message"]
    assert_stopped([p.pid for p in cluster.processes("default", "broken-")])
    # The LocustTest says so: Failed, with the pods' reason, and a TestFailed event.
    failed = cluster.wait_for_phase("default", "broken", "Failed")
    conditions = {c["type"]: c for c in failed["conditions"]}
    assert (conditions["TestCompleted"]["status"], conditions["TestCompleted"]["reason"]) == (
        "True", "TestFailed")
    wait_until(lambda: "TestFailed" in cluster.event_reasons("default", "broken"),
               what="a TestFailed event")


def test_a_missing_configmap_fails_the_test_and_names_it(cluster: Cluster) -> None:
    cluster.apply(
        locusttest(
            "orphan",
            "default",
            master_seed=f"--locustfile {SRC}/locustfile.py -t 5s",
            workers=1,
            config_map="never-created",
        )
    )
    # Like a real kubelet, the local one keeps the pods in ContainerCreating (FailedMount).
    failed = cluster.wait_for_phase("default", "orphan", "Failed", timeout=60)
    health = next(c for c in failed["conditions"] if c["type"] == "PodsHealthy")
    assert health["reason"] == "ConfigurationError"
    assert "ConfigMap not found (expected: never-created)" in health["message"]
    assert cluster.processes("default", "orphan-") == []  # nothing ever started
    cluster.kube.delete(API_VERSION, "LocustTest", "orphan", "default")


def test_an_image_that_cannot_be_pulled_fails_the_test(cluster: Cluster) -> None:
    cluster.apply(
        locustfile("unpullable-locustfile", "default", LOCUSTFILE),
        locusttest(
            "unpullable",
            "default",
            master_seed=f"--locustfile {SRC}/locustfile.py -t 5s",
            workers=1,
            config_map="unpullable-locustfile",
            image="registry.invalid/locust:missing",
        ),
    )
    failed = cluster.wait_for_phase("default", "unpullable", "Failed", timeout=60)
    health = next(c for c in failed["conditions"] if c["type"] == "PodsHealthy")
    assert health["reason"] == "ImagePullError"
    assert 'Back-off pulling image "registry.invalid/locust:missing"' in health["message"]
    assert cluster.processes("default", "unpullable-") == []
    cluster.kube.delete(API_VERSION, "LocustTest", "unpullable", "default")


def test_deleting_a_test_mid_run_stops_every_process(cluster: Cluster) -> None:
    target = cluster.target("doomed-target", "default")
    try:
        cluster.apply(
            locustfile("doomed-locustfile", "default", LOCUSTFILE),
            locusttest(
                "doomed",
                "default",
                master_seed=f"--locustfile {SRC}/locustfile.py --host http://doomed-target:8080 "
                "--users 2 --spawn-rate 2 --run-time 10m",
                workers=2,
                config_map="doomed-locustfile",
            ),
        )
        master_ip = cluster.running_master_ip("default", "doomed")
        wait_until(lambda: target.total > 10, timeout=60, what="load on the target")
        pids = [p.pid for p in cluster.processes("default", "doomed-")]
        assert len(pids) == 3
        (master_pod,) = cluster.pods("default", "doomed-master")

        cluster.kube.delete(API_VERSION, "LocustTest", "doomed", "default")

        wait_until(
            lambda: (
                not cluster.job("default", "doomed-master")
                and not cluster.job("default", "doomed-worker")
                and not cluster.kube.get("v1", "Service", "doomed-master", "default")
                and not [
                    p
                    for p in cluster.kube.list("v1", "Pod", "default")
                    if p["metadata"]["name"].startswith("doomed-")
                ]
            ),
            timeout=30,
            what="garbage collection of the test's Service, Jobs and pods",
        )
        assert_stopped(pids)
        with pytest.raises(OSError):
            locust_stats(master_ip, timeout=1)
        # SIGTERM, not SIGKILL: Locust shut down the way it does when a pod is deleted.
        name = master_pod["metadata"]["name"]
        log = (cluster.node / "default" / name / "logs" / "doomed-master.log").read_text()
        assert "Got SIGTERM signal" in log
        # No load after the deletion: that is what assert_stopped showed, as every process that
        # could send it is gone. (Counting the target's requests a while longer would only time
        # how fast it drains the last requests it had already received.)
    finally:
        target.stop()


def test_a_locusttest_runs_a_distributed_load_test(cluster: Cluster, runs: dict[str, Run]) -> None:
    run = runs["team-a"].result()

    # The master waited for both workers before spawning users.
    log = "".join(
        cluster.client.log(
            cluster.pods("team-a", "load-master")[0]["metadata"]["name"], namespace="team-a"
        )
    )
    assert "2 workers connected" in log
    assert (
        f"Sending spawn jobs of {USERS} users at {USERS}.00 spawn rate to 2 ready workers" in log
    )
    assert log.index("2 workers connected") < log.index("Sending spawn jobs")
    # The target saw the requests, and the master counted them, without failures.
    final = run.final
    assert final["worker_count"] == 2
    assert final["errors"] == [] and final["fail_ratio"] == 0
    assert run.aggregated["num_failures"] == 0
    requests = run.aggregated["num_requests"]
    assert requests > 20
    # A request in flight when the users stopped reached the target but was never recorded.
    assert requests <= run.target_total_at_stop <= requests + USERS
    assert {row["name"] for row in final["stats"]} == {"/", "/items/[id]", "Aggregated"}
    assert run.target.requests["/items/42"] > 0

    # Locust quits after its autoquit window; the Jobs complete as Kubernetes defines it.
    for job, pods in (("load-master", 1), ("load-worker", 2)):
        condition = cluster.wait_for_condition("team-a", job)
        assert (condition["type"], condition["reason"]) == ("Complete", "CompletionsReached")
        status = cluster.job("team-a", job)["status"]
        assert status["succeeded"] == pods
        assert "failed" not in status and "active" not in status
        assert status["startTime"] <= status["completionTime"]
    for pod in cluster.pods("team-a", "load-master") + cluster.pods("team-a", "load-worker"):
        assert pod["status"]["phase"] == "Succeeded"
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert_stopped(run.pids)
    # And the LocustTest followed it: Running with both workers, then Succeeded.
    done = cluster.wait_for_phase("team-a", "load", "Succeeded")
    assert done["expectedWorkers"] == 2 and done["startTime"] <= done["completionTime"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in done["conditions"]}
    assert conditions["TestCompleted"] == ("True", "TestSucceeded")
    assert conditions["PodsHealthy"][0] == "True"
    wait_until(lambda: {"TestStarted", "TestCompleted"} <= set(
        cluster.event_reasons("team-a", "load")), what="the phase events")


def test_two_tests_at_once_do_not_interfere(cluster: Cluster, runs: dict[str, Run]) -> None:
    a, b = runs["team-a"].result(), runs["team-b"].result()

    assert a.master_ip != b.master_ip
    for run in (a, b):
        # Each master had its own two workers, and each target only its own test's requests.
        assert run.final["worker_count"] == 2
        requests = run.aggregated["num_requests"]
        assert requests <= run.target_total_at_stop <= requests + USERS
        # Both workers' --master-host=load-master resolved in their own namespace.
        workers = [p for p in cluster.processes(run.namespace, "load-worker")]
        assert len(workers) == 2
        for worker in workers:
            assert f"--master-host={run.master_ip}" in worker.argv
    for namespace in ("team-a", "team-b"):
        for job in ("load-master", "load-worker"):
            assert cluster.wait_for_condition(namespace, job)["type"] == "Complete"
    assert_stopped(a.pids + b.pids)
