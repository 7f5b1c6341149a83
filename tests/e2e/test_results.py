"""A test's results, verdict and report, from a real Locust run: what the operator reads from the
master, what it judges, what it keeps.

Three LocustTests run side by side against one target with a fast and a slow endpoint: one whose
thresholds hold, one whose p95 threshold on the slow endpoint is breached, and a long one that
is stopped early because its breached threshold says `abortOnFail`.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import urllib.request
from typing import Any

import pytest

from fakekube.server import TOKEN
from tests.e2e.conftest import FAST_AND_SLOW_LOCUSTFILE, SRC, Cluster, locustfile, locusttest
from tests.integration.conftest import wait_until

pytestmark = pytest.mark.timeout(150)

NAMESPACE = "results"
SLOW_SECONDS = 0.15
PASSING = [
    {"metric": "failRatio", "max": 0.5},
    {"metric": "p95Ms", "max": 5000, "request": "GET /fast"},
]
FAILING = [{"metric": "p95Ms", "max": 50, "request": "GET /slow"}]
ABORTING = [{"metric": "p95Ms", "max": 50, "request": "GET /slow", "abortOnFail": True}]


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    return {"RESULTS_INTERVAL_SECONDS": "1"}


@pytest.fixture(scope="module", autouse=True)
def tests(cluster: Cluster):
    """The three tests, started together as the module begins."""
    cluster.namespace(NAMESPACE)
    target = cluster.target("target", NAMESPACE, delays={"/slow": SLOW_SECONDS})
    cluster.apply(locustfile("results-locustfile", NAMESPACE, FAST_AND_SLOW_LOCUSTFILE))
    for name, run_time, thresholds in (
        ("passing", "8s", PASSING),
        ("failing", "8s", FAILING),
        ("aborted", "10m", ABORTING),
    ):
        test = locusttest(
            name,
            NAMESPACE,
            master_seed=f"--locustfile {SRC}/locustfile.py --host http://target:8080 "
            f"--users 4 --spawn-rate 4 --run-time {run_time}",
            workers=1,
            config_map="results-locustfile",
        )
        test["spec"]["thresholds"] = thresholds
        cluster.apply(test)
    yield
    target.stop()


def final_results(cluster: Cluster, name: str, timeout: float = 60) -> dict[str, Any]:
    """The test's status once its final results are in."""
    return wait_until(
        lambda: (s := cluster.test_status(NAMESPACE, name)).get("results", {}).get("final") and s,
        timeout=timeout,
        what=f"the final results of {NAMESPACE}/{name}",
    )


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status.get("conditions", []) if c["type"] == kind)


def master_stats(cluster: Cluster, name: str) -> dict[str, Any]:
    """The master's own `/stats/requests`, read through the API server's pod proxy."""
    (pod,) = [
        p
        for p in cluster.pods(NAMESPACE, f"{name}-master")
        if p["status"].get("phase") == "Running"
    ]
    url = (
        f"{cluster.kube.url}/api/v1/namespaces/{NAMESPACE}/pods/"
        f"{pod['metadata']['name']}:8089/proxy/stats/requests"
    )
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


def numbers(row: dict[str, Any]) -> tuple[int, int, float]:
    """Requests, failures and the run's average rate of one of the master's rows."""
    return row["num_requests"], row["num_failures"], round(row["total_rps"], 3)


