"""run-test, stop-test and test-results against the fake API server.

The tests play the operator's part: they write the status (phase, results, verdict and
conditions) through the status subresource, as the reconciler does, while the action waits.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ops import testing

import locust_runs
from fakekube.server import FakeKube
from reconciler.api.parse import parse
from reconciler.config import OperatorConfig
from reconciler.crds import crd_manifest
from reconciler.resources import build_children, to_dict
from tests.unit.charm.conftest import CRD, MODEL, default_env, established
from tests.unit.charm.test_actions import TRUST, condition, run_action

V2 = "locust.io/v2"
LOCUSTFILE = """\
from locust import HttpUser, task


class Shopper(HttpUser):
    @task
    def home(self):
        self.client.get("/")
"""
DEFAULT_IMAGE = "locustio/locust:2.47.0"
# What the operator writes once Locust has settled (the results contract's status.results).
RESULTS = {
    "observedAt": "2026-12-03T18:00:00Z",
    "state": "stopped",
    "final": True,
    "users": 10,
    "workers": 1,
    "requests": 1234,
    "failures": 3,
    "failRatio": 0.0024,
    "failPercent": 0.24,
    "rps": 41.2,
    "avgMs": 12.3,
    "p50Ms": 10,
    "p95Ms": 612,
    "p99Ms": 800,
    "maxMs": 1200,
    "entries": [
        {
            "method": "GET",
            "name": "/checkout",
            "requests": 600,
            "failures": 1,
            "rps": 20.1,
            "avgMs": 11.0,
            "p50Ms": 9,
            "p95Ms": 612,
            "p99Ms": 700,
            "maxMs": 1100,
        }
    ],
}
RUNNING_RESULTS = RESULTS | {"state": "running", "final": False, "rps": 38.5, "failures": 0}
BREACH = "p95Ms 612 > 500 on GET /checkout"


@pytest.fixture
def crd(kube: FakeKube) -> FakeKube:
    kube.create(crd_manifest())
    kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
    kube.clear_requests()
    return kube


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locust_runs, "POLL_SECONDS", 0.01)


def locust_tests_in(kube: FakeKube, namespace: str = MODEL) -> list[str]:
    return [t["metadata"]["name"] for t in kube.list(V2, "LocustTest", namespace=namespace)]


def config_maps_in(kube: FakeKube, namespace: str = MODEL) -> list[str]:
    return [
        c["metadata"]["name"]
        for c in kube.list("v1", "ConfigMap", namespace=namespace)
        if c["metadata"]["name"] != "kube-root-ca.crt"
    ]


def writes(kube: FakeKube) -> list[tuple[str, str]]:
    return [(r.verb, r.resource) for r in kube.requests if r.verb not in ("get", "list", "watch")]


def failed(ctx: testing.Context, action: str, params: dict, **kwargs) -> str:
    with pytest.raises(testing.ActionFailed) as failure:
        run_action(ctx, action, params, **kwargs)
    return failure.value.message


def make_test(
    kube: FakeKube, name: str, *, thresholds: list | None = None, status: dict | None = None
) -> dict:
    spec: dict[str, Any] = {
        "image": DEFAULT_IMAGE,
        "master": {"command": "--locustfile /lotest/src/locustfile.py --run-time 1m"},
        "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 1},
    }
    if thresholds:
        spec["thresholds"] = thresholds
    test = kube.create(
        {
            "apiVersion": V2,
            "kind": "LocustTest",
            "metadata": {"name": name, "namespace": MODEL},
            "spec": spec,
        }
    )
    if status:
        kube.patch_status(V2, "LocustTest", name, status, namespace=MODEL)
    return test


def running(**fields: Any) -> dict:
    return {
        "phase": "Running",
        "conditions": [condition("Ready", "True", "ResourcesCreated", "All resources created")],
        **fields,
    }


def ended(phase: str = "Succeeded", *, verdict: str | None = None, message: str = "") -> dict:
    reason = "TestSucceeded" if phase == "Succeeded" else "TestFailed"
    text = "Test completed successfully" if phase == "Succeeded" else "Test failed"
    conditions = [
        condition("TestCompleted", "True", reason, text),
        condition("ResultsAvailable", "True", "ResultsRead", "Read the final results"),
    ]
    status: dict[str, Any] = {"phase": phase, "results": RESULTS, "conditions": conditions}
    if verdict:
        met = {
            "Passed": ("True", "ThresholdsPassed", "All thresholds met"),
            "Failed": ("False", "ThresholdsBreached", message),
            "Inconclusive": ("Unknown", "ResultsUnavailable", message),
        }[verdict]
        conditions.append(condition("ThresholdsMet", *met))
        status["verdict"] = verdict
    return status


class Operator(threading.Thread):
    """Plays the reconciler for one test: once run-test has created it, writes each status in
    turn (None: writes nothing), waiting before the next one until the action has logged `seen`."""

    def __init__(
        self,
        kube: FakeKube,
        ctx: testing.Context,
        name: str,
        steps: list[tuple[dict | None, str]],
    ):
        super().__init__(daemon=True)
        self.kube, self.ctx, self.name, self.steps = kube, ctx, name, steps
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.kube.wait_for(
                lambda: self.kube.get(V2, "LocustTest", self.name, namespace=MODEL),
                message="the test",
            )
            for status, seen in self.steps:
                if status is not None:
                    self.kube.patch_status(V2, "LocustTest", self.name, status, namespace=MODEL)
                if seen:
                    self.kube.wait_for(
                        lambda seen=seen: any(seen in line for line in self.ctx.action_logs),
                        message=f"the action to log {seen!r}",
                    )
        except BaseException as error:  # reported by finish()
            self.error = error

    def finish(self) -> None:
        self.join(10)
        assert not self.is_alive()
        if self.error:
            raise self.error


@pytest.fixture
def operator(crd: FakeKube, ctx: testing.Context) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(name: str, *steps: tuple[dict | None, str]) -> Operator:
        thread = Operator(crd, ctx, name, list(steps))
        thread.start()
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.finish()


# --- run-test without waiting ----------------------------------------------------------------


def test_run_test_creates_the_test_and_its_locustfile_config_map(
    ctx: testing.Context, crd: FakeKube
):
    results = run_action(
        ctx,
        "run-test",
        {
            "name": "smoke",
            "locustfile": LOCUSTFILE,
            "host": "https://shop.example.com",
            "users": 10,
            "spawn-rate": 2,
            "run-time": "1m",
            "workers": 3,
            "thresholds": "p95Ms<500,failRatio<0.01,rps>50@GET /api",
        },
    )

    assert results == {
        "name": "smoke",
        "namespace": MODEL,
        "config-map": "smoke-locustfile",
        "phase": "Pending",
    }
    test = crd.get(V2, "LocustTest", "smoke", namespace=MODEL)
    assert test["spec"]["image"] == DEFAULT_IMAGE
    assert test["spec"]["master"]["command"] == (
        "--locustfile /lotest/src/locustfile.py --host https://shop.example.com --users 10 "
        "--spawn-rate 2 --run-time 1m"
    )
    assert test["spec"]["worker"]["command"] == "--locustfile /lotest/src/locustfile.py"
    assert test["spec"]["worker"]["replicas"] == 3
    assert test["spec"]["testFiles"]["configMapRef"] == "smoke-locustfile"
    assert test["spec"]["thresholds"] == [
        {"metric": "p95Ms", "max": 500, "abortOnFail": False},
        {"metric": "failRatio", "max": 0.01, "abortOnFail": False},
        {"metric": "rps", "min": 50, "request": "GET /api", "abortOnFail": False},
    ]
    config_map = crd.get("v1", "ConfigMap", "smoke-locustfile", namespace=MODEL)
    assert config_map["data"] == {"locustfile.py": LOCUSTFILE}
    assert config_map["metadata"]["ownerReferences"] == [
        {
            "apiVersion": V2,
            "kind": "LocustTest",
            "name": "smoke",
            "uid": test["metadata"]["uid"],
        }
    ]
    # The test first, then its ConfigMap (which needs the test's uid).
    assert writes(crd) == [("create", "locusttests"), ("create", "configmaps")]


def test_the_operator_mounts_the_locustfile_run_test_stored(ctx: testing.Context, crd: FakeKube):
    run_action(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "users": 10})
    test = crd.get(V2, "LocustTest", "smoke", namespace=MODEL)

    _, master, _ = build_children(parse(test), OperatorConfig.from_env(default_env()))

    pod = to_dict(master)["spec"]["template"]["spec"]
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
    locust = next(c for c in pod["containers"] if c["name"] == "smoke-master")
    mounts = {m["mountPath"]: volumes.get(m["name"]) for m in locust["volumeMounts"]}
    assert mounts["/lotest/src"] == "smoke-locustfile"
    assert locust["args"][:3] == ["--locustfile", "/lotest/src/locustfile.py", "--users"]


def test_the_locustfile_config_map_goes_with_its_test(ctx: testing.Context, crd: FakeKube):
    run_action(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    crd.delete(V2, "LocustTest", "smoke", namespace=MODEL)

    crd.wait_for(lambda: config_maps_in(crd) == [], message="the ConfigMap collected")


def test_run_test_with_an_existing_config_map_runs_its_python_file(
    ctx: testing.Context, crd: FakeKube
):
    crd.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-tests", "namespace": "staging"},
            "data": {"shop.py": LOCUSTFILE, "README": "how to run"},
        }
    )
    crd.clear_requests()

    results = run_action(
        ctx,
        "run-test",
        {"name": "shop", "namespace": "staging", "config-map": "shop-tests", "users": 5},
    )

    assert results["config-map"] == "shop-tests"
    test = crd.get(V2, "LocustTest", "shop", namespace="staging")
    assert test["spec"]["master"]["command"] == "--locustfile /lotest/src/shop.py --users 5"
    assert test["spec"]["worker"]["command"] == "--locustfile /lotest/src/shop.py"
    assert test["spec"]["testFiles"]["configMapRef"] == "shop-tests"
    assert "thresholds" not in test["spec"]
    assert writes(crd) == [("create", "locusttests")]


def test_run_test_prefers_locustfile_py_in_a_config_map(ctx: testing.Context, crd: FakeKube):
    crd.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "suite", "namespace": MODEL},
            "data": {"helpers.py": "", "locustfile.py": LOCUSTFILE},
        }
    )

    run_action(ctx, "run-test", {"name": "suite", "config-map": "suite"})

    test = crd.get(V2, "LocustTest", "suite", namespace=MODEL)
    assert test["spec"]["master"]["command"] == "--locustfile /lotest/src/locustfile.py"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, f"config-map: ConfigMap suite not found in namespace {MODEL}"),
        ({"notes.txt": "x"}, "config-map: ConfigMap suite holds no .py file"),
        (
            {"a.py": "", "b.py": ""},
            "config-map: ConfigMap suite holds several .py files (a.py, b.py) and no "
            "locustfile.py",
        ),
    ],
)
def test_run_test_refuses_a_config_map_without_one_locustfile(
    ctx: testing.Context, crd: FakeKube, data, message
):
    if data is not None:
        crd.create(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "suite", "namespace": MODEL},
                "data": data,
            }
        )
    crd.clear_requests()

    assert failed(ctx, "run-test", {"name": "suite", "config-map": "suite"}) == message
    assert locust_tests_in(crd) == []
    assert writes(crd) == []


def test_run_test_uses_the_image_parameter_then_the_option(ctx: testing.Context, crd: FakeKube):
    mirror = "registry.example.com/locustio/locust:2.47.0"
    run_action(
        ctx, "run-test", {"name": "a", "locustfile": LOCUSTFILE}, config={"locust-image": mirror}
    )
    run_action(ctx, "run-test", {"name": "b", "locustfile": LOCUSTFILE, "image": "own:1"})

    images = {n: crd.get(V2, "LocustTest", n, namespace=MODEL)["spec"]["image"] for n in "ab"}
    assert images == {"a": mirror, "b": "own:1"}


def test_run_test_without_any_image_fails(ctx: testing.Context, crd: FakeKube):
    message = failed(
        ctx, "run-test", {"name": "a", "locustfile": LOCUSTFILE}, config={"locust-image": ""}
    )

    assert message == (
        "Error in action parameters: no image: give image=... or set the locust-image option"
    )
    assert crd.requests == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give exactly one of locustfile and config-map (neither given)"),
        ({"config-map": "suite"}, "give exactly one of locustfile and config-map (both given)"),
        ({"name": "Smoke Test"}, "name 'Smoke Test' is not a valid LocustTest name"),
        ({"name": "a" * 57}, f"name {'a' * 57!r} is longer than 56 characters"),
        ({"namespace": "No_Such"}, "namespace 'No_Such' is not a valid namespace name"),
        ({"users": 0}, "users must be a whole number of at least 1, not 0"),
        ({"spawn-rate": 0}, "spawn-rate must be a number above 0, not 0"),
        ({"workers": 0}, "workers must be a whole number from 1 to 500, not 0"),
        (
            {"run-time": "5x"},
            "run-time: '5x' is not a Locust run time (for example 300, 90s, 5m or 1h30m)",
        ),
        (
            {"run-time": "30s1m"},
            "run-time: '30s1m' is not a Locust run time (for example 300, 90s, 5m or 1h30m)",
        ),
        ({"run-time": "0s"}, "run-time must be more than 0 seconds (empty: no limit)"),
        ({"host": "https://a b"}, "host 'https://a b' must not contain spaces"),
        ({"image": "locust 2"}, "image 'locust 2' is not an image reference"),
        ({"timeout": 0}, "timeout must be a whole number of seconds, at least 1, not 0"),
        (
            {"thresholds": "p95Ms<500,p95=500"},
            "thresholds: 'p95=500' is not METRIC<VALUE or METRIC>VALUE (optionally @METHOD name)",
        ),
        (
            {"thresholds": "p96Ms<500"},
            "thresholds: 'p96Ms<500': unknown metric 'p96Ms', one of requests, failures, "
            "failRatio, rps, avgMs, p50Ms, p95Ms, p99Ms, maxMs",
        ),
    ],
)
def test_run_test_refuses_invalid_parameters_without_a_request(
    ctx: testing.Context, crd: FakeKube, params, message
):
    given = {"name": "smoke", "locustfile": LOCUSTFILE} | params
    if params == {}:
        del given["locustfile"]

    assert failed(ctx, "run-test", given) == f"Error in action parameters: {message}"
    assert crd.requests == []


def test_run_test_refuses_a_name_in_use_and_changes_nothing(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke")
    crd.clear_requests()

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == (
        f"LocustTest smoke already exists in namespace {MODEL}: choose another name, or delete "
        "it with stop-test name=smoke delete=true"
    )
    assert writes(crd) == []
    assert config_maps_in(crd) == []


def test_run_test_refuses_a_name_whose_config_map_is_taken(ctx: testing.Context, crd: FakeKube):
    crd.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "smoke-locustfile", "namespace": MODEL},
            "data": {"locustfile.py": "# someone else's"},
        }
    )
    crd.clear_requests()

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == (
        f"ConfigMap smoke-locustfile already exists in namespace {MODEL}: choose another test name"
    )
    assert writes(crd) == []


def test_run_test_reports_a_refused_create_in_one_line(ctx: testing.Context, crd: FakeKube):
    crd.faults.add(
        verb="create", resource="locusttests", status=422, message="spec.image: Invalid value"
    )

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert (
        message
        == "kubernetes API error 422 while creating LocustTest smoke: spec.image: Invalid value"
    )
    assert "\n" not in message
    assert (locust_tests_in(crd), config_maps_in(crd)) == ([], [])


def test_run_test_deletes_the_test_when_its_config_map_is_refused(
    ctx: testing.Context, crd: FakeKube
):
    crd.faults.add(verb="create", resource="configmaps", status=500, message="etcd is down")

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == (
        "kubernetes API error 500 while creating ConfigMap smoke-locustfile: etcd is down"
    )
    assert writes(crd) == [
        ("create", "locusttests"),
        ("create", "configmaps"),
        ("delete", "locusttests"),
    ]
    assert locust_tests_in(crd) == []


def test_run_test_says_what_is_left_when_the_roll_back_fails(ctx: testing.Context, crd: FakeKube):
    crd.faults.add(verb="create", resource="configmaps", status=500, message="etcd is down")
    crd.faults.add(verb="delete", resource="locusttests", status=503, message="try later")

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == (
        "kubernetes API error 500 while creating ConfigMap smoke-locustfile: etcd is down; "
        "LocustTest smoke is left: kubernetes API error 503 while deleting LocustTest smoke: "
        "try later"
    )


def test_run_test_without_trust_asks_for_it(ctx: testing.Context, crd: FakeKube):
    crd.faults.add(verb="create", resource="locusttests", status=403)

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == TRUST
    assert (locust_tests_in(crd), config_maps_in(crd)) == ([], [])


def test_run_test_in_a_missing_namespace_fails_in_one_line(ctx: testing.Context, crd: FakeKube):
    message = failed(
        ctx, "run-test", {"name": "smoke", "namespace": "absent", "locustfile": LOCUSTFILE}
    )

    assert message == (
        'kubernetes API error 404 while creating LocustTest smoke: namespaces "absent" not found'
    )


def test_run_test_without_the_crd_fails(ctx: testing.Context, kube: FakeKube):
    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    assert message == (
        "the LocustTest CRD (locusttests.locust.io) serving locust.io/v2 is not installed: see "
        "the leader unit's status"
    )


def test_run_test_refuses_what_the_operator_would_refuse(ctx: testing.Context, crd: FakeKube):
    message = failed(
        ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "image": "x" * 1025}
    )

    assert message.startswith("Error in action parameters: image ")
    assert crd.requests == []


# --- run-test wait=true ----------------------------------------------------------------------


def test_run_test_waits_for_a_passed_verdict(ctx: testing.Context, crd: FakeKube, operator):
    operator(
        "smoke",
        (None, "phase Pending"),
        (running(), "phase Running"),
        (running(results=RUNNING_RESULTS), "phase Running, 10 users, 38.5 rps, 0 failures"),
        (ended(verdict="Passed"), ""),
    )

    results = run_action(
        ctx,
        "run-test",
        {"name": "smoke", "locustfile": LOCUSTFILE, "thresholds": "p95Ms<1000", "wait": True},
    )

    assert results["phase"] == "Succeeded"
    assert results["verdict"] == "Passed"
    assert results["results"]["p95-ms"] == 612
    assert results["results"]["fail-ratio"] == 0.0024
    assert results["results"]["entry-0"]["name"] == "/checkout"
    assert results["thresholds"] == {
        "threshold-0": {
            "metric": "p95Ms",
            "max": 1000,
            "abort-on-fail": False,
            "value": 612,
            "met": True,
        }
    }
    assert results["conditions"]["thresholds-met"]["reason"] == "ThresholdsPassed"
    assert ctx.action_logs == [
        f"Created LocustTest smoke in namespace {MODEL}; waiting for it to end",
        "phase Pending",
        "phase Running",
        "phase Running, 10 users, 38.5 rps, 0 failures",
        "phase Succeeded, 10 users, 41.2 rps, 3 failures, verdict Passed",
    ]


def test_run_test_fails_on_a_failed_verdict_with_the_breach(
    ctx: testing.Context, crd: FakeKube, operator
):
    operator("smoke", (ended(verdict="Failed", message=BREACH), ""))

    with pytest.raises(testing.ActionFailed) as failure:
        run_action(
            ctx,
            "run-test",
            {"name": "smoke", "locustfile": LOCUSTFILE, "thresholds": "p95Ms<500", "wait": True},
        )

    assert failure.value.message == f"verdict Failed: {BREACH}"
    results = ctx.action_results
    assert (results["phase"], results["verdict"]) == ("Succeeded", "Failed")
    assert results["thresholds"]["threshold-0"] == {
        "metric": "p95Ms",
        "max": 500,
        "abort-on-fail": False,
        "value": 612,
        "met": False,
    }


def test_run_test_waits_for_the_verdict_after_the_test_ends(
    ctx: testing.Context, crd: FakeKube, operator
):
    # Locust exits non-zero on any failed request: with thresholds, the verdict decides.
    without_verdict = ended("Failed")
    operator(
        "smoke",
        (without_verdict, "phase Failed, 10 users"),
        (ended("Failed", verdict="Passed"), ""),
    )

    results = run_action(
        ctx,
        "run-test",
        {"name": "smoke", "locustfile": LOCUSTFILE, "thresholds": "failRatio<0.01", "wait": True},
    )

    assert (results["phase"], results["verdict"]) == ("Failed", "Passed")


def test_run_test_fails_on_an_inconclusive_verdict(ctx: testing.Context, crd: FakeKube, operator):
    status = ended(verdict="Inconclusive", message="WebApiUnreachable: connection refused")
    del status["results"]
    operator("smoke", (status, ""))

    message = failed(
        ctx,
        "run-test",
        {"name": "smoke", "locustfile": LOCUSTFILE, "thresholds": "rps>5", "wait": True},
    )

    assert message == "verdict Inconclusive: WebApiUnreachable: connection refused"
    assert ctx.action_results["thresholds"]["threshold-0"] == {
        "metric": "rps",
        "min": 5,
        "abort-on-fail": False,
        "met": False,
    }


def test_run_test_without_thresholds_passes_when_the_test_succeeds(
    ctx: testing.Context, crd: FakeKube, operator
):
    operator("smoke", (ended(), ""))

    results = run_action(
        ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True}
    )

    assert results["phase"] == "Succeeded"
    assert "verdict" not in results
    assert results["results"]["requests"] == 1234


def test_run_test_fails_with_the_reason_a_test_failed(
    ctx: testing.Context, crd: FakeKube, operator
):
    status = ended("Failed")
    status["conditions"].append(
        condition(
            "PodsHealthy",
            "False",
            "CrashLoopBackOff",
            "CrashLoopBackOff: 1 pod(s) affected [smoke-master-x1]",
        )
    )
    operator("smoke", (status, ""))

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True})

    assert message == (
        "LocustTest smoke failed: CrashLoopBackOff: 1 pod(s) affected [smoke-master-x1]"
    )
    assert ctx.action_results["phase"] == "Failed"


def test_run_test_fails_with_the_test_completed_message(
    ctx: testing.Context, crd: FakeKube, operator
):
    operator("smoke", (ended("Failed"), ""))

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True})

    assert message == "LocustTest smoke failed: Test failed"


def test_run_test_times_out_and_leaves_the_test_running(
    ctx: testing.Context, crd: FakeKube, operator
):
    operator("smoke", (running(results=RUNNING_RESULTS), ""))

    message = failed(
        ctx,
        "run-test",
        {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True, "timeout": 1},
    )

    assert message.startswith("timed out after 1s waiting for it to end (LocustTest smoke: ")
    assert message.endswith("it keeps running: stop it with stop-test name=smoke")
    assert locust_tests_in(crd) == ["smoke"]
    assert ctx.action_results == {
        "name": "smoke",
        "namespace": MODEL,
        "config-map": "smoke-locustfile",
    }


def test_run_test_keeps_waiting_through_an_unavailable_api_server(
    ctx: testing.Context, crd: FakeKube, operator
):
    # The first read while waiting (the second list: run-test lists once before creating).
    crd.faults.add(
        verb="list",
        resource="locusttests",
        status=503,
        message="etcd leader changed",
        skip=1,
        times=1,
    )
    operator("smoke", (ended(), ""))

    results = run_action(
        ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True}
    )

    assert results["phase"] == "Succeeded"
    assert (
        "Cannot read the test, trying again: kubernetes API error 503 while reading LocustTest "
        "smoke: etcd leader changed"
    ) in ctx.action_logs


def test_run_test_fails_when_the_test_is_deleted_while_waiting(
    ctx: testing.Context, crd: FakeKube
):
    def delete_it() -> None:
        crd.wait_for(lambda: crd.get(V2, "LocustTest", "smoke", namespace=MODEL))
        crd.delete(V2, "LocustTest", "smoke", namespace=MODEL)

    deleter = threading.Thread(target=delete_it, daemon=True)
    deleter.start()

    message = failed(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE, "wait": True})

    deleter.join(10)
    assert message == "LocustTest smoke was deleted while waiting for it to end"


# --- stop-test -------------------------------------------------------------------------------


class Locust(BaseHTTPRequestHandler):
    """Locust's web API on the master pod's address: records each request."""

    server: LocustServer

    def do_POST(self) -> None:
        self.server.seen.append(("POST", self.path))
        body = json.dumps({"success": True, "message": "Test stopped"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocustServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str):
        super().__init__((address, 8089), Locust)
        self.seen: list[tuple[str, str]] = []


def master_pod(kube: FakeKube, name: str, ip: str | None = None) -> str:
    """The test's master Job with one Running pod (at `ip`, if given)."""
    kube.create(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{name}-master", "namespace": MODEL},
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "locust", "image": DEFAULT_IMAGE}],
                    }
                }
            },
        }
    )
    (pod,) = kube.jobs.create_pods(MODEL, f"{name}-master", 1)
    pod_name = pod["metadata"]["name"]
    if ip:
        kube.patch_status("v1", "Pod", pod_name, {"podIP": ip}, namespace=MODEL)
    kube.jobs.set_pod_phase(MODEL, pod_name, "Running")
    return pod_name


