"""A test's numbers as the Locust master reports them (`/stats/requests` of its web API), and the
`status.results` document they become. Pure: the poller fetches, this reads.

Locust 2.x answers in several shapes, and these are the differences that matter here:

* every release lists the request entries in `stats`, the `Aggregated` row (method "") last, each
  with `num_requests`, `num_failures`, `avg_response_time`, `max_response_time`,
  `median_response_time` and `current_rps`;
* the 95th and 99th percentiles of an entry are `response_time_percentile_0.95` and
  `response_time_percentile_0.99` in recent releases; older ones (2.20 and before) give only the
  90th and 99th (`ninetieth_response_time`, `ninety_ninth_response_time`), so their p95 is
  unknown (the top-level `current_response_time_percentile_*` are of the last seconds only, not
  of the run, and are not used);
* recent releases give each entry its run average, `total_rps` (requests over the time between the
  first and the last request); older ones do not, and their top-level `total_rps` is the current
  rate;
* a master lists its `workers`, and recent releases count them in `worker_count`; a Locust in local
  mode has neither.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .conditions import timestamp

AGGREGATED = "Aggregated"
STOPPED = "stopped"  # Locust's state once the test has ended
MAX_ENTRIES = 20  # entries in status.results, the ones with the most requests

# Reasons of the ResultsAvailable condition.
RESULTS_READ = "ResultsRead"
WEB_API_UNREACHABLE = "WebApiUnreachable"
INVALID_RESPONSE = "InvalidResponse"
MASTER_NOT_RUNNING = "MasterNotRunning"
RESULTS_UNAVAILABLE = "ResultsUnavailable"  # a problem given as bare text


class ResultsUnreadable(ValueError):
    """The master's answer is no `/stats/requests` document; the message says why, in one line."""


@dataclass(frozen=True)
class Problem:
    """Why no results could be read: the ResultsAvailable condition's reason and message."""

    reason: str
    message: str


@dataclass(frozen=True)
class Entry:
    """One row of Locust's statistics: a request entry, or the Aggregated row (the total)."""

    method: str
    name: str
    requests: int
    failures: int
    rps: float
    avg_ms: float
    p50_ms: float
    p95_ms: float | None  # None: this Locust release does not report it
    p99_ms: float
    max_ms: float
    # Locust's own run average (requests over the time it saw requests), where it reports one.
    total_rps: float | None = None

    def label(self) -> str:
        """How thresholds name the entry: "GET /checkout", "Aggregated" for the total row."""
        return f"{self.method} {self.name}" if self.method else self.name

    @property
    def fail_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def to_status(self) -> dict[str, Any]:
        return {"method": self.method, "name": self.name, **_numbers(self)}


@dataclass(frozen=True)
class Results:
    """One answer of the master: its state and its numbers."""

    observed_at: datetime
    state: str
    users: int
    workers: int
    total: Entry
    entries: tuple[Entry, ...]  # every request entry, most requests first; Aggregated excluded
    final: bool = False

    @property
    def fail_ratio(self) -> float:
        return self.total.fail_ratio

    @property
    def stopped(self) -> bool:
        return self.state == STOPPED

    def entry(self, request: str | None) -> Entry | None:
        """The entry a threshold names ("METHOD name"); None names the Aggregated row."""
        if request is None:
            return self.total
        return next((entry for entry in self.entries if entry.label() == request), None)

    def to_status(self) -> dict[str, Any]:
        """The `status.results` document: totals from the Aggregated row, the top entries."""
        return {
            "observedAt": timestamp(self.observed_at),
            "state": self.state,
            "final": self.final,
            "users": self.users,
            "workers": self.workers,
            **_numbers(self.total),
            "failRatio": round(self.fail_ratio, 6),
            "failPercent": round(self.fail_ratio * 100, 2),
            "entries": [entry.to_status() for entry in self.entries[:MAX_ENTRIES]],
        }

    def as_final(self, started_at: datetime | None, ended_at: datetime) -> Results:
        """The final snapshot: `rps` becomes the run's average, Locust's own where it reports it,
        else requests over the run's duration (from `started_at` to `ended_at`)."""
        seconds = (ended_at - started_at).total_seconds() if started_at is not None else 0.0

        def averaged(entry: Entry) -> Entry:
            if entry.total_rps is not None:
                rps = entry.total_rps
            elif seconds > 0:
                rps = entry.requests / seconds
            else:
                rps = entry.rps  # no duration known: the last rate is the best there is
            return dataclasses.replace(entry, rps=rps)

        return dataclasses.replace(
            self,
            final=True,
            total=averaged(self.total),
            entries=tuple(averaged(entry) for entry in self.entries),
        )


def _numbers(entry: Entry) -> dict[str, Any]:
    numbers: dict[str, Any] = {
        "requests": entry.requests,
        "failures": entry.failures,
        "rps": _rounded(entry.rps),
        "avgMs": _rounded(entry.avg_ms),
        "p50Ms": _rounded(entry.p50_ms),
        "p95Ms": None if entry.p95_ms is None else _rounded(entry.p95_ms),
        "p99Ms": _rounded(entry.p99_ms),
        "maxMs": _rounded(entry.max_ms),
    }
    return {key: value for key, value in numbers.items() if value is not None}


