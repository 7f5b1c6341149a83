"""The load_test charm library on both sides, and the charm's load-test relation on the fake.

A minimal requirer charm (`ShopCharm`, defined here) declares tests through `LoadTestRequirer`
and records the results it is given; the Locust operator charm provides them: it creates one
LocustTest and ConfigMap per declared test on the fake API server, publishes what the tests'
status says, and deletes them when the relation goes. The tests play the reconciler's part by
writing the LocustTest's status, as it does.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import ops
import pytest
from ops import testing

import charm_config
from charms.locust_operator.v0.load_test import (
    SUMMARY_KEYS,
    THRESHOLD_METRICS,
    InvalidTestError,
    LoadTest,
    LoadTestProvider,
    LoadTestRequirer,
    ResultsChangedEvent,
    TestResult,
    Threshold,
)
from fakekube.server import FakeKube
from load_test_relation import NOTICE_KEY, REFRESH_KEY
from reconciler.api import types
from reconciler.crds import crd_manifest
from reconciler.status.results import Entry, Results
from tests.unit.charm.conftest import CRD, MODEL, default_env, established, running_container
from tests.unit.charm.conftest import state as unit_state

V2 = "locust.io/v2"
LOCUSTFILE = """\
from locust import HttpUser, task


class Shopper(HttpUser):
    @task
    def home(self):
        self.client.get("/")
