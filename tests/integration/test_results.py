"""The results poller through the operator: `locust-operator run`, as its ServiceAccount under the
charm's RBAC, against a cluster whose kubelet runs the stub image, with stub Locust masters
answering on the master pods' addresses (benchmarks/stub_master.py).

What a user sees: `status.results`, the verdict and its conditions and events, the report
ConfigMap, the operator's `/metrics`, and what the operator does to a master (POST /stop, its
pod deleted)."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import signal
import threading
import urllib.request
from collections.abc import Coroutine, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from lightkube import ApiError, Client
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Pod
from lightkube.types import PatchType

from benchmarks.stub_master import STUB_REPOSITORY, StubMasters, follow, stub_images
from fakekube import FakeKube, KubeletSettings
from fakekube.server import TOKEN
from reconciler.api.types import LocustTestV2
from reconciler.status.results import parse_stats

from .conftest import wait_until
from .objects import conditions, create, locusttest, locusttest_v1, reasons, status
from .test_conversion import webhook  # noqa: F401  (the v1 test is served through it)

STUB_IMAGE = f"{STUB_REPOSITORY}:2.47.0"
OPERATOR_ENV = {"RESULTS_INTERVAL_SECONDS": "1"}


@pytest.fixture
def fakekube(tmp_path: Path) -> Iterator[FakeKube]:
    """The conftest's cluster (RBAC, the CRD, the operator's role), with a kubelet that runs the
    stub image and a short pod-proxy timeout."""
    settings = KubeletSettings(root=tmp_path / "node", images=stub_images())
    with FakeKube(authorization="RBAC", kubelet=settings, proxy_timeout=1) as kube:
        kube.jobs.auto = True
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "scripts", "namespace": "default"},
                "data": {"locustfile.py": "# the stub image runs no Locust\n"},
            }
        )
        yield kube


class Stubs:
    """Stub masters on every Running master pod, served from a thread of their own."""

    def __init__(self, kube: FakeKube):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.masters: StubMasters = self.call(StubMasters().start())
        self._following = asyncio.run_coroutine_threadsafe(
            follow(self.masters, kube.url, TOKEN, interval=0.05), self._loop
        )

    def call(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def close(self) -> None:
        self._following.cancel()
        self.call(self.masters.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def ask(self, address: str, method: str, path: str) -> bytes:
        """What the stub answers to anyone (the test, here) at `address`."""
        request = urllib.request.Request(f"http://{address}:8089{path}", method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read()


@pytest.fixture
def stubs(cluster: FakeKube) -> Iterator[Stubs]:
    stubs = Stubs(cluster)
    yield stubs
    stubs.close()


def stub_test(name: str, **spec: Any) -> dict[str, Any]:
    return locusttest(name, workers=1, image=STUB_IMAGE, **spec)


def master_address(cluster: FakeKube, stubs: Stubs, name: str) -> str:
    """The address of the test's Running master pod, once a stub listens there."""

    def found() -> str | None:
        for pod in cluster.list("v1", "Pod", "default"):
            ip = (pod.get("status") or {}).get("podIP")
            owner = (pod["metadata"].get("ownerReferences") or [{}])[0].get("name")
            if owner == f"{name}-master" and ip in stubs.masters.masters:
                return ip
        return None

    return str(wait_until(found, what=f"the stub master of {name}"))


def results_of(client: Client, name: str) -> dict[str, Any]:
    return status(client, name).get("results") or {}


def wait_for_condition(client: Client, name: str, type_: str, value: tuple[str, str]) -> dict:
    return wait_until(
        lambda: conditions(s := status(client, name)).get(type_) == value and s,
        what=f"{name}: {type_} {value}",
    )


def wait_for_final(client: Client, name: str) -> dict[str, Any]:
    return wait_until(
        lambda: results_of(client, name).get("final") is True and results_of(client, name),
        timeout=20,
        what=f"the final results of {name}",
    )


