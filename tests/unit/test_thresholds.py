"""Thresholds against results: the breaches and their messages, what stops a test early, and
the verdict and conditions written into a test's status."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from reconciler.api.types import Threshold
from reconciler.status.conditions import NORMAL, WARNING, Event
from reconciler.status.results import (
    INVALID_RESPONSE,
    MASTER_NOT_RUNNING,
    Entry,
    Problem,
    Results,
)
from reconciler.status.thresholds import (
    abort_breaches,
    breaches,
    verdict_event,
    verdict_status,
)

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=timezone.utc)


def entry(method: str, name: str, requests: int = 600, failures: int = 1, **ms: Any) -> Entry:
    return Entry(
        method=method,
        name=name,
        requests=requests,
        failures=failures,
        rps=ms.get("rps", 20.0),
        avg_ms=ms.get("avg", 30.0),
        p50_ms=ms.get("p50", 20.0),
        p95_ms=ms.get("p95", 612.0),
        p99_ms=ms.get("p99", 700.0),
        max_ms=ms.get("max", 900.0),
    )


def results(state: str = "stopped", final: bool = True, **total: Any) -> Results:
    return Results(
        observed_at=NOW,
        state=state,
        users=10,
        workers=2,
        total=entry("", "Aggregated", requests=1250, failures=3, **({"rps": 12.5} | total)),
        entries=(entry("GET", "/checkout"), entry("GET", "/", requests=650, failures=2, p95=40)),
        final=final,
    )


# --- breaches ------------------------------------------------------------------------------------


def test_a_held_threshold_is_no_breach():
    thresholds = [
        Threshold("p95Ms", max=50, request="GET /"),
        Threshold("requests", min=1000),
        Threshold("failRatio", max=0.01),
    ]

    assert breaches(thresholds, results()) == ()


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (Threshold("p95Ms", max=500, request="GET /checkout"), "p95Ms 612 > 500 on GET /checkout"),
        (Threshold("rps", min=50), "rps 12.5 < 50 on Aggregated"),
        (Threshold("failRatio", max=0.001), "failRatio 0.0024 > 0.001 on Aggregated"),
        (Threshold("failures", max=0, request="GET /"), "failures 2 > 0 on GET /"),
        (Threshold("avgMs", max=29.5), "avgMs 30 > 29.5 on Aggregated"),
        (Threshold("p50Ms", min=20.5), "p50Ms 20 < 20.5 on Aggregated"),
        (Threshold("p99Ms", max=699.999), "p99Ms 700 > 699.999 on Aggregated"),
        (Threshold("maxMs", max=899), "maxMs 900 > 899 on Aggregated"),
        (Threshold("requests", min=700, request="GET /"), "requests 650 < 700 on GET /"),
        (Threshold("rps", max=1, request="GET /x"), "no requests for GET /x"),
    ],
)
def test_a_breach_says_what_was_measured_against_what(threshold: Threshold, message: str):
    [breach] = breaches([threshold], results())

    assert breach.threshold == threshold
    assert breach.message() == message


def test_every_breach_is_listed_in_order():
    thresholds = [Threshold("rps", min=50), Threshold("p95Ms", max=1), Threshold("rps", max=100)]

    assert [b.threshold for b in breaches(thresholds, results())] == thresholds[:2]


def test_a_percentile_the_locust_release_does_not_report_breaches_with_a_reason():
    old = results(p95=None)

    [breach] = breaches([Threshold("p95Ms", max=500)], old)

    assert breach.value is None
    assert breach.message() == "p95Ms is not reported by this Locust release for Aggregated"


def test_only_abort_on_fail_thresholds_abort_and_only_on_what_the_run_cannot_mend():
    live = results(state="running", final=False)
    thresholds = [
        Threshold("p95Ms", max=500, request="GET /checkout", abort_on_fail=True),
        Threshold("rps", min=50),  # breached, but does not abort
        Threshold("requests", min=5000, abort_on_fail=True),  # may still be reached
        Threshold("failures", max=2, abort_on_fail=True),  # 3: no run mends that
        Threshold("maxMs", max=1, request="GET /later", abort_on_fail=True),  # not requested yet
    ]

    assert [b.message() for b in abort_breaches(thresholds, live)] == [
        "p95Ms 612 > 500 on GET /checkout",
        "failures 3 > 2 on Aggregated",
    ]


# --- the verdict and the conditions --------------------------------------------------------------


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def running_status() -> dict[str, Any]:
    return {"phase": "Running", "observedGeneration": 3, "conditions": []}


def test_without_thresholds_there_are_results_but_no_verdict():
    status = running_status() | {"verdict": "Failed"}
    status["conditions"] = [
        {"type": "ThresholdsMet", "status": "False", "reason": "ThresholdsBreached"}
    ]

    verdict_status(status, [], results(), None, NOW)

    assert status["results"] == results().to_status()
    assert "verdict" not in status
    assert conditions(status) == {
        "ResultsAvailable": ("True", "ResultsRead", "Locust reports stopped (final)")
    }
    assert status["conditions"][0]["observedGeneration"] == 3


def test_while_the_test_runs_the_thresholds_await_the_final_results():
    status = running_status()

    verdict_status(status, [Threshold("rps", min=50)], results("running", final=False), None, NOW)

    assert "verdict" not in status
    assert status["results"]["state"] == "running"
    assert conditions(status)["ThresholdsMet"] == (
        "Unknown",
        "AwaitingFinalResults",
        "thresholds are judged on the final results, once the test has stopped",
    )


def test_the_final_results_pass_when_every_threshold_holds():
    status = running_status()

    verdict_status(
        status,
        [Threshold("rps", min=10), Threshold("p95Ms", max=50, request="GET /")],
        results(),
        None,
        NOW,
    )

    assert status["verdict"] == "Passed"
    assert conditions(status)["ThresholdsMet"] == (
        "True",
        "ThresholdsPassed",
        "all 2 thresholds hold on the final results",
    )


def test_the_final_results_fail_naming_every_breach():
    status = running_status()
    thresholds = [Threshold("p95Ms", max=500, request="GET /checkout"), Threshold("rps", min=50)]

    verdict_status(status, thresholds, results(), None, NOW)

    assert status["verdict"] == "Failed"
    assert conditions(status)["ThresholdsMet"] == (
        "False",
        "ThresholdsBreached",
        "p95Ms 612 > 500 on GET /checkout; rps 12.5 < 50 on Aggregated",
    )


def test_results_that_cannot_be_read_while_running_say_why_and_keep_the_last_numbers():
    status = running_status()
    thresholds = [Threshold("rps", min=50)]
    verdict_status(status, thresholds, results("running", final=False), None, NOW)
    live = copy.deepcopy(status["results"])

    problem = Problem(INVALID_RESPONSE, "stats: expected a list, got nothing")
    verdict_status(status, thresholds, None, problem, NOW + timedelta(seconds=10))

    assert status["results"] == live
    assert "verdict" not in status
    found = conditions(status)
    assert found["ResultsAvailable"] == ("False", "InvalidResponse", problem.message)
    assert found["ThresholdsMet"][:2] == ("Unknown", "AwaitingFinalResults")


def test_a_test_that_ended_without_final_results_is_inconclusive():
    status = running_status() | {"phase": "Succeeded"}
    problem = Problem(MASTER_NOT_RUNNING, "the master pod is gone")

    verdict_status(status, [Threshold("rps", min=50)], None, problem, NOW)

    assert status["verdict"] == "Inconclusive"
    assert "results" not in status
    assert conditions(status) == {
        "ResultsAvailable": ("False", "MasterNotRunning", "the master pod is gone"),
        "ThresholdsMet": ("Unknown", "ResultsUnavailable", "the master pod is gone"),
    }


def test_a_problem_given_as_text_has_a_generic_reason():
    status = running_status()

    verdict_status(status, [Threshold("rps", min=50)], None, "timed out", NOW, ended=True)

    assert status["verdict"] == "Inconclusive"
    assert conditions(status)["ResultsAvailable"] == ("False", "ResultsUnavailable", "timed out")


def test_the_final_snapshot_and_its_verdict_are_never_overwritten():
    status = running_status()
    thresholds = [Threshold("rps", min=50)]
    verdict_status(status, thresholds, results(), None, NOW)
    final = copy.deepcopy(status)

    later = NOW + timedelta(minutes=1)
    verdict_status(status | {"phase": "Succeeded"}, thresholds, None, "master gone", later)
    verdict_status(status, thresholds, results("running", final=False), None, later)
    verdict_status(status, thresholds, results(final=True, rps=99.0), None, later)

    assert status == final


def test_an_unknown_verdict_keeps_its_transition_time_until_it_flips():
    status = running_status()
    thresholds = [Threshold("rps", min=50)]
    verdict_status(status, thresholds, results("running", final=False), None, NOW)

    verdict_status(
        status, thresholds, results("running", final=False), None, NOW + timedelta(seconds=10)
    )
    unknown_since = {c["type"]: c["lastTransitionTime"] for c in status["conditions"]}
    verdict_status(status, thresholds, results(), None, NOW + timedelta(seconds=20))

    assert unknown_since["ThresholdsMet"] == "2026-12-03T18:00:00Z"
    met = next(c for c in status["conditions"] if c["type"] == "ThresholdsMet")
    assert (met["status"], met["lastTransitionTime"]) == ("False", "2026-12-03T18:00:20Z")


# --- events --------------------------------------------------------------------------------------


def test_a_new_verdict_is_an_event_and_an_unchanged_one_is_not():
    running = running_status()
    passed = copy.deepcopy(running)
    verdict_status(passed, [Threshold("rps", min=1)], results(), None, NOW)
    failed = copy.deepcopy(running)
    verdict_status(failed, [Threshold("rps", min=50)], results(), None, NOW)
    inconclusive = copy.deepcopy(running)
    verdict_status(inconclusive, [Threshold("rps", min=50)], None, "gone", NOW, ended=True)

    assert verdict_event(running, passed) == Event(
        NORMAL, "ThresholdsPassed", "the threshold holds on the final results"
    )
    assert verdict_event(running, failed) == Event(
        WARNING, "ThresholdsFailed", "rps 12.5 < 50 on Aggregated"
    )
    assert verdict_event(passed, passed) is None
    assert verdict_event(running, inconclusive) is None
