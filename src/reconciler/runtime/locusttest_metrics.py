"""Per-test series on the operator's own /metrics, read from the tests' statuses at each scrape.

One scrape of the operator covers every test, so Prometheus need not discover short-lived master
pods. The series come from the caches (the status as the operator last wrote it), so a deleted
test's series disappear with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from ..status.conditions import FAILED, PENDING, RUNNING, SUCCEEDED
from ..status.thresholds import FAILED as VERDICT_FAILED
from ..status.thresholds import INCONCLUSIVE, PASSED

PHASES = (PENDING, RUNNING, SUCCEEDED, FAILED)
VERDICTS = (PASSED, VERDICT_FAILED, INCONCLUSIVE)
QUANTILES = (("0.5", "p50Ms"), ("0.95", "p95Ms"), ("0.99", "p99Ms"))
LABELS = ["namespace", "name"]


Source = Callable[[], Iterable[Mapping[str, Any]]]


class LocustTestMetrics(Collector):
    """Collects `locusttest_*` from its sources: the LocustTests the operator watches while it
    leads (none while it stands by)."""

    def __init__(self) -> None:
        self._sources: list[Source] = []

    def add_source(self, tests: Source) -> None:
        self._sources.append(tests)

    def remove_source(self, tests: Source) -> None:
        self._sources.remove(tests)

    def _tests(self) -> Iterator[Mapping[str, Any]]:
        for source in list(self._sources):
            yield from source()

    def collect(self) -> Iterator[Metric]:
        phase = GaugeMetricFamily(
            "locusttest_phase", "1 for the test's current phase", labels=[*LABELS, "phase"]
        )
        verdict = GaugeMetricFamily(
            "locusttest_verdict", "1 for the test's current verdict", labels=[*LABELS, "verdict"]
        )
        requests = CounterMetricFamily(
            "locusttest_requests", "Requests the test has made (Locust's total)", labels=LABELS
        )
        failures = CounterMetricFamily(
            "locusttest_failures", "Requests of the test that failed", labels=LABELS
        )
        rps = GaugeMetricFamily(
            "locusttest_requests_per_second",
            "Current requests per second (the run's average once final)",
            labels=LABELS,
        )
        times = GaugeMetricFamily(
            "locusttest_response_time_seconds",
            "Response time percentiles of all the test's requests",
            labels=[*LABELS, "quantile"],
        )
        users = GaugeMetricFamily("locusttest_users", "Simulated users running", labels=LABELS)
        for test in self._tests():
            metadata = test.get("metadata") or {}
            labels = [metadata.get("namespace") or "", metadata.get("name") or ""]
            status = test.get("status") or {}
            current = status.get("phase") or PENDING
            for name in PHASES:
                phase.add_metric([*labels, name], 1.0 if name == current else 0.0)
            results = status.get("results")
            if not isinstance(results, Mapping):
                continue
            if status.get("verdict") in VERDICTS:
                for name in VERDICTS:
                    verdict.add_metric([*labels, name], 1.0 if name == status["verdict"] else 0.0)
            requests.add_metric(labels, float(results.get("requests") or 0))
            failures.add_metric(labels, float(results.get("failures") or 0))
            rps.add_metric(labels, float(results.get("rps") or 0))
            users.add_metric(labels, float(results.get("users") or 0))
            for quantile, key in QUANTILES:
                if isinstance(results.get(key), int | float):
                    times.add_metric([*labels, quantile], results[key] / 1000)
        yield from (phase, verdict, requests, failures, rps, times, users)


LOCUSTTESTS = LocustTestMetrics()
REGISTRY.register(LOCUSTTESTS)
