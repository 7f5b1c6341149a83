"""Thresholds, results and the verdict in the API: what the API server (the fake, which refuses
what Kubernetes refuses) accepts in a LocustTest's spec and status, and what `kubectl get`
prints."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fakekube import FakeKube
from reconciler.api.types import Threshold
from reconciler.crds import ConversionWebhook, crd_manifest
from reconciler.status.results import parse_stats
from reconciler.status.thresholds import verdict_status

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
TESTS = "/apis/locust.io/v2/namespaces/default/locusttests"
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
STATS = Path(__file__).parents[1] / "data" / "locust-stats"


@pytest.fixture
def http(fakekube: FakeKube) -> Any:
    with httpx.Client(base_url=fakekube.url, timeout=10) as client:
        response = client.post(CRDS, json=crd_manifest())
        assert response.status_code == 201, response.text
        yield client


def locusttest(name: str, thresholds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": "locustio/locust:2.47.0",
        "master": {"command": "--locustfile /lotest/src/locustfile.py"},
        "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 1},
    }
    if thresholds is not None:
        spec["thresholds"] = thresholds
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": name},
        "spec": spec,
    }


def refused(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(c["field"], c["message"]) for c in response.json()["details"]["causes"]]


def test_thresholds_are_stored_with_their_default(http: httpx.Client) -> None:
    thresholds = [
        {"metric": "p95Ms", "max": 500, "request": "GET /checkout"},
        {"metric": "rps", "min": 12.5, "abortOnFail": True},
    ]
    response = http.post(TESTS, json=locusttest("shop", thresholds))

    assert response.status_code == 201, response.text
    stored = http.get(f"{TESTS}/shop").json()["spec"]["thresholds"]
    assert stored == [{**thresholds[0], "abortOnFail": False}, thresholds[1]]


@pytest.mark.parametrize(
    "threshold",
    [{"metric": "p95Ms"}, {"metric": "p95Ms", "max": 1, "min": 0}],
    ids=["neither", "both"],
)
def test_a_threshold_needs_exactly_one_of_max_and_min(
    http: httpx.Client, threshold: dict[str, Any]
) -> None:
    response = http.post(TESTS, json=locusttest("shop", [{"metric": "rps", "min": 1}, threshold]))

    assert refused(response) == [
        ("spec.thresholds[1]", 'Invalid value: "object": set exactly one of max or min')
    ]


def test_a_threshold_names_a_request_as_method_and_name(http: httpx.Client) -> None:
    response = http.post(
        TESTS, json=locusttest("shop", [{"metric": "p95Ms", "max": 1, "request": "/x"}])
    )

    # The rule sits on the threshold: the apiserver names the field, and the rule's own type.
    assert refused(response) == [
        ("spec.thresholds[0].request", 'Invalid value: "object": must be "METHOD name"')
    ]


def test_an_unknown_metric_is_refused_by_the_enum(http: httpx.Client) -> None:
    response = http.post(TESTS, json=locusttest("shop", [{"metric": "p90Ms", "max": 1}]))

    [(field, message)] = refused(response)
    assert field == "spec.thresholds[0].metric"
    assert message.startswith('Unsupported value: "p90Ms": supported values: "requests", ')


def test_at_most_20_thresholds(http: httpx.Client) -> None:
    response = http.post(TESTS, json=locusttest("shop", [{"metric": "rps", "min": 1}] * 21))

    [(field, message)] = refused(response)
    assert field == "spec.thresholds"
    assert message.startswith("Too many: 21: must have at most 20 items")


def status_of(thresholds: list[Threshold]) -> dict[str, Any]:
    """The status the operator writes for a final snapshot of Locust 2.47's numbers."""
    now = datetime(2026, 12, 3, 18, 0, tzinfo=timezone.utc)
    text = (STATS / "locust-2.47.0-stopped.json").read_text()
    results = parse_stats(json.loads(text), now).as_final(None, now)
    status: dict[str, Any] = {"phase": "Running", "observedGeneration": 1}
    verdict_status(status, thresholds, results, None, now)
    return status


def test_the_status_with_results_and_a_verdict_is_valid_and_kept_whole(
    http: httpx.Client,
) -> None:
    http.post(
        TESTS, json=locusttest("shop", [{"metric": "p95Ms", "max": 100, "request": "GET /slow"}])
    )
    status = status_of([Threshold("p95Ms", max=100, request="GET /slow")])

    response = http.patch(
        f"{TESTS}/shop/status",
        json={"status": status},
        headers={"Content-Type": "application/merge-patch+json"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["status"] == status  # nothing pruned: the schema has every field
    assert status["verdict"] == "Failed"


@pytest.mark.parametrize("webhook", [False, True], ids=["v2", "v1 and v2"])
def test_kubectl_get_prints_the_verdict_and_wide_the_results(
    fakekube: FakeKube, webhook: bool
) -> None:
    conversion = ConversionWebhook("locust-operator", "ops", 443, b"PEM") if webhook else None
    fakekube.create(crd_manifest(conversion))
    fakekube.create(locusttest("shop", [{"metric": "rps", "min": 1}]))
    fakekube.patch_status(
        "locust.io/v2", "LocustTest", "shop", status_of([Threshold("rps", min=1)]), "default"
    )

    with httpx.Client(base_url=fakekube.url, timeout=10) as client:
        table = client.get(TESTS, headers=TABLE).json()
    names = [c["name"] for c in table["columnDefinitions"]]
    cells = dict(zip(names, table["rows"][0]["cells"], strict=True))
    priorities = {c["name"]: c["priority"] for c in table["columnDefinitions"]}

    assert (cells["Verdict"], cells["RPS"], cells["Fail%"], cells["P95"]) == (
        "Passed",
        40.459,
        21.22,
        210,
    )
    assert (priorities["Verdict"], priorities["RPS"], priorities["Fail%"], priorities["P95"]) == (
        0,
        1,
        1,
        1,
    )
