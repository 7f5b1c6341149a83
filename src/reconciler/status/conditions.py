"""The vocabulary of a test's status: phases, condition types, events, and the condition rules
of Kubernetes' API conventions (metav1.Condition)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)

READY, WORKERS_CONNECTED, TEST_COMPLETED, SPEC_DRIFTED, PODS_HEALTHY = (
    "Ready",
    "WorkersConnected",
    "TestCompleted",
    "SpecDrifted",
    "PodsHealthy",
)
RESULTS_AVAILABLE, THRESHOLDS_MET = "ResultsAvailable", "ThresholdsMet"

NORMAL, WARNING = "Normal", "Warning"


@dataclass(frozen=True)
class InvolvedObject:
    """The object an event is about."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str | None = None

    @classmethod
    def of_test(cls, test: Mapping[str, Any], namespace: str, name: str) -> InvolvedObject:
        """A LocustTest as the subject of its events."""
        return cls(
            api_version=test.get("apiVersion", "locust.io/v2"),
            kind=test.get("kind", "LocustTest"),
            namespace=namespace,
            name=name,
            uid=(test.get("metadata") or {}).get("uid"),
        )


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


def timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | None,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> None:
    """Set one condition (status None: Unknown); lastTransitionTime moves only when the status
    flips (metav1 rule)."""
    value = "Unknown" if status is None else "True" if status else "False"
    for condition in conditions:
        if condition["type"] == type_:
            if condition["status"] != value:
                condition["lastTransitionTime"] = timestamp(now)
            condition.update(
                status=value, reason=reason, message=message, observedGeneration=generation
            )
            return
    conditions.append(
        {
            "type": type_,
            "status": value,
            "reason": reason,
            "message": message,
            "lastTransitionTime": timestamp(now),
            "observedGeneration": generation,
        }
    )


def condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    return next((c for c in status.get("conditions") or () if c.get("type") == type_), None)