def test_stop_test_posts_stop_to_locust_through_the_pod_proxy(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke", status=running())
    pod = master_pod(crd, "smoke")
    crd.clear_requests()
    crd.faults.add(
        resource="pods", subresource="proxy", status=503, message="connect: connection refused"
    )

    message = failed(ctx, "stop-test", {"name": "smoke"})

    assert message == (
        f"could not stop LocustTest smoke through Locust on pod {pod}: 503 connect: connection "
        "refused"
    )
    (proxied,) = [r for r in crd.requests if r.resource == "pods" and r.subresource == "proxy"]
    assert (proxied.method, proxied.verb, proxied.name, proxied.path) == (
        "POST",
        "create",
        f"{pod}:8089",
        f"/api/v1/namespaces/{MODEL}/pods/{pod}:8089/proxy/stop",
    )


def test_stop_test_stops_locust_on_the_master_pod(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke", status=running())
    locust = LocustServer("127.0.89.7")
    threading.Thread(target=locust.serve_forever, daemon=True).start()
    try:
        pod = master_pod(crd, "smoke", ip="127.0.89.7")

        results = run_action(ctx, "stop-test", {"name": "smoke"})
    finally:
        locust.shutdown()
        locust.server_close()

    assert results == {"name": "smoke", "namespace": MODEL, "stopped": True, "master-pod": pod}
    assert locust.seen == [("POST", "/stop")]
    assert locust_tests_in(crd) == ["smoke"]


def test_stop_test_without_a_running_master_fails(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke", status={"phase": "Pending"})

    message = failed(ctx, "stop-test", {"name": "smoke"})

    assert message == "LocustTest smoke has no running master pod (Job smoke-master)"


def test_stop_test_on_an_ended_test_fails(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke", status=ended())
    crd.clear_requests()

    message = failed(ctx, "stop-test", {"name": "smoke"})

    assert message == "LocustTest smoke has already ended (phase Succeeded): nothing to stop"
    assert writes(crd) == []


def test_stop_test_of_a_missing_test_fails(ctx: testing.Context, crd: FakeKube):
    message = failed(ctx, "stop-test", {"name": "nope", "namespace": "staging"})

    assert message == "LocustTest nope not found in namespace staging"


def test_stop_test_delete_deletes_the_test_and_what_it_owns(ctx: testing.Context, crd: FakeKube):
    run_action(ctx, "run-test", {"name": "smoke", "locustfile": LOCUSTFILE})

    results = run_action(ctx, "stop-test", {"name": "smoke", "delete": True})

    assert results == {"name": "smoke", "namespace": MODEL, "deleted": True}
    assert locust_tests_in(crd) == []
    crd.wait_for(lambda: config_maps_in(crd) == [], message="the ConfigMap collected")


# --- test-results ----------------------------------------------------------------------------


def test_test_results_shows_results_verdict_thresholds_and_report(
    ctx: testing.Context, crd: FakeKube
):
    make_test(
        crd,
        "smoke",
        thresholds=[
            {"metric": "p95Ms", "max": 500, "request": "GET /checkout"},
            {"metric": "failRatio", "max": 0.01},
            {"metric": "rps", "min": 50, "request": "POST /cart"},
        ],
        status=ended(verdict="Failed", message=BREACH),
    )
    crd.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "smoke-report", "namespace": MODEL},
            "binaryData": {"report.html.gz": "H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA=="},
        }
    )

    results = run_action(ctx, "test-results", {"name": "smoke"})

    assert results == {
        "name": "smoke",
        "namespace": MODEL,
        "phase": "Succeeded",
        "verdict": "Failed",
        "results": {
            "observed-at": "2026-12-03T18:00:00Z",
            "state": "stopped",
            "final": True,
            "users": 10,
            "workers": 1,
            "requests": 1234,
            "failures": 3,
            "fail-ratio": 0.0024,
            "fail-percent": 0.24,
            "rps": 41.2,
            "avg-ms": 12.3,
            "p50-ms": 10,
            "p95-ms": 612,
            "p99-ms": 800,
            "max-ms": 1200,
            "entry-0": {
                "method": "GET",
                "name": "/checkout",
                "requests": 600,
                "failures": 1,
                "rps": 20.1,
                "avg-ms": 11.0,
                "p50-ms": 9,
                "p95-ms": 612,
                "p99-ms": 700,
                "max-ms": 1100,
            },
        },
        "thresholds": {
            "threshold-0": {
                "metric": "p95Ms",
                "max": 500,
                "request": "GET /checkout",
                "abort-on-fail": False,
                "value": 612,
                "met": False,
            },
            "threshold-1": {
                "metric": "failRatio",
                "max": 0.01,
                "abort-on-fail": False,
                "value": 0.0024,
                "met": True,
            },
            # No such request in the results: not met.
            "threshold-2": {
                "metric": "rps",
                "min": 50,
                "request": "POST /cart",
                "abort-on-fail": False,
                "met": False,
            },
        },
        "conditions": {
            "results-available": {
                "status": "True",
                "reason": "ResultsRead",
                "message": "Read the final results",
            },
            "thresholds-met": {
                "status": "False",
                "reason": "ThresholdsBreached",
                "message": BREACH,
            },
        },
        "report-config-map": "smoke-report",
    }


def test_test_results_as_json_is_the_whole_document_in_one_string(
    ctx: testing.Context, crd: FakeKube
):
    make_test(
        crd,
        "smoke",
        thresholds=[{"metric": "p95Ms", "max": 1000}],
        status=ended(verdict="Passed"),
    )

    results = run_action(ctx, "test-results", {"name": "smoke", "format": "json"})

    assert set(results) == {"name", "namespace", "phase", "verdict", "results"}
    document = json.loads(results["results"])
    assert document["results"] == RESULTS
    assert document["verdict"] == "Passed"
    assert document["thresholds"] == [
        {"metric": "p95Ms", "max": 1000, "abortOnFail": False, "value": 612, "met": True}
    ]
    assert "reportConfigMap" not in document


def test_test_results_before_any_results(ctx: testing.Context, crd: FakeKube):
    make_test(crd, "smoke")

    results = run_action(ctx, "test-results", {"name": "smoke"})

    assert results == {"name": "smoke", "namespace": MODEL, "phase": "Pending"}


def test_test_results_of_a_missing_test_fails(ctx: testing.Context, crd: FakeKube):
    assert failed(ctx, "test-results", {"name": "nope"}) == (
        f"LocustTest nope not found in namespace {MODEL}"
    )


def test_test_results_refuses_an_unknown_format(ctx: testing.Context, crd: FakeKube):
    message = failed(ctx, "test-results", {"name": "smoke", "format": "xml"})

    assert message == "Error in action parameters: format must be yaml or json, not 'xml'"