def test_thresholds_that_hold_pass_and_the_results_are_the_masters_final_numbers(
    cluster: Cluster,
):
    status = final_results(cluster, "passing")
    # Read while the master waits out its autoquit window: the run is over, its numbers settled.
    stats = master_stats(cluster, "passing")
    assert stats["state"] == "stopped"
    assert cluster.test_status(NAMESPACE, "passing")["results"] == status["results"]

    results = status["results"]
    *rows, aggregated = stats["stats"]
    assert aggregated["name"] == "Aggregated"
    assert (results["requests"], results["failures"], results["rps"]) == numbers(aggregated)
    assert {
        (e["method"], e["name"]): (e["requests"], e["failures"], e["rps"])
        for e in results["entries"]
    } == {(row["method"], row["name"]): numbers(row) for row in rows}
    assert {(e["method"], e["name"]) for e in results["entries"]} == {
        ("GET", "/fast"),
        ("GET", "/slow"),
    }
    assert results["requests"] > 0
    assert (results["state"], results["workers"]) == ("stopped", stats["worker_count"])
    assert results["failPercent"] == round(100 * results["failures"] / results["requests"], 2)

    assert status["verdict"] == "Passed"
    met = condition(status, "ThresholdsMet")
    assert (met["status"], met["reason"]) == ("True", "ThresholdsPassed")
    available = condition(status, "ResultsAvailable")
    assert (available["status"], available["reason"]) == ("True", "ResultsRead")
    wait_until(
        lambda: "ThresholdsPassed" in cluster.event_reasons(NAMESPACE, "passing"),
        timeout=30,
        what="the verdict's event",
    )


def test_the_report_config_map_holds_locusts_html_report(cluster: Cluster):
    final_results(cluster, "passing")
    config_map = wait_until(
        lambda: cluster.kube.get("v1", "ConfigMap", "passing-report", NAMESPACE),
        timeout=30,
        what="the report ConfigMap",
    )
    html = gzip.decompress(base64.b64decode(config_map["binaryData"]["report.html.gz"]))
    assert html.lstrip().lower().startswith(b"<!doctype html>")
    assert b"Locust" in html
    assert b"/slow" in html and b"/fast" in html  # the run's own requests
    (owner,) = config_map["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("LocustTest", "passing")
    # Events are written off the poller's path, after the ConfigMap.
    wait_until(
        lambda: "ReportSaved" in cluster.event_reasons(NAMESPACE, "passing"), what="ReportSaved"
    )


def test_a_p95_threshold_breached_on_the_slow_endpoint_fails_the_test(cluster: Cluster):
    status = wait_until(
        lambda: (s := cluster.test_status(NAMESPACE, "failing")).get("verdict") and s,
        timeout=60,
        what="the verdict of the failing test",
    )
    assert status["verdict"] == "Failed"
    assert status["results"]["final"] is True
    slow = next(e for e in status["results"]["entries"] if e["name"] == "/slow")
    assert slow["p95Ms"] > 50
    met = condition(status, "ThresholdsMet")
    assert (met["status"], met["reason"]) == ("False", "ThresholdsBreached")
    assert met["message"] == f"p95Ms {slow['p95Ms']:g} > 50 on GET /slow"
    wait_until(
        lambda: "ThresholdsFailed" in cluster.event_reasons(NAMESPACE, "failing"),
        timeout=30,
        what="the verdict's event",
    )


def test_an_abort_on_fail_threshold_stops_a_long_test_early(cluster: Cluster):
    status = wait_until(
        lambda: (
            (s := cluster.test_status(NAMESPACE, "aborted")).get("phase")
            in ("Succeeded", "Failed")
            and s
        ),
        timeout=60,
        what="the aborted test to end (its run time is 10 minutes)",
    )
    finished = {
        job: cluster.wait_for_condition(NAMESPACE, job, timeout=60)["type"]
        for job in ("aborted-master", "aborted-worker")
    }
    assert finished == {"aborted-master": "Failed", "aborted-worker": "Complete"}
    status = cluster.test_status(NAMESPACE, "aborted")
    assert status["verdict"] == "Failed"
    assert status["results"]["final"] is True
    assert condition(status, "ThresholdsMet")["reason"] == "ThresholdsBreached"
    # Stopped by the operator, not by its run time: the master's Job ends failed (its pod was
    # ended), the workers' Job completes (the master told them to quit).
    assert status["phase"] == "Failed"
    (aborted,) = wait_until(
        lambda: [
            e["message"]
            for e in cluster.kube.list("v1", "Event", NAMESPACE)
            if e["involvedObject"]["name"] == "aborted" and e["reason"] == "TestAborted"
        ],
        what="the TestAborted event",
    )
    # The breach as the poll that stopped the test saw it: the final p95 may differ a little.
    assert re.fullmatch(r"Stopped early \(abortOnFail\): p95Ms [0-9.]+ > 50 on GET /slow", aborted)
