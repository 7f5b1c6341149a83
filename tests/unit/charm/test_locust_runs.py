"""The pure parts of the run-test family: the thresholds short syntax, Locust's run-time
syntax, the commands and the result summaries; and actions.yaml against the parameter classes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import actions
import locust_runs
from locust_runs import RunRequest

ROOT = Path(__file__).resolve().parents[3]
ACTIONS = yaml.safe_load((ROOT / "actions.yaml").read_text())


# --- thresholds ----------------------------------------------------------------------------------


def test_the_short_syntax_gives_the_spec_thresholds():
    assert locust_runs.parse_thresholds("p95Ms<500,failRatio<0.01,rps>50@GET /api") == [
        {"metric": "p95Ms", "max": 500},
        {"metric": "failRatio", "max": 0.01},
        {"metric": "rps", "min": 50, "request": "GET /api"},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("  ", []),
        ("avgMs<=200", [{"metric": "avgMs", "max": 200}]),
        ("requests>=1000", [{"metric": "requests", "min": 1000}]),
        (" p99Ms < 1.5e3 , ", [{"metric": "p99Ms", "max": 1500}]),
        ("failures<.5", [{"metric": "failures", "max": 0.5}]),
        (
            "maxMs<2000@POST /cart/items add",
            [{"metric": "maxMs", "max": 2000, "request": "POST /cart/items add"}],
        ),
        ("rps>1 @ GET /", [{"metric": "rps", "min": 1, "request": "GET /"}]),
    ],
)
def test_thresholds_accepted(text, expected):
    assert locust_runs.parse_thresholds(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "p95Ms<500,p95Ms=500",
            "thresholds: 'p95Ms=500' is not METRIC<VALUE or METRIC>VALUE (optionally @METHOD "
            "name)",
        ),
        (
            "p95Ms<-1",
            "thresholds: 'p95Ms<-1' is not METRIC<VALUE or METRIC>VALUE (optionally @METHOD name)",
        ),
        (
            "p95Ms<fast",
            "thresholds: 'p95Ms<fast' is not METRIC<VALUE or METRIC>VALUE (optionally @METHOD "
            "name)",
        ),
        (
            "P95Ms<500",
            "thresholds: 'P95Ms<500': unknown metric 'P95Ms', one of requests, failures, "
            "failRatio, rps, avgMs, p50Ms, p95Ms, p99Ms, maxMs",
        ),
        (
            "rps>5@/api",
            'thresholds: \'rps>5@/api\': the request must be "METHOD name" (for example "GET '
            '/api"), at most 512 characters',
        ),
        (
            "rps>5@",
            'thresholds: \'rps>5@\': the request must be "METHOD name" (for example "GET '
            '/api"), at most 512 characters',
        ),
        (
            "rps>5@GET /" + "x" * 512,
            f"thresholds: 'rps>5@GET /{'x' * 512}': the request must be \"METHOD name\" (for "
            'example "GET /api"), at most 512 characters',
        ),
        (",".join(["rps>1"] * 21), "thresholds: 21 given, at most 20"),
    ],
)
def test_thresholds_refused_naming_the_item(text, message):
    with pytest.raises(ValueError) as refused:
        locust_runs.parse_thresholds(text)

    assert str(refused.value) == message


# --- run time ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("300", 300), ("90s", 90), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("3h30m10s", 12610)],
)
def test_run_times_locust_accepts(text, seconds):
    assert locust_runs.run_time_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "1m30", "30s1m", "1.5m", "-5", "5 m", "1d", "m"])
def test_run_times_locust_refuses(text):
    with pytest.raises(ValueError, match="is not a Locust run time"):
        locust_runs.run_time_seconds(text)


# --- commands and summaries ----------------------------------------------------------------------


def test_the_master_command_names_only_what_was_given():
    request = RunRequest(name="a", namespace="n", image="i", spawn_rate=0.5)

    assert locust_runs.master_command(request, "shop.py") == (
        "--locustfile /lotest/src/shop.py --spawn-rate 0.5"
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("p95Ms", "p95-ms"),
        ("failRatio", "fail-ratio"),
        ("observedAt", "observed-at"),
        ("rps", "rps"),
        ("reportConfigMap", "report-config-map"),
    ],
)
def test_result_keys_are_kebab_case(name, key):
    assert locust_runs.kebab(name) == key


def test_progress_lines():
    assert locust_runs.progress_line({}) == "phase Pending"
    assert locust_runs.progress_line({"phase": "Running"}) == "phase Running"
    running = {"phase": "Running", "results": {"users": 10, "rps": 41.2, "failures": 0}}
    assert locust_runs.progress_line(running) == "phase Running, 10 users, 41.2 rps, 0 failures"


def test_a_value_on_its_bound_meets_it_and_request_fail_ratios_are_computed():
    results = {
        "p95Ms": 500,
        "rps": 50,
        "entries": [{"method": "GET", "name": "/a", "requests": 200, "failures": 4}],
    }
    thresholds = [
        {"metric": "p95Ms", "max": 500},
        {"metric": "rps", "min": 50, "request": "Aggregated"},
        {"metric": "failRatio", "max": 0.01, "request": "GET /a"},
    ]

    outcomes = locust_runs.threshold_outcomes(thresholds, results)

    assert [(o.get("value"), o["met"]) for o in outcomes] == [
        (500, True),
        (50, True),
        (0.02, False),
    ]


# --- actions.yaml and the parameter classes ------------------------------------------------------

PARAMS = {
    "list-tests": actions.ListTestsParams,
    "describe-test": actions.DescribeTestParams,
    "run-test": actions.RunTestParams,
    "stop-test": actions.StopTestParams,
    "test-results": actions.TestResultsParams,
}


def test_every_action_has_a_parameter_class():
    assert set(ACTIONS) == set(PARAMS)


@pytest.mark.parametrize("action", sorted(PARAMS))
def test_parameters_match_actions_yaml(action):
    spec = ACTIONS[action]
    fields = {f.name.replace("_", "-"): f for f in dataclasses.fields(PARAMS[action])}

    assert spec["additionalProperties"] is False
    assert set(fields) == set(spec["params"])
    for name, param in spec["params"].items():
        field = fields[name]
        if name in spec.get("required", ()):
            assert field.default is dataclasses.MISSING, name
        else:
            assert field.default == param.get("default"), name


# --- waiting -------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Cluster:
    """Answers each read of the test with the next status (the last one stays)."""

    def __init__(self, *statuses: dict):
        self.statuses = list(statuses)

    def list(self, resource, namespace=None, fields=None):
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return [
            resource.from_dict(
                {
                    "apiVersion": "locust.io/v2",
                    "kind": "LocustTest",
                    "metadata": {"name": "smoke", "namespace": "load"},
                    "spec": {},
                    "status": status,
                }
            )
        ]


def numbers(rps: float) -> dict:
    return {"phase": "Running", "results": {"users": 10, "rps": rps, "failures": 0}}


def test_waiting_logs_milestones_at_once_and_new_numbers_now_and_then():
    clock, logged = Clock(), []
    cluster = Cluster(
        {},
        {"phase": "Running"},
        numbers(10.0),  # read at 4 s
        numbers(11.0),  # at 6 s, too soon after the first numbers: no line
        *[numbers(11.0)] * 3,
        numbers(12.0),  # at 14 s, 10 s after them
        {"phase": "Succeeded", "results": {"users": 10, "rps": 12.0, "failures": 0}},
    )

    test = locust_runs.wait_for_end(
        cluster,  # type: ignore[arg-type]
        "app",
        "smoke",
        "load",
        with_thresholds=False,
        timeout=600,
        log=logged.append,
        poll_seconds=2,
        clock=clock,
        sleep=clock.sleep,
    )

    assert test["status"]["phase"] == "Succeeded"
    assert logged == [
        "phase Pending",
        "phase Running",
        "phase Running, 10 users, 10 rps, 0 failures",
        "phase Running, 10 users, 12 rps, 0 failures",
        "phase Succeeded, 10 users, 12 rps, 0 failures",
    ]


def test_waiting_times_out_after_the_timeout():
    clock, logged = Clock(), []

    with pytest.raises(locust_runs.WaitTimedOut) as timed_out:
        locust_runs.wait_for_end(
            Cluster({"phase": "Succeeded"}),  # type: ignore[arg-type]
            "app",
            "smoke",
            "load",
            with_thresholds=True,
            timeout=30,
            log=logged.append,
            poll_seconds=2,
            clock=clock,
            sleep=clock.sleep,
        )

    assert timed_out.value.message == (
        "timed out after 30s waiting for its verdict (LocustTest smoke: phase Succeeded); "
        "see test-results name=smoke"
    )
    assert clock.now == 30
