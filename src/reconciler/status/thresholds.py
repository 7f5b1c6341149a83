"""Thresholds against results: the breaches, the verdict, and the ResultsAvailable and
ThresholdsMet conditions. Pure.

The verdict is the final snapshot's: `Passed` when every threshold holds on it, `Failed` when one
is breached, `Inconclusive` when the test ended and its final results could not be read (the
condition says why). While the test runs there is no verdict and ThresholdsMet is Unknown; a test
without thresholds has results only. A final snapshot, once in the status, is never overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..api.types import Threshold
from .conditions import (
    NORMAL,
    RESULTS_AVAILABLE,
    TERMINAL,
    THRESHOLDS_MET,
    WARNING,
    Event,
    set_condition,
)
from .results import RESULTS_READ, RESULTS_UNAVAILABLE, Entry, Problem, Results

PASSED, FAILED, INCONCLUSIVE = "Passed", "Failed", "Inconclusive"

# Reasons of the ThresholdsMet condition, and of the verdict's events.
THRESHOLDS_PASSED = "ThresholdsPassed"
THRESHOLDS_BREACHED = "ThresholdsBreached"
THRESHOLDS_FAILED = "ThresholdsFailed"  # the event of a Failed verdict
AWAITING_FINAL_RESULTS = "AwaitingFinalResults"

# Counts only grow while the test runs: below a minimum is a breach of the final numbers only.
_CUMULATIVE = ("requests", "failures")


@dataclass(frozen=True)
class Breach:
    """A threshold the results do not hold; `value` None: the entry or the metric is missing."""

    threshold: Threshold
    value: float | None
    entry_found: bool = False  # with value None: the entry exists, its metric is not reported

    def message(self) -> str:
        """`p95Ms 612 > 500 on GET /checkout`, `rps 12.5 < 50 on Aggregated`."""
        threshold = self.threshold
        label = threshold.request or "Aggregated"
        if self.value is None:
            if self.entry_found:
                return f"{threshold.metric} is not reported by this Locust release for {label}"
            return f"no requests for {label}"
        above = threshold.max is not None
        bound = threshold.max if threshold.max is not None else threshold.min
        value, limit = _shown(self.value, bound or 0.0)
        return f"{threshold.metric} {value} {'>' if above else '<'} {limit} on {label}"


def _shown(value: float, bound: float) -> tuple[str, str]:
    """Both numbers as a person reads them (612, 12.5, 0.0024, 41.23), with more digits where
    the short forms would look equal."""
    short = _short(value), _short(bound)
    if short[0] != short[1]:
        return short
    return f"{value:.12g}", f"{bound:.12g}"


def _short(value: float) -> str:
    rounded = round(value, 4) if abs(value) < 1 else round(value, 2)
    if float(rounded).is_integer():
        return str(int(rounded))
    return repr(rounded)


def metric_value(entry: Entry, metric: str) -> float | None:
    """The value of one of THRESHOLD_METRICS on an entry (None: not reported)."""
    values: dict[str, float | None] = {
        "requests": entry.requests,
        "failures": entry.failures,
        "failRatio": entry.fail_ratio,
        "rps": entry.rps,
        "avgMs": entry.avg_ms,
        "p50Ms": entry.p50_ms,
        "p95Ms": entry.p95_ms,
        "p99Ms": entry.p99_ms,
        "maxMs": entry.max_ms,
    }
    return values[metric]


def breaches(thresholds: Sequence[Threshold], results: Results) -> tuple[Breach, ...]:
    """The thresholds `results` breach, in the order they are listed."""
    found = []
    for threshold in thresholds:
        entry = results.entry(threshold.request)
        if entry is None:
            found.append(Breach(threshold, None))
            continue
        value = metric_value(entry, threshold.metric)
        if value is None:
            found.append(Breach(threshold, None, entry_found=True))
        elif (threshold.max is not None and value > threshold.max) or (
            threshold.min is not None and value < threshold.min
        ):
            found.append(Breach(threshold, value))
    return tuple(found)


def abort_breaches(thresholds: Sequence[Threshold], results: Results) -> tuple[Breach, ...]:
    """The breaches, on live results, of the thresholds that stop the test (`abortOnFail`).

    Only what the rest of the run cannot mend counts: a count below its minimum may still grow,
    and an entry without requests (or a metric this Locust does not report) may still come."""
    candidates = [
        threshold
        for threshold in thresholds
        if threshold.abort_on_fail
        and not (threshold.min is not None and threshold.metric in _CUMULATIVE)
    ]
    return tuple(b for b in breaches(candidates, results) if b.value is not None)


def verdict_status(
    status: dict[str, Any],
    thresholds: Sequence[Threshold],
    results: Results | None,
    problem: Problem | str | None,
    now: datetime,
    *,
    generation: int | None = None,
    ended: bool | None = None,
) -> None:
    """Write `results`, the verdict and the ResultsAvailable and ThresholdsMet conditions into
    `status` (a LocustTest status document, changed in place).

    `results`: the master's latest numbers (final once settled), or None with the `problem` that
    kept them from being read (a bare text counts as reason ResultsUnavailable). `generation`:
    the conditions' observedGeneration (default: the status's). `ended`: whether the test has
    ended (default: its phase is Succeeded or Failed)."""
    conditions: list[dict[str, Any]] = status.setdefault("conditions", [])
    if generation is None:
        generation = status.get("observedGeneration") or 1
    if ended is None:
        ended = status.get("phase") in TERMINAL
    if isinstance(problem, str):
        problem = Problem(RESULTS_UNAVAILABLE, problem)

    if not thresholds:
        status.pop("verdict", None)
        conditions[:] = [c for c in conditions if c.get("type") != THRESHOLDS_MET]
    stored = status.get("results")
    if isinstance(stored, Mapping) and stored.get("final") is True:
        return  # the final snapshot is in: it, and what was judged on it, stay

    if results is not None:
        status["results"] = results.to_status()
        message = f"Locust reports {results.state}" + (" (final)" if results.final else "")
        set_condition(conditions, RESULTS_AVAILABLE, True, RESULTS_READ, message, generation, now)
    elif problem is not None:
        set_condition(
            conditions, RESULTS_AVAILABLE, False, problem.reason, problem.message, generation, now
        )
    if not thresholds:
        return

    if results is not None and results.final:
        found = breaches(thresholds, results)
        if found:
            status["verdict"] = FAILED
            message = "; ".join(breach.message() for breach in found)
            set_condition(
                conditions, THRESHOLDS_MET, False, THRESHOLDS_BREACHED, message, generation, now
            )
        else:
            status["verdict"] = PASSED
            message = f"all {len(thresholds)} thresholds hold on the final results"
            if len(thresholds) == 1:
                message = "the threshold holds on the final results"
            set_condition(
                conditions, THRESHOLDS_MET, True, THRESHOLDS_PASSED, message, generation, now
            )
    elif ended and problem is not None:
        status["verdict"] = INCONCLUSIVE
        set_condition(
            conditions, THRESHOLDS_MET, None, RESULTS_UNAVAILABLE, problem.message, generation, now
        )
    else:
        status.pop("verdict", None)
        set_condition(
            conditions,
            THRESHOLDS_MET,
            None,
            AWAITING_FINAL_RESULTS,
            "thresholds are judged on the final results, once the test has stopped",
            generation,
            now,
        )


def verdict_event(before: Mapping[str, Any], after: Mapping[str, Any]) -> Event | None:
    """The event to record when a status gains its Passed or Failed verdict (None otherwise)."""
    verdict = after.get("verdict")
    if verdict == before.get("verdict") or verdict not in (PASSED, FAILED):
        return None
    condition = next(
        (c for c in after.get("conditions") or () if c.get("type") == THRESHOLDS_MET), None
    )
    message = str(condition.get("message", "")) if condition else ""
    if verdict == PASSED:
        return Event(NORMAL, THRESHOLDS_PASSED, message or "the thresholds hold")
    return Event(WARNING, THRESHOLDS_FAILED, message or "thresholds breached")