"""
SMOKE = LoadTest(
    name="smoke",
    locustfile=LOCUSTFILE,
    host="http://shop.shop.svc:8080",
    users=20,
    spawn_rate=2.5,
    run_time="2m",
    workers=2,
    thresholds=(
        Threshold("p95Ms", max=500, request="GET /checkout"),
        Threshold("rps", min=50, abort_on_fail=True),
    ),
)
SMOKE_DATA = {
    "name": "smoke",
    "locustfile": LOCUSTFILE,
    "host": "http://shop.shop.svc:8080",
    "users": 20,
    "spawnRate": 2.5,
    "runTime": "2m",
    "workers": 2,
    "thresholds": [
        {"metric": "p95Ms", "max": 500, "request": "GET /checkout"},
        {"metric": "rps", "min": 50, "abortOnFail": True},
    ],
}
SOAK_DATA = {"name": "soak", "locustfile": LOCUSTFILE, "runTime": "30m", "users": 5}
# What the reconciler writes once Locust has settled (the results contract's status.results).
RESULTS = {
    "observedAt": "2026-12-03T18:00:00Z",
    "state": "stopped",
    "final": True,
    "users": 20,
    "workers": 2,
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
    "entries": [{"method": "GET", "name": "/checkout", "requests": 600, "failures": 1}],
}
SUMMARY = {k: v for k, v in RESULTS.items() if k not in ("entries", "failPercent")}
BREACH = "p95Ms 612 > 500 on GET /checkout; rps 41.2 < 50 on Aggregated"


# --- A minimal requirer charm ---------------------------------------------------------------

SHOP_META = {
    "name": "shop",
    "requires": {"load-test": {"interface": "locust_load_test", "limit": 1}},
}


class ShopCharm(ops.CharmBase):
    """Asks for the smoke test; remembers the results it was told of."""

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.load_test = LoadTestRequirer(self, tests=lambda: [SMOKE])
        self.told: dict[str, TestResult] | None = None
        framework.observe(self.load_test.on.results_changed, self._on_results_changed)

    def _on_results_changed(self, event: ResultsChangedEvent) -> None:
        self.told = event.results


@pytest.fixture
def shop() -> testing.Context[ShopCharm]:
    return testing.Context(ShopCharm, meta=SHOP_META)


def results_events(ctx: testing.Context) -> list[ResultsChangedEvent]:
    return [e for e in ctx.emitted_events if isinstance(e, ResultsChangedEvent)]


def test_the_requirer_leader_declares_its_tests_when_the_relation_is_made(shop):
    relation = testing.Relation("load-test", remote_app_name="locust-operator")

    out = shop.run(
        shop.on.relation_joined(relation), testing.State(leader=True, relations={relation})
    )

    databag = out.get_relation(relation.id).local_app_data
    assert databag["version"] == "1"
    assert json.loads(databag["tests"]) == [SMOKE_DATA]


def test_a_requirer_unit_that_is_not_the_leader_writes_nothing(shop):
    relation = testing.Relation("load-test", remote_app_name="locust-operator")

    out = shop.run(shop.on.relation_joined(relation), testing.State(relations={relation}))

    assert out.get_relation(relation.id).local_app_data == {}


def test_the_requirer_is_told_the_results_once_per_change(shop):
    published = {
        "version": "1",
        "results": json.dumps(
            {
                "smoke": {
                    "phase": "Succeeded",
                    "verdict": "Failed",
                    "message": BREACH,
                    "summary": SUMMARY,
                    "locustTest": "shop-smoke",
                }
            }
        ),
    }
    relation = testing.Relation(
        "load-test", remote_app_name="locust-operator", remote_app_data=published
    )

    with shop(shop.on.relation_changed(relation), testing.State(relations={relation})) as mgr:
        out = mgr.run()
        told = mgr.charm.told
        read = mgr.charm.load_test.results()

    expected = TestResult(
        phase="Succeeded",
        verdict="Failed",
        message=BREACH,
        summary=SUMMARY,
        locust_test="shop-smoke",
    )
    assert told == read == {"smoke": expected}
    assert expected.finished and not expected.passed
    # The same data again (another unit's change, say): no new event.
    shop.run(shop.on.relation_changed(relation), out)
    assert len(results_events(shop)) == 1


def test_the_requirer_ignores_results_of_a_schema_it_does_not_know(shop):
    relation = testing.Relation(
        "load-test",
        remote_app_name="locust-operator",
        remote_app_data={"version": "2", "results": json.dumps({"smoke": {"phase": "Running"}})},
    )

    with shop(shop.on.relation_changed(relation), testing.State(relations={relation})) as mgr:
        mgr.run()
        assert mgr.charm.load_test.results() == {}
        assert mgr.charm.told == {}


def test_the_requirer_reads_the_providers_complaint_about_its_whole_request(shop):
    complaint = "version: unsupported schema version '0', expected '1'"
    relation = testing.Relation(
        "load-test",
        remote_app_name="locust-operator",
        remote_app_data={"version": "1", "results": "{}", "error": complaint},
    )

    with shop(shop.on.relation_changed(relation), testing.State(relations={relation})) as mgr:
        mgr.run()
        assert mgr.charm.load_test.error() == complaint
        assert mgr.charm.load_test.results() == {}


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: LoadTest("Smoke", LOCUSTFILE, "1m"), "name: 'Smoke' is not an RFC 1123 label"),
        (lambda: LoadTest("smoke", " ", "1m"), "locustfile: required"),
        (lambda: LoadTest("smoke", LOCUSTFILE, "1m", users=0), "users: must be an integer >= 1"),
        (
            lambda: LoadTest("smoke", LOCUSTFILE, "1m", spawn_rate=0),
            "spawnRate: must be a number > 0",
        ),
        (lambda: LoadTest("smoke", LOCUSTFILE, run_time="5 min"), "runTime: '5 min' is not"),
        (lambda: LoadTest("smoke", LOCUSTFILE, run_time=""), "runTime: required"),
        (
            lambda: LoadTest("smoke", LOCUSTFILE, "1m", workers=501),
            "workers: must be an integer from",
        ),
        (lambda: LoadTest("smoke", LOCUSTFILE, "1m", host="http://a b"), "host: must be a URL"),
        (lambda: Threshold("p96Ms", max=1), "metric: unknown metric 'p96Ms', one of requests"),
        (lambda: Threshold("rps", max=1, min=0), "exactly one of max and min"),
        (lambda: Threshold("rps", min=1, request="/checkout"), 'request: must be "METHOD name"'),
    ],
)
def test_an_invalid_test_cannot_be_built(make, problem):
    with pytest.raises(InvalidTestError) as raised:
        make()
    assert str(raised.value).startswith(problem)


def test_request_refuses_two_tests_of_one_name(shop):
    relation = testing.Relation("load-test", remote_app_name="locust-operator")
    with shop(shop.on.update_status(), testing.State(leader=True, relations={relation})) as mgr:
        charm = mgr.charm
        out = mgr.run()
    with pytest.raises(InvalidTestError, match="name: 'smoke' is given more than once"):
        charm.load_test.request([SMOKE, SMOKE])
    assert out.get_relation(relation.id).local_app_data == {}


# --- The provider side of the library, in a minimal provider charm ---------------------------

PROVIDER_META = {"name": "runner", "provides": {"load-test": {"interface": "locust_load_test"}}}


class RunnerCharm(ops.CharmBase):
    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        self.load_test = LoadTestProvider(self)


def requested(tests: list[Any], version: str = "1") -> dict[str, str]:
    return {"version": version, "tests": json.dumps(tests)}


def test_the_provider_reads_valid_tests_and_answers_each_invalid_one_with_an_error():
    ctx = testing.Context(RunnerCharm, meta=PROVIDER_META)
    tests = [
        SMOKE_DATA,
        SOAK_DATA | {"users": 0},
        {"name": "typo", "locustfile": LOCUSTFILE, "runTime": "1m", "spawn-rate": 5},
        {"name": "bad-threshold", "locustfile": LOCUSTFILE, "thresholds": [{"metric": "rps"}]},
        {"locustfile": LOCUSTFILE, "runTime": "1m"},
        {"name": "endless", "locustfile": LOCUSTFILE},
        {"name": "twice", "locustfile": LOCUSTFILE, "runTime": "1m"},
        {"name": "twice", "locustfile": LOCUSTFILE, "runTime": "1m"},
        "not an object",
    ]
    relation = testing.Relation(
        "load-test", remote_app_name="shop", remote_app_data=requested(tests)
    )

    with ctx(
        ctx.on.relation_changed(relation), testing.State(leader=True, relations={relation})
    ) as mgr:
        mgr.run()
        [request] = mgr.charm.load_test.requests()

    assert request.app == "shop"
    assert request.error is None
    assert request.tests == {"smoke": SMOKE}
    assert request.errors == {
        "soak": "users: must be an integer >= 1, got 0",
        "typo": "unknown field 'spawn-rate'",
        "bad-threshold": "thresholds[0]: exactly one of max and min must be given",
        "tests[4]": "name: required",
        "endless": "runTime: required: a test given over the relation must end to have results",
        "twice": "name: 'twice' is given 2 times",
        "tests[8]": "must be an object, got str",
    }
    assert [type(e).__name__ for e in ctx.emitted_events].count("TestsRequestedEvent") == 1


@pytest.mark.parametrize(
    ("databag", "problem"),
    [
        (requested([SMOKE_DATA], version="2"), "version: unsupported schema version '2'"),
        ({"version": "1", "tests": "[{"}, "tests: not JSON"),
        ({"version": "1", "tests": '{"smoke": {}}'}, "tests: must be a JSON list"),
    ],
)
def test_an_unusable_databag_is_one_error_for_the_relation(databag, problem):
    ctx = testing.Context(RunnerCharm, meta=PROVIDER_META)
    relation = testing.Relation("load-test", remote_app_name="shop", remote_app_data=databag)

    with ctx(ctx.on.relation_changed(relation), testing.State(relations={relation})) as mgr:
        mgr.run()
        [request] = mgr.charm.load_test.requests()

    assert request.error is not None and request.error.startswith(problem)
    assert request.tests == {} and request.errors == {}


def test_the_provider_publishes_results_the_requirer_reads():
    ctx = testing.Context(RunnerCharm, meta=PROVIDER_META)
    relation = testing.Relation("load-test", remote_app_name="shop")
    result = TestResult(phase="Running", summary={"rps": 12.5}, locust_test="shop-smoke")

    with ctx(ctx.on.update_status(), testing.State(leader=True, relations={relation})) as mgr:
        charm = mgr.charm
        charm.load_test.publish(charm.model.get_relation("load-test"), {"smoke": result})
        out = mgr.run()

    databag = out.get_relation(relation.id).local_app_data
    assert databag["version"] == "1"
    assert json.loads(databag["results"]) == {
        "smoke": {"phase": "Running", "summary": {"rps": 12.5}, "locustTest": "shop-smoke"}
    }
    assert "error" not in databag


# --- The Locust operator charm on the fake API server -------------------------------------------


@pytest.fixture
def crd(kube: FakeKube) -> FakeKube:
    kube.create(crd_manifest())
    kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
    kube.clear_requests()
    return kube


def state(**kwargs: Any) -> testing.State:
    """A unit whose reconciler runs and is ready."""
    kwargs.setdefault("containers", {reconciler()})
    return unit_state(**kwargs)


def reconciler(*notices: testing.Notice) -> testing.Container:
    """The workload container, its reconciler running and ready, with `notices` recorded."""
    return running_container(default_env(), notices=list(notices))


def shop_relation(tests: list[Any] | None = None, **kwargs: Any) -> testing.Relation:
    data = requested([SMOKE_DATA] if tests is None else tests)
    kwargs.setdefault("remote_app_name", "shop")
    return testing.Relation("load-test", remote_app_data=data, **kwargs)


def locust_tests(kube: FakeKube) -> dict[str, dict]:
    return {t["metadata"]["name"]: t for t in kube.list(V2, "LocustTest", namespace=MODEL)}


def config_maps(kube: FakeKube) -> dict[str, dict]:
    return {
        c["metadata"]["name"]: c
        for c in kube.list("v1", "ConfigMap", namespace=MODEL)
        if c["metadata"]["name"] != "kube-root-ca.crt"
    }


def published(out: testing.State, relation: testing.Relation) -> dict[str, Any]:
    databag = out.get_relation(relation.id).local_app_data
    assert databag["version"] == "1"
    return json.loads(databag["results"])


def labels_for(relation: testing.Relation, test: str, requirer: str = "shop") -> dict[str, str]:
    return {
        "load-test.locust.io/provider": "locust-operator",
        "load-test.locust.io/relation-id": str(relation.id),
        "load-test.locust.io/requirer": requirer,
        "load-test.locust.io/test": test,
    }


def test_the_leader_creates_a_locust_test_and_its_configmap_per_declared_test(ctx, crd):
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    test = locust_tests(crd)["shop-smoke"]
    assert test["metadata"]["labels"] == labels_for(relation, "smoke")
    assert test["spec"]["image"] == charm_config.DEFAULT_LOCUST_IMAGE
    assert test["spec"]["master"]["command"] == (
        "--locustfile /lotest/src/locustfile.py --host http://shop.shop.svc:8080 --users 20 "
        "--spawn-rate 2.5 --run-time 2m"
    )
    assert test["spec"]["worker"]["command"] == "--locustfile /lotest/src/locustfile.py"
    assert test["spec"]["worker"]["replicas"] == 2
    assert test["spec"]["testFiles"]["configMapRef"] == "shop-smoke-locustfile"
    assert test["spec"]["thresholds"] == [
        {"metric": "p95Ms", "max": 500, "request": "GET /checkout", "abortOnFail": False},
        {"metric": "rps", "min": 50, "abortOnFail": True},
    ]
    config_map = config_maps(crd)["shop-smoke-locustfile"]
    assert config_map["data"] == {"locustfile.py": LOCUSTFILE}
    assert config_map["metadata"]["labels"] == labels_for(relation, "smoke")
    [owner] = config_map["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "LocustTest",
        "shop-smoke",
        test["metadata"]["uid"],
    )
    assert published(out, relation) == {"smoke": {"phase": "Pending", "locustTest": "shop-smoke"}}
    assert out.unit_status == testing.ActiveStatus()


def test_a_unit_that_is_not_the_leader_creates_nothing(ctx, crd):
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(relations={relation}))

    assert locust_tests(crd) == {}
    assert out.get_relation(relation.id).local_app_data == {}


def test_invalid_tests_are_answered_in_the_relation_and_noted_in_the_status(ctx, crd):
    long_name = "a-rather-long-test-name-that-cannot-fit-its-locusttest"
    relation = shop_relation(
        [SMOKE_DATA, SOAK_DATA | {"users": 0}, SOAK_DATA | {"name": long_name}]
    )

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    assert sorted(locust_tests(crd)) == ["shop-smoke"]
    results = published(out, relation)
    assert results["soak"] == {
        "phase": "Invalid",
        "error": "users: must be an integer >= 1, got 0",
    }
    assert results[long_name] == {
        "phase": "Invalid",
        "error": f"name: the LocustTest would be 'shop-{long_name}', 59 characters, over 56: use "
        "a name of at most 51",
    }
    assert results["smoke"]["phase"] == "Pending"
    note = (
        f"load-test: shop: test {long_name}: name: the LocustTest would be 'shop-{long_name}', "
        "59 characters, over 56: use a name of at most 51 (and 1 more)"
    )
    assert out.unit_status == testing.ActiveStatus(note)
    assert out.app_status == testing.ActiveStatus(note)


def test_an_unusable_databag_is_answered_with_an_error(ctx, crd):
    relation = testing.Relation(
        "load-test", remote_app_name="shop", remote_app_data=requested([SMOKE_DATA], "7")
    )

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    databag = out.get_relation(relation.id).local_app_data
    assert databag["error"] == "version: unsupported schema version '7', expected '1'"
    assert json.loads(databag["results"]) == {}
    assert locust_tests(crd) == {}
    assert out.unit_status == testing.ActiveStatus(f"load-test: shop: {databag['error']}")

    fixed = shop_relation(id=relation.id, local_app_data=dict(databag))
    out = ctx.run(ctx.on.relation_changed(fixed), replace(out, relations={fixed}))

    assert "error" not in out.get_relation(relation.id).local_app_data
    assert sorted(published(out, fixed)) == ["smoke"]
    assert out.unit_status == testing.ActiveStatus()


def test_a_name_taken_by_a_test_of_someone_else_is_refused(ctx, crd):
    crd.create(
        {
            "apiVersion": V2,
            "kind": "LocustTest",
            "metadata": {"name": "shop-smoke", "namespace": MODEL},
            "spec": {
                "image": "mine",
                "master": {"command": "--locustfile /lotest/src/mine.py"},
                "worker": {"command": "--locustfile /lotest/src/mine.py", "replicas": 1},
            },
        }
    )
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    assert published(out, relation)["smoke"] == {
        "phase": "Invalid",
        "error": f"name: LocustTest shop-smoke already exists in namespace {MODEL} and was not "
        "made for this relation",
    }
    assert locust_tests(crd)["shop-smoke"]["spec"]["image"] == "mine"
    assert config_maps(crd) == {}


def test_a_configmap_name_taken_by_someone_else_is_refused_and_nothing_is_left(ctx, crd):
    crd.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-smoke-locustfile", "namespace": MODEL},
            "data": {"mine.py": "pass"},
        }
    )
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    assert published(out, relation)["smoke"] == {
        "phase": "Invalid",
        "error": f"name: ConfigMap shop-smoke-locustfile already exists in namespace {MODEL} "
        "and was not made for this relation",
    }
    assert locust_tests(crd) == {}
    assert config_maps(crd)["shop-smoke-locustfile"]["data"] == {"mine.py": "pass"}


def test_an_object_the_api_server_refuses_fails_that_test_alone(ctx, crd):
    crd.faults.add(
        verb="create",
        resource="configmaps",
        status=422,
        times=1,  # the first is smoke's
        message='ConfigMap "shop-smoke-locustfile" is invalid: data: Too long',
    )
    relation = shop_relation([SMOKE_DATA, SOAK_DATA])

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    results = published(out, relation)
    assert results["smoke"]["phase"] == "Invalid"
    assert results["smoke"]["error"].startswith(
        "the API server refused ConfigMap shop-smoke-locustfile: "
    )
    assert results["soak"]["phase"] == "Pending"
    # Nothing half-made stays: no LocustTest without its locustfile.
    assert sorted(locust_tests(crd)) == ["shop-soak"]


def test_an_api_failure_is_a_status_note_and_the_next_hook_retries(ctx, crd):
    crd.faults.add(verb="create", resource="locusttests", status=500, times=1)
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.startswith(
        "load-test: kubernetes API error 500 while creating LocustTest shop-smoke: "
    )
    assert locust_tests(crd) == {}
    assert out.get_relation(relation.id).local_app_data == {}

    again = ctx.run(ctx.on.update_status(), out)

    assert sorted(locust_tests(crd)) == ["shop-smoke"]
    assert published(again, relation)["smoke"]["phase"] == "Pending"
    assert again.unit_status == testing.ActiveStatus()


def test_relation_broken_deletes_that_relations_tests_only(ctx, crd):
    shop = shop_relation()
    cart = shop_relation(remote_app_name="cart")
    before = state(leader=True, relations={shop, cart})
    ctx.run(ctx.on.relation_changed(shop), before)
    ctx.run(ctx.on.relation_changed(cart), before)
    assert sorted(locust_tests(crd)) == ["cart-smoke", "shop-smoke"]

    ctx.run(ctx.on.relation_broken(shop), before)

    assert sorted(locust_tests(crd)) == ["cart-smoke"]
    assert sorted(config_maps(crd)) == ["cart-smoke-locustfile"]


def test_a_test_taken_off_the_list_is_deleted(ctx, crd):
    relation = shop_relation([SMOKE_DATA, SOAK_DATA])
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    assert sorted(locust_tests(crd)) == ["shop-smoke", "shop-soak"]

    fewer = shop_relation([SOAK_DATA], id=relation.id)
    out = ctx.run(ctx.on.relation_changed(fewer), state(leader=True, relations={fewer}))

    assert sorted(locust_tests(crd)) == ["shop-soak"]
    assert sorted(config_maps(crd)) == ["shop-soak-locustfile"]
    assert sorted(published(out, fewer)) == ["soak"]


def test_a_changed_definition_replaces_the_test(ctx, crd):
    relation = shop_relation()
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    first = locust_tests(crd)["shop-smoke"]["metadata"]["uid"]

    changed = shop_relation([SMOKE_DATA | {"users": 50}], id=relation.id)
    ctx.run(ctx.on.relation_changed(changed), state(leader=True, relations={changed}))

    test = locust_tests(crd)["shop-smoke"]
    assert test["metadata"]["uid"] != first
    assert "--users 50" in test["spec"]["master"]["command"]
    [owner] = config_maps(crd)["shop-smoke-locustfile"]["metadata"]["ownerReferences"]
    assert owner["uid"] == test["metadata"]["uid"]


def write_status(kube: FakeKube, name: str, status: dict[str, Any]) -> None:
    kube.patch_status(V2, "LocustTest", name, status, namespace=MODEL)


def condition(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2026-12-03T18:00:00Z",
    }


def test_a_test_changed_notice_publishes_the_results(ctx, crd):
    relation = shop_relation()
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    write_status(
        crd,
        "shop-smoke",
        {
            "phase": "Succeeded",
            "results": RESULTS,
            "verdict": "Failed",
            "conditions": [condition("ThresholdsMet", "False", "ThresholdsBreached", BREACH)],
        },
    )
    notice = testing.Notice(NOTICE_KEY)
    container = reconciler(notice)

    out = ctx.run(
        ctx.on.pebble_custom_notice(container, notice),
        state(leader=True, relations={relation}, containers={container}),
    )

    assert published(out, relation) == {
        "smoke": {
            "phase": "Succeeded",
            "verdict": "Failed",
            "message": BREACH,
            "summary": SUMMARY,
            "locustTest": "shop-smoke",
        }
    }


def test_another_notice_is_not_a_reason_to_refresh(ctx, crd):
    relation = shop_relation()
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    crd.clear_requests()
    notice = testing.Notice("example.com/something-else")
    container = reconciler(notice)

    ctx.run(
        ctx.on.pebble_custom_notice(container, notice),
        state(leader=True, relations={relation}, containers={container}),
    )

    assert [r for r in crd.requests if r.resource == "locusttests"] == []


def test_a_unit_that_is_not_the_leader_passes_the_notice_on_to_the_leader(ctx, crd):
    relation = shop_relation()
    peer = testing.PeerRelation("peers")
    notice = testing.Notice(NOTICE_KEY)
    container = reconciler(notice)

    out = ctx.run(
        ctx.on.pebble_custom_notice(container, notice),
        state(relations={relation, peer}, containers={container}),
    )

    assert REFRESH_KEY in out.get_relation(peer.id).local_unit_data
    assert locust_tests(crd) == {}
    # The leader hears of it as a change of the peer's data, and refreshes.
    nudged = testing.PeerRelation(
        "peers", id=peer.id, peers_data={1: dict(out.get_relation(peer.id).local_unit_data)}
    )
    leader = ctx.run(
        ctx.on.relation_changed(nudged, remote_unit=1),
        state(leader=True, relations={relation, nudged}),
    )
    assert sorted(locust_tests(crd)) == ["shop-smoke"]
    assert published(leader, relation)["smoke"]["phase"] == "Pending"


def test_a_new_leader_catches_up_at_once(ctx, crd):
    relation = shop_relation()

    out = ctx.run(ctx.on.leader_elected(), state(leader=True, relations={relation}))

    assert sorted(locust_tests(crd)) == ["shop-smoke"]
    assert published(out, relation)["smoke"]["phase"] == "Pending"


def test_update_status_refreshes_the_results(ctx, crd):
    relation = shop_relation()
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    write_status(crd, "shop-smoke", {"phase": "Running"})

    out = ctx.run(ctx.on.update_status(), state(leader=True, relations={relation}))

    assert published(out, relation)["smoke"]["phase"] == "Running"


def test_without_a_cluster_the_hook_succeeds_and_the_status_says_why(ctx):
    relation = shop_relation()

    out = ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))

    assert isinstance(out.unit_status, testing.ActiveStatus)
    assert out.unit_status.message.startswith("load-test: no Kubernetes credentials")
    assert out.get_relation(relation.id).local_app_data == {}


def test_results_go_from_the_operator_back_to_the_requiring_charm(shop, ctx, crd):
    """The whole round: ShopCharm asks, the operator creates the test, the reconciler's status
    comes back to ShopCharm as a results_changed event."""
    asking = testing.Relation("load-test", remote_app_name="locust-operator")
    asked = shop.run(
        shop.on.relation_joined(asking), testing.State(leader=True, relations={asking})
    )
    tests = asked.get_relation(asking.id).local_app_data
    relation = testing.Relation("load-test", remote_app_name="shop", remote_app_data=dict(tests))
    ctx.run(ctx.on.relation_changed(relation), state(leader=True, relations={relation}))
    write_status(
        crd,
        "shop-smoke",
        {
            "phase": "Succeeded",
            "results": RESULTS,
            "verdict": "Passed",
            "conditions": [condition("ThresholdsMet", "True", "ThresholdsPassed", "met")],
        },
    )
    notice = testing.Notice(NOTICE_KEY)
    container = reconciler(notice)
    answered = ctx.run(
        ctx.on.pebble_custom_notice(container, notice),
        state(leader=True, relations={relation}, containers={container}),
    )

    back = testing.Relation(
        "load-test",
        remote_app_name="locust-operator",
        remote_app_data=dict(answered.get_relation(relation.id).local_app_data),
    )
    with shop(shop.on.relation_changed(back), testing.State(relations={back})) as mgr:
        mgr.run()
        told = mgr.charm.told

    assert told == {
        "smoke": TestResult(
            phase="Succeeded", verdict="Passed", summary=SUMMARY, locust_test="shop-smoke"
        )
    }
    assert told["smoke"].passed


# --- The library file itself ----------------------------------------------------------------

LIB = Path(__file__).resolve().parents[3] / "lib/charms/locust_operator/v0/load_test.py"


def test_the_library_needs_nothing_but_ops_and_the_standard_library():
    """A requirer charm has neither the reconciler package nor this charm's modules."""
    tree = ast.parse(LIB.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported - set(sys.stdlib_module_names) == {"ops"}


def test_the_library_carries_the_charmhub_library_fields():
    values = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(LIB.read_text()).body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("LIBID", "LIBAPI", "LIBPATCH", "PYDEPS")
    }
    assert re.fullmatch(r"[0-9a-f]{32}", values["LIBID"])
    assert (values["LIBAPI"], values["LIBPATCH"]) == (0, 1)
    assert "PYDEPS" not in values  # nothing beyond ops