def _rounded(value: float) -> float | int:
    """Three decimals are plenty for milliseconds and rates; whole numbers stay whole."""
    rounded = round(value, 3)
    return int(rounded) if float(rounded).is_integer() else rounded


def settled(previous: Results | None, current: Results) -> bool:
    """Whether `current` is the final snapshot: Locust says stopped in two answers in a row with
    the same counts (workers report their last numbers after the master has stopped)."""
    if previous is None or not (previous.stopped and current.stopped):
        return False
    return _counts(previous) == _counts(current)


def _counts(results: Results) -> tuple[Any, ...]:
    return (
        (results.total.requests, results.total.failures),
        sorted((e.label(), e.requests, e.failures) for e in results.entries),
    )


# --- reading an answer --------------------------------------------------------------------------


def parse_stats(payload: Any, observed_at: datetime) -> Results:
    """Read a `/stats/requests` answer of any Locust 2.x (decoded JSON, or its text or bytes),
    or raise ResultsUnreadable."""
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as error:
            raise ResultsUnreadable(f"the answer is not JSON: {_one_line(error)}") from None
    if not isinstance(payload, Mapping):
        raise ResultsUnreadable(f"the answer is not a JSON object but {_kind(payload)}")
    state = payload.get("state")
    if not isinstance(state, str) or not state:
        raise ResultsUnreadable(f"state: expected a string, got {_kind(state)}")
    rows = payload.get("stats")
    if not isinstance(rows, list):
        raise ResultsUnreadable(f"stats: expected a list, got {_kind(rows)}")
    entries = [_entry(row, f"stats[{index}]") for index, row in enumerate(rows)]
    if entries:
        total = entries.pop()
        if total.method or total.name != AGGREGATED:
            raise ResultsUnreadable(f"stats: the last entry is {total.label()!r}, not Aggregated")
    else:  # no runner yet: Locust lists nothing
        total = Entry("", AGGREGATED, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    entries.sort(key=lambda entry: (-entry.requests, entry.label()))
    return Results(
        observed_at=observed_at,
        state=state,
        users=_count(payload, "user_count", "", default=0),
        workers=_workers(payload),
        total=total,
        entries=tuple(entries),
    )


def _workers(payload: Mapping[str, Any]) -> int:
    if "worker_count" in payload:
        return _count(payload, "worker_count", "")
    workers = payload.get("workers")
    if workers is None:
        return 0  # local mode: no workers
    if not isinstance(workers, list):
        raise ResultsUnreadable(f"workers: expected a list, got {_kind(workers)}")
    return len(workers)


def _entry(row: Any, path: str) -> Entry:
    if not isinstance(row, Mapping):
        raise ResultsUnreadable(f"{path}: expected an object, got {_kind(row)}")
    method, name = row.get("method"), row.get("name")
    if method is not None and not isinstance(method, str):
        raise ResultsUnreadable(f"{path}.method: expected a string, got {_kind(method)}")
    if not isinstance(name, str):
        raise ResultsUnreadable(f"{path}.name: expected a string, got {_kind(name)}")
    requests = _count(row, "num_requests", path)
    empty = requests == 0  # Locust may report no times for an entry without requests

    def ms(*keys: str, optional: bool = False) -> Any:
        key = next((key for key in keys if key in row), None)
        if key is None:
            if optional:
                return None
            raise ResultsUnreadable(f"{path}.{keys[0]}: missing")
        return _number(row, key, path, none_is_zero=empty)

    return Entry(
        method=method or "",
        name=name,
        requests=requests,
        failures=_count(row, "num_failures", path),
        rps=_number(row, "current_rps", path, none_is_zero=True),
        avg_ms=ms("avg_response_time"),
        p50_ms=ms("median_response_time", "response_time_percentile_0.5"),
        p95_ms=ms("response_time_percentile_0.95", optional=True),
        p99_ms=ms("response_time_percentile_0.99", "ninety_ninth_response_time"),
        max_ms=ms("max_response_time"),
        total_rps=_number(row, "total_rps", path) if "total_rps" in row else None,
    )


def _count(row: Mapping[str, Any], key: str, path: str, default: int | None = None) -> int:
    value = row.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        where = f"{path}.{key}" if path else key
        raise ResultsUnreadable(f"{where}: expected a count, got {_kind(value)}")
    return value


def _number(row: Mapping[str, Any], key: str, path: str, *, none_is_zero: bool = False) -> float:
    value = row.get(key)
    if value is None and none_is_zero:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ResultsUnreadable(f"{path}.{key}: expected a number, got {_kind(value)}")
    return float(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, int) or math.isfinite(value) else str(value)
    if isinstance(value, str):
        return f"the string {_one_line(value)[:40]!r}"
    if isinstance(value, Sequence):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())
