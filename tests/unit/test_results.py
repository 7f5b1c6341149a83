"""Reading the Locust master's `/stats/requests` answers of every Locust 2.x shape into results,
and the `status.results` document they become.

The Locust 2.47 answers are real ones (tests/data/locust-stats/capture.py); the older shapes are
written by hand after those releases' web UI code, each test naming the release."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from reconciler.status.results import (
    Entry,
    Results,
    ResultsUnreadable,
    parse_stats,
    settled,
)

NOW = datetime(2026, 12, 3, 18, 0, tzinfo=timezone.utc)
STATS = Path(__file__).parents[1] / "data" / "locust-stats"


def answer(name: str) -> dict[str, Any]:
    return json.loads((STATS / f"locust-{name}.json").read_text())


def test_a_running_master_of_locust_2_47_reads_as_its_totals_and_entries():
    results = parse_stats(answer("2.47.0-running"), NOW)

    assert (results.state, results.users, results.workers, results.final) == (
        "running",
        4,
        1,
        False,
    )
    assert results.total == Entry(
        method="",
        name="Aggregated",
        requests=89,
        failures=19,
        rps=0.0,
        avg_ms=32.19127286518139,
        p50_ms=4,
        p95_ms=210,
        p99_ms=210,
        max_ms=209,
        total_rps=44.11553687586227,
    )
    assert [(e.label(), e.requests, e.failures) for e in results.entries] == [
        ("GET /fast", 58, 0),
        ("POST POST missing item", 19, 19),
        ("GET /slow", 12, 0),
    ]
    assert results.fail_ratio == pytest.approx(19 / 89)
    assert not results.stopped


def test_the_status_document_of_a_stopped_locust_2_47():
    results = parse_stats(answer("2.47.0-stopped"), NOW)

    assert results.to_status() == {
        "observedAt": "2026-12-03T18:00:00Z",
        "state": "stopped",
        "final": False,
        "users": 0,
        "workers": 1,
        "requests": 245,
        "failures": 52,
        "failRatio": 0.212245,
        "failPercent": 21.22,
        "rps": 38.25,
        "avgMs": 44.471,
        "p50Ms": 5,
        "p95Ms": 210,
        "p99Ms": 210,
        "maxMs": 245,
        "entries": [
            {
                "method": "GET",
                "name": "/fast",
                "requests": 145,
                "failures": 0,
                "rps": 24,
                "avgMs": 4.853,
                "p50Ms": 4,
                "p95Ms": 9,
                "p99Ms": 12,
                "maxMs": 14,
            },
            {
                "method": "POST",
                "name": "POST missing item",
                "requests": 52,
                "failures": 52,
                "rps": 8,
                "avgMs": 5.028,
                "p50Ms": 5,
                "p95Ms": 10,
                "p99Ms": 14,
                "maxMs": 14,
            },
            {
                "method": "GET",
                "name": "/slow",
                "requests": 48,
                "failures": 0,
                "rps": 6.25,
                "avgMs": 206.885,
                "p50Ms": 210,
                "p95Ms": 210,
                "p99Ms": 250,
                "maxMs": 245,
            },
        ],
    }


def test_the_final_snapshot_takes_locusts_own_run_average_as_rps():
    stopped = parse_stats(answer("2.47.0-stopped"), NOW)

    final = stopped.as_final(NOW - timedelta(seconds=1000), NOW)

    assert final.final and final.to_status()["final"] is True
    assert final.total.rps == pytest.approx(40.459255431678606)  # Locust's, not 245 / 1000 s
    assert final.entry("GET /slow").rps == pytest.approx(7.926711268247238)
    assert (final.total.requests, final.total.p95_ms) == (245, 210)
    assert stopped.total.rps == 38.25  # the snapshot it came from is unchanged


# --- older releases ------------------------------------------------------------------------------


def older_row(method: str, name: str, requests: int, failures: int, **times: float) -> dict:
    """A `stats` row as Locust 2.8 to 2.20 wrote it: 90th and 99th percentiles, no p95, and no
    run average."""
    return {
        "method": method,
        "name": name,
        "safe_name": name,
        "num_requests": requests,
        "num_failures": failures,
        "avg_response_time": times.get("avg", 10.5),
        "min_response_time": 2,
        "max_response_time": times.get("max", 90),
        "current_rps": times.get("rps", 3.5),
        "current_fail_per_sec": 0.0,
        "median_response_time": times.get("p50", 9),
        "ninetieth_response_time": 40,
        "ninety_ninth_response_time": times.get("p99", 80),
        "avg_content_length": 12.0,
    }


def locust_2_8_answer() -> dict[str, Any]:
    """Locust 2.8's master: the chart's current percentiles by name, workers listed, no count."""
    return {
        "stats": [
            older_row("GET", "/checkout", 30, 1, p99=95),
            older_row("GET", "/", 70, 0),
            older_row(None, "Aggregated", 100, 1, rps=7.0),  # type: ignore[arg-type]
        ],
        "errors": [],
        "total_rps": 7.0,
        "fail_ratio": 0.01,
        "current_response_time_percentile_95": 70,
        "current_response_time_percentile_50": 9,
        "workers": [
            {"id": "w1", "state": "running", "user_count": 5, "cpu_usage": 3, "memory_usage": 1},
            {"id": "w2", "state": "running", "user_count": 5, "cpu_usage": 3, "memory_usage": 1},
        ],
        "state": "running",
        "user_count": 10,
    }


def test_locust_2_8_reads_without_a_p95_rather_than_with_a_wrong_one():
    results = parse_stats(locust_2_8_answer(), NOW)

    assert (results.users, results.workers, results.total.requests) == (10, 2, 100)
    assert [e.label() for e in results.entries] == ["GET /", "GET /checkout"]
    checkout = results.entry("GET /checkout")
    assert (checkout.p50_ms, checkout.p95_ms, checkout.p99_ms) == (9, None, 95)
    document = results.to_status()
    assert "p95Ms" not in document and "p95Ms" not in document["entries"][0]
    assert document["p99Ms"] == 80


def test_locust_2_15_percentiles_by_position_and_2_20_by_name_read_alike():
    locust_2_15 = locust_2_8_answer()
    for key in ("current_response_time_percentile_95", "current_response_time_percentile_50"):
        del locust_2_15[key]
    locust_2_15 |= {
        "current_response_time_percentile_1": 9,
        "current_response_time_percentile_2": 70,
    }
    locust_2_20 = copy.deepcopy(locust_2_15)
    del locust_2_20["current_response_time_percentile_1"]
    del locust_2_20["current_response_time_percentile_2"]
    locust_2_20 |= {
        "total_fail_per_sec": 0.0,
        "total_avg_response_time": 10.5,
        "current_response_time_percentiles": {"response_time_percentile_0.95": 70},
    }

    assert parse_stats(locust_2_15, NOW) == parse_stats(locust_2_8_answer(), NOW)
    assert parse_stats(locust_2_20, NOW) == parse_stats(locust_2_8_answer(), NOW)


def test_without_locusts_run_average_the_final_rps_is_requests_over_the_run():
    results = parse_stats(locust_2_8_answer() | {"state": "stopped"}, NOW)

    final = results.as_final(NOW - timedelta(seconds=50), NOW)

    assert final.total.rps == 2.0  # 100 requests in 50 s
    assert final.entry("GET /checkout").rps == 0.6


def test_a_locust_in_local_mode_has_no_workers():
    local = locust_2_8_answer()
    del local["workers"]

    assert parse_stats(local, NOW).workers == 0


def test_a_master_without_a_runner_reports_nothing_yet():
    # Every 2.x release: no runner yet, no rows.
    empty = {"stats": [], "errors": [], "total_rps": 0.0, "fail_ratio": 0.0, "state": "missing"}
    empty |= {"user_count": 0, "workers": []}

    results = parse_stats(empty, NOW)

    assert (results.state, results.total.requests, results.entries) == ("missing", 0, ())
    assert results.total.label() == "Aggregated"


def test_an_entry_without_requests_may_lack_its_times():
    answer_ = locust_2_8_answer()
    answer_["stats"][-1] |= {"num_requests": 0, "num_failures": 0, "median_response_time": None}
    answer_["stats"][-1]["max_response_time"] = None

    total = parse_stats(answer_, NOW).total

    assert (total.p50_ms, total.max_ms, total.fail_ratio) == (0, 0, 0.0)


def test_the_text_of_an_answer_reads_as_its_json():
    text = (STATS / "locust-2.47.0-stopped.json").read_bytes()

    assert parse_stats(text, NOW) == parse_stats(json.loads(text), NOW)


# --- entries ----------------------------------------------------------------------------------


def many_entries(count: int) -> dict[str, Any]:
    rows = [older_row("GET", f"/item/{n}", n + 1, 0) for n in range(count)]
    return {"stats": [*rows, older_row("", "Aggregated", 1000, 0)], "state": "running"}


def test_the_status_lists_the_20_entries_with_the_most_requests():
    results = parse_stats(many_entries(25), NOW)

    entries = results.to_status()["entries"]

    assert [entry["requests"] for entry in entries] == list(range(25, 5, -1))
    assert all(entry["name"] != "Aggregated" for entry in entries)
    # Thresholds still see every entry.
    assert results.entry("GET /item/0").requests == 1


def test_an_entry_is_found_by_method_and_name_and_none_is_the_total():
    results = parse_stats(locust_2_8_answer(), NOW)

    assert results.entry(None) is results.total
    assert results.entry("GET /checkout").name == "/checkout"
    assert results.entry("POST /checkout") is None
    assert results.entry("Aggregated") is None  # the total row is no request entry


# --- garbage -------------------------------------------------------------------------------------


def with_row(**changes: Any) -> dict[str, Any]:
    garbled = locust_2_8_answer()
    garbled["stats"][0] |= changes
    return garbled


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"<html>Bad Gateway</html>", "the answer is not JSON: Expecting value: line 1 column 1"),
        ([1, 2], "the answer is not a JSON object but a list"),
        ("null", "the answer is not a JSON object but nothing"),
        ({"state": "running"}, "stats: expected a list, got nothing"),
        ({"stats": [], "state": 3}, "state: expected a string, got 3"),
        ({"stats": ["x"], "state": "running"}, "stats[0]: expected an object, got the string 'x'"),
        (with_row(num_requests="12"), "stats[0].num_requests: expected a count, got the string"),
        (with_row(num_failures=True), "stats[0].num_failures: expected a count, got a boolean"),
        (with_row(num_failures=-1), "stats[0].num_failures: expected a count, got -1"),
        (with_row(avg_response_time=[]), "stats[0].avg_response_time: expected a number, got a"),
        (
            with_row(max_response_time=float("nan")),
            "stats[0].max_response_time: expected a number",
        ),
        (with_row(median_response_time=None), "stats[0].median_response_time: expected a number"),
        (with_row(name=None), "stats[0].name: expected a string, got nothing"),
        ({**many_entries(1), "stats": [older_row("GET", "/", 1, 0)]}, "stats: the last entry is"),
        ({**locust_2_8_answer(), "workers": 2}, "workers: expected a list, got 2"),
        ({**locust_2_8_answer(), "user_count": "ten"}, "user_count: expected a count"),
    ],
)
def test_garbage_is_unreadable_with_a_one_line_reason(payload: Any, reason: str):
    with pytest.raises(ResultsUnreadable) as raised:
        parse_stats(payload, NOW)

    assert str(raised.value).startswith(reason)
    assert "\n" not in str(raised.value)


def test_an_answer_without_a_row_for_p99_is_unreadable():
    garbled = locust_2_8_answer()
    del garbled["stats"][1]["ninety_ninth_response_time"]

    with pytest.raises(ResultsUnreadable, match=r"^stats\[1\]\.response_time_percentile_0\.99: "):
        parse_stats(garbled, NOW)


# --- settling ------------------------------------------------------------------------------------


def test_numbers_settle_when_two_stopped_answers_agree():
    running = parse_stats(answer("2.47.0-running"), NOW)
    stopped = parse_stats(answer("2.47.0-stopped"), NOW)
    again = parse_stats(answer("2.47.0-stopped"), NOW + timedelta(seconds=10))
    # The first stopped answer, before the worker's last report: fewer requests.
    early = parse_stats(
        answer("2.47.0-stopped") | {"stats": answer("2.47.0-running")["stats"]}, NOW
    )

    assert settled(stopped, again)
    assert not settled(None, stopped)
    assert not settled(running, stopped)
    assert not settled(early, stopped)
    assert not settled(stopped, Results(**{**vars(again), "state": "running"}))