class DeferringShopCharm(ShopCharm):
    """Defers the results the first time, as a charm busy with something else would."""

    def _on_results_changed(self, event: ResultsChangedEvent) -> None:
        if not self.unit.is_leader():
            event.defer()
            return
        super()._on_results_changed(event)


def test_a_deferred_results_changed_event_keeps_its_results():
    shop = testing.Context(DeferringShopCharm, meta=SHOP_META)
    result = {"phase": "Running", "summary": {"rps": 12.5}, "locustTest": "shop-smoke"}
    relation = testing.Relation(
        "load-test",
        remote_app_name="locust-operator",
        remote_app_data={"version": "1", "results": json.dumps({"smoke": result})},
    )
    deferred = shop.run(shop.on.relation_changed(relation), testing.State(relations={relation}))
    assert len(deferred.deferred) == 1

    with shop(shop.on.update_status(), replace(deferred, leader=True)) as mgr:
        mgr.run()
        told = mgr.charm.told

    assert told == {"smoke": TestResult.from_dict(result)}


def test_the_library_speaks_the_operators_vocabulary():
    """The library cannot import the operator, so it keeps its own copies: they must agree."""
    assert THRESHOLD_METRICS == types.THRESHOLD_METRICS
    total = Entry("", "Aggregated", 10, 1, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    document = Results(datetime.now(timezone.utc), "stopped", 1, 1, total, ()).to_status()
    assert set(SUMMARY_KEYS) <= set(document)