def wait_for_master_gone(client: Client, address: str, timeout: float = 15) -> None:
    wait_until(
        lambda: not any(p.status.podIP == address for p in client.list(Pod, namespace="default")),
        timeout=timeout,
        what=f"the master pod at {address} deleted",
    )


def wait_for_end(client: Client, name: str) -> dict[str, Any]:
    return wait_until(
        lambda: (s := status(client, name)).get("phase") in ("Succeeded", "Failed") and s,
        what=f"{name} to end",
    )


def metrics(operator) -> str:
    code, text = operator.get("/metrics", port=operator.metrics_port)
    assert code == 200
    return text


def series(text: str, name: str) -> dict[str, float]:
    """`name{labels}` -> value, of the lines of `text` for metric `name`."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, _, value = line.rpartition(" ")
            found[labels[len(name) :]] = float(value)
    return found


def proxied_paths(cluster: FakeKube, address_pod: str) -> list[str]:
    return [r.path for r in cluster.requests if r.subresource == "proxy" and address_pod in r.path]


def test_live_and_final_results_verdicts_report_and_metrics(
    cluster: FakeKube,
    client: Client,
    start_operator,
    stubs: Stubs,
    webhook: dict[str, str],  # noqa: F811
) -> None:
    operator = start_operator(**OPERATOR_ENV, **webhook)
    create(client, stub_test("plain"))
    create(client, stub_test("good", thresholds=[{"metric": "failRatio", "max": 0.99}]))
    create(
        client,
        stub_test(
            "slow",
            thresholds=[
                {"metric": "p95Ms", "max": 5, "request": "GET /checkout"},
                {"metric": "requests", "min": 1},
            ],
        ),
    )
    v1 = locusttest_v1("legacy", workers=1)
    v1["spec"]["image"] = STUB_IMAGE
    create(client, v1)
    addresses = {name: master_address(cluster, stubs, name) for name in ("plain", "good", "slow")}
    master_address(cluster, stubs, "legacy")

    # Live results, for v2 and v1 tests alike.
    for name in ("plain", "good", "slow", "legacy"):
        live = wait_for_condition(client, name, "ResultsAvailable", ("True", "ResultsRead"))
        results = live["results"]
        assert results["state"] == "running" and results["final"] is False
        assert results["users"] == 4 and results["workers"] == 1
        assert {"requests", "failures", "failRatio", "failPercent", "rps", "avgMs"} <= set(results)
        assert {"p50Ms", "p95Ms", "p99Ms", "maxMs", "observedAt"} <= set(results)
        assert results["entries"][0]["name"] == "/checkout"
        assert "Aggregated" not in {e["name"] for e in results["entries"]}
    slow = status(client, "slow")
    assert "verdict" not in slow
    assert conditions(slow)["ThresholdsMet"] == ("Unknown", "AwaitingFinalResults")
    assert "ThresholdsMet" not in conditions(status(client, "plain"))

    # The test's run ends: the final snapshot is the master's stopped answer, rps its average.
    for name in ("good", "slow"):
        stubs.ask(addresses[name], "POST", "/stop")
    for name in ("good", "slow"):
        final = wait_for_final(client, name)
        answer = json.loads(stubs.ask(addresses[name], "GET", "/stats/requests"))
        expected = parse_stats(answer, datetime.now(timezone.utc)).as_final(None, datetime.now())
        assert final["state"] == "stopped" and final["users"] == 0
        wanted = expected.to_status()
        for key in ("requests", "failures", "failRatio", "failPercent", "p95Ms", "entries"):
            assert final[key] == wanted[key], key
        assert final["rps"] == round(answer["stats"][-1]["total_rps"], 3)
        assert final["requests"] == answer["stats"][-1]["num_requests"] > 0

    good = wait_until(lambda: (s := status(client, "good")).get("verdict") and s, what="verdict")
    assert good["verdict"] == "Passed"
    assert conditions(good)["ThresholdsMet"] == ("True", "ThresholdsPassed")
    slow = wait_until(lambda: (s := status(client, "slow")).get("verdict") and s, what="verdict")
    assert slow["verdict"] == "Failed"
    assert conditions(slow)["ThresholdsMet"] == ("False", "ThresholdsBreached")
    (met,) = [c for c in slow["conditions"] if c["type"] == "ThresholdsMet"]
    p95 = next(e for e in slow["results"]["entries"] if e["name"] == "/checkout")["p95Ms"]
    assert met["message"] == f"p95Ms {p95} > 5 on GET /checkout"
    wait_until(lambda: "ThresholdsPassed" in reasons(client, "good"), what="ThresholdsPassed")
    wait_until(lambda: "ThresholdsFailed" in reasons(client, "slow"), what="ThresholdsFailed")

    # The report: Locust's HTML, gzip-compressed, owned by the test.
    wait_until(lambda: "ReportSaved" in reasons(client, "good"), what="ReportSaved")
    report = client.get(ConfigMap, "good-report", namespace="default")
    html = gzip.decompress(base64.b64decode(report.binaryData["report.html.gz"]))
    assert html == stubs.ask(addresses["good"], "GET", "/stats/report")
    test_uid = client.get(LocustTestV2, "good", namespace="default").metadata.uid
    assert [o.uid for o in report.metadata.ownerReferences] == [test_uid]

    # The final snapshot stays: the master runs again, and is read no more, while the plain
    # test's numbers keep coming.
    final = results_of(client, "good")
    stubs.masters.masters[addresses["good"]].stopped_at = None
    plain_seen = results_of(client, "plain")["observedAt"]
    wait_until(
        lambda: (
            results_of(client, "plain")["observedAt"] > plain_seen
            and len(proxied_paths(cluster, "plain-master")) >= 3
        ),
        what="more polls of the plain test",
    )
    good_pod = next(
        p for p in client.list(Pod, namespace="default") if p.status.podIP == addresses["good"]
    )
    polls_of_good = len(proxied_paths(cluster, good_pod.metadata.name))
    plain_polls = len(proxied_paths(cluster, "plain-master"))
    wait_until(
        lambda: len(proxied_paths(cluster, "plain-master")) >= plain_polls + 2,
        what="two more polls of the plain test",
    )
    assert results_of(client, "good") == final
    assert len(proxied_paths(cluster, good_pod.metadata.name)) == polls_of_good

    # The operator's /metrics: every test, labelled by namespace and name.
    text = metrics(operator)
    labels = '{name="good",namespace="default"'
    assert series(text, "locusttest_requests_total")[labels + "}"] == final["requests"]
    assert series(text, "locusttest_failures_total")[labels + "}"] == final["failures"]
    assert series(text, "locusttest_requests_per_second")[labels + "}"] == final["rps"]
    assert series(text, "locusttest_users")[labels + "}"] == 0
    quantiles = series(text, "locusttest_response_time_seconds")
    assert quantiles[labels + ',quantile="0.95"}'] == final["p95Ms"] / 1000
    verdicts = series(text, "locusttest_verdict")
    assert verdicts[labels + ',verdict="Passed"}'] == 1
    assert verdicts['{name="slow",namespace="default",verdict="Failed"}'] == 1
    phases = series(text, "locusttest_phase")
    assert phases[labels + ',phase="Running"}'] == 1
    assert series(text, "locusttest_requests_total")['{name="legacy",namespace="default"}'] > 0

    # Deleted: its report goes with it, and so do its series.
    client.delete(LocustTestV2, "good", namespace="default")

    def report_gone() -> bool:
        try:
            client.get(ConfigMap, "good-report", namespace="default")
        except ApiError as error:
            return error.status.code == 404
        return False

    wait_until(report_gone, what="the report collected with its test")
    wait_until(lambda: 'name="good"' not in metrics(operator), what="the series gone")


def test_abort_on_fail_stops_the_test_and_ends_its_master(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    start_operator(**OPERATOR_ENV)
    create(
        client,
        stub_test("doomed", thresholds=[{"metric": "failRatio", "max": 0.1, "abortOnFail": True}]),
    )
    address = master_address(cluster, stubs, "doomed")
    master = stubs.masters.masters[address]
    wait_until(lambda: master.stops >= 1, timeout=20, what="POST /stop")
    wait_until(lambda: "TestAborted" in reasons(client, "doomed"), what="TestAborted")
    final = wait_for_final(client, "doomed")
    assert final["state"] == "stopped"
    wait_for_master_gone(client, address)
    job = wait_until(
        lambda: (
            (j := client.get(Job, "doomed-master", namespace="default")).status.conditions and j
        ),
        what="the master Job finished",
    )
    assert "Failed" in {c.type for c in job.status.conditions}
    ended = wait_until(
        lambda: (s := status(client, "doomed")).get("phase") == "Failed" and s, what="Failed"
    )
    assert ended["verdict"] == "Failed"
    assert ended["results"] == final
    assert master.stops == 1


def test_a_master_stopped_by_hand_is_ended_after_its_autoquit_delay(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    """A stop through Locust's web UI (or the stop-test action) cancels Locust's own autoquit:
    without the operator, the master and the test would run for ever."""
    start_operator(**OPERATOR_ENV)
    test = stub_test("by-hand")
    test["spec"]["master"]["autoquit"] = {"enabled": True, "timeout": 1}
    create(client, test)
    address = master_address(cluster, stubs, "by-hand")
    stubs.ask(address, "POST", "/stop")
    wait_for_final(client, "by-hand")
    wait_for_master_gone(client, address, timeout=30)
    ended = wait_for_end(client, "by-hand")
    assert ended["results"]["final"] is True


def test_an_operator_restarted_after_the_final_snapshot_still_ends_a_lingering_master(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    """The operator that took the final snapshot stops before the master's autoquit delay is
    over: its successor, which never reads that test again, ends the master all the same."""
    first = start_operator(**OPERATOR_ENV)
    test = stub_test("restarted")
    test["spec"]["master"]["autoquit"] = {"enabled": True, "timeout": 1}
    create(client, test)
    address = master_address(cluster, stubs, "restarted")
    stubs.ask(address, "POST", "/stop")
    final = wait_for_final(client, "restarted")
    first.stop()
    start_operator(**OPERATOR_ENV)
    wait_for_master_gone(client, address, timeout=30)
    ended = wait_for_end(client, "restarted")
    assert ended["results"] == final  # the final snapshot is never read again


def test_a_new_operator_ends_the_master_of_a_test_aborted_before_it_took_over(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    """The last operator wrote the aborted test's final snapshot and stopped before it ended the
    master, which has no --autoquit to end it by itself: the new operator ends it at once."""
    first = start_operator(RESULTS_INTERVAL_SECONDS="3600")  # it never polls: the state is ours
    test = stub_test(
        "aborted", thresholds=[{"metric": "failRatio", "max": 0.1, "abortOnFail": True}]
    )
    test["spec"]["master"]["autoquit"] = {"enabled": False}
    create(client, test)
    address = master_address(cluster, stubs, "aborted")
    first.stop()
    stubs.ask(address, "POST", "/stop")
    answer = stubs.ask(address, "GET", "/stats/requests")
    final = parse_stats(answer, datetime.now(timezone.utc)).as_final(None, datetime.now())
    client.patch(
        LocustTestV2.Status,
        "aborted",
        {"status": {"results": final.to_status(), "verdict": "Failed"}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    start_operator(**OPERATOR_ENV)
    wait_for_master_gone(client, address)
    assert results_of(client, "aborted") == final.to_status()  # never read again


def test_masters_that_refuse_hang_or_answer_garbage_never_block_reconciles(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    start_operator(**OPERATOR_ENV)
    thresholds = [{"metric": "p95Ms", "max": 1000}]
    for name in ("refusing", "hanging", "garbage", "ending"):
        create(client, stub_test(name, thresholds=thresholds))
    addresses = {n: master_address(cluster, stubs, n) for n in ("refusing", "hanging", "garbage")}
    addresses["ending"] = master_address(cluster, stubs, "ending")
    stubs.masters.hanging.add(addresses["hanging"])
    stubs.masters.answers[addresses["garbage"]] = (200, b"<html>not stats</html>", "text/html")
    stubs.call(stubs.masters.silence(addresses["refusing"]))
    stubs.call(stubs.masters.silence(addresses["ending"]))

    refusing = wait_for_condition(
        client, "refusing", "ResultsAvailable", ("False", "WebApiUnreachable")
    )
    assert "connection refused" in next(
        c["message"] for c in refusing["conditions"] if c["type"] == "ResultsAvailable"
    )
    assert conditions(refusing)["ThresholdsMet"] == ("Unknown", "AwaitingFinalResults")
    wait_for_condition(client, "hanging", "ResultsAvailable", ("False", "WebApiUnreachable"))
    garbage = wait_for_condition(
        client, "garbage", "ResultsAvailable", ("False", "InvalidResponse")
    )
    assert "not JSON" in next(
        c["message"] for c in garbage["conditions"] if c["type"] == "ResultsAvailable"
    )
    # JSON, but not Locust's.
    stubs.masters.answers[addresses["garbage"]] = (200, b'{"state": 3}', "application/json")
    wait_until(
        lambda: (
            "state: expected a string"
            in next(
                c["message"]
                for c in status(client, "garbage")["conditions"]
                if c["type"] == "ResultsAvailable"
            )
        ),
        what="the wrong shape named",
    )

    # Meanwhile reconciles go on: a new test gets its children and its own results.
    create(client, stub_test("meanwhile"))
    master_address(cluster, stubs, "meanwhile")
    wait_for_condition(client, "meanwhile", "ResultsAvailable", ("True", "ResultsRead"))

    # The master ends before its final results could be read: Inconclusive.
    pod = next(
        p for p in client.list(Pod, namespace="default") if p.status.podIP == addresses["ending"]
    )
    (process,) = [
        p for p in cluster.kubelet.processes() if p.pod == pod.metadata.name and p.running
    ]
    os.kill(process.pid, signal.SIGKILL)
    ended = wait_until(
        lambda: (s := status(client, "ending")).get("verdict") and s, timeout=20, what="verdict"
    )
    assert ended["verdict"] == "Inconclusive"
    assert ended["phase"] == "Failed"
    assert conditions(ended)["ThresholdsMet"] == ("Unknown", "ResultsUnavailable")
    assert "results" not in ended or ended["results"].get("final") is not True


def test_an_operator_that_restarts_never_reads_a_final_test_again(
    cluster: FakeKube, client: Client, start_operator, stubs: Stubs
) -> None:
    first = start_operator(**OPERATOR_ENV)
    create(client, stub_test("finished"))
    create(client, stub_test("running"))
    address = master_address(cluster, stubs, "finished")
    master_address(cluster, stubs, "running")
    wait_for_condition(client, "finished", "ResultsAvailable", ("True", "ResultsRead"))
    stubs.ask(address, "POST", "/stop")
    final = wait_for_final(client, "finished")
    assert first.stop() == 0

    pod = next(p for p in client.list(Pod, namespace="default") if p.status.podIP == address)
    polls = len(proxied_paths(cluster, pod.metadata.name))
    seen = results_of(client, "running")["observedAt"]
    start_operator(**OPERATOR_ENV)
    running = len(proxied_paths(cluster, "running-master"))
    wait_until(
        lambda: (
            len(proxied_paths(cluster, "running-master")) >= running + 3
            and results_of(client, "running")["observedAt"] > seen
        ),
        what="the new operator polling the running test",
    )
    assert len(proxied_paths(cluster, pod.metadata.name)) == polls
    assert results_of(client, "finished") == final
