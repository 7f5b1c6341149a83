"""The read-only actions' results: list-tests and describe-test, from the LocustTests and
their children as the API server has them."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import lightkube
from lightkube import ALL_NS, ApiError
from lightkube.core.client import FieldSelector, LabelSelector
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Service

from kube import ClusterError, api_errors, get_or_none, key_of, metadata_of
from reconciler.api.naming import child_names
from reconciler.api.parse import parse
from reconciler.api.types import LocustTestV1, LocustTestV2, SpecError, TestSpec
from reconciler.config import OperatorConfig
from reconciler.crds import CRD_NAME, KIND
from reconciler.resources.command import master_args, worker_args
from reconciler.resources.labels import MANAGED_BY

# Read as the storage version, v2 (v1 objects arrive converted by the webhook); a CRD installed by
# an older charm serves v1 only.
LOCUST_TEST_VERSIONS = (LocustTestV2, LocustTestV1)

MAX_EVENTS = 10


@dataclass(frozen=True)
class TestRef:
    """A LocustTest as found: its status, and its spec or why the spec does not parse."""

    __test__ = False  # not a pytest test class

    name: str
    namespace: str
    created: datetime | None
    status: Mapping[str, Any]
    spec: TestSpec | None
    spec_error: str = ""

    @classmethod
    def of(cls, test: Any) -> TestRef:
        namespace, name = key_of(test)
        raw = test.to_dict()
        try:
            spec, error = parse(raw, default_namespace=namespace), ""
        except SpecError as problem:
            spec, error = None, str(problem)
        created = metadata_of(test).creationTimestamp
        return cls(name, namespace, created, raw.get("status") or {}, spec, error)

    @property
    def phase(self) -> str:
        # No phase yet: the reconciler has not seen the test, or its CRD predates status.
        return self.status.get("phase") or "unknown"

    @property
    def expected_workers(self) -> int | None:
        # The status keeps the count the Jobs were created with, even after a spec edit.
        expected = self.status.get("expectedWorkers")
        if expected is None and self.spec is not None:
            expected = self.spec.worker_replicas
        return expected


def age(timestamp: datetime | None, now: datetime) -> str:
    """A kubectl-style age: 45s, 12m, 5h, 3d."""
    if timestamp is None:
        return "unknown"
    seconds = max(0, int((now - timestamp).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _list_locust_tests(
    kube: lightkube.Client, namespace: str | None, fields: FieldSelector | None
) -> list[Any]:
    """LocustTests in the newest version the CRD serves; ClusterError if it is not installed."""
    for resource in LOCUST_TEST_VERSIONS:
        try:
            return list(kube.list(resource, namespace=namespace or ALL_NS, fields=fields))
        except ApiError as error:
            if error.status.code != 404:  # 404: this version is not served
                raise
    raise ClusterError(
        f"the LocustTest CRD ({CRD_NAME}) is not installed: see the leader unit's status"
    )


def _tests(
    kube: lightkube.Client, app: str, namespace: str | None, name: str | None = None
) -> list[TestRef]:
    fields: FieldSelector | None = {"metadata.name": name} if name else None
    with api_errors(app, "listing LocustTests"):
        found = _list_locust_tests(kube, namespace, fields)
    return sorted(map(TestRef.of, found), key=lambda ref: (ref.namespace, ref.name))


def _job_summary(job: Job | None) -> dict[str, Any]:
    if job is None:
        return {"state": "missing"}
    status = job.status
    active = (status.active if status else None) or 0
    succeeded = (status.succeeded if status else None) or 0
    failed = (status.failed if status else None) or 0
    conditions = {c.type: c.status for c in (status.conditions if status else None) or []}
    if conditions.get("Complete") == "True":
        state = "complete"
    elif conditions.get("Failed") == "True":
        state = "failed"
    elif active:
        state = "active"
    else:
        state = "pending"
    return {"state": state, "active": active, "succeeded": succeeded, "failed": failed}


def _children(
    ref: TestRef,
    services: set[tuple[str, str]],
    jobs: Mapping[tuple[str, str], Job],
) -> dict[str, Any]:
    """The test's Service and Jobs, out of those found (keyed by namespace and name)."""
    if ref.spec is None:
        return {"spec-error": ref.spec_error}
    names = child_names(ref.spec.name)
    return {
        "service": {
            "name": names.service,
            "state": "present" if (ref.namespace, names.service) in services else "missing",
        },
        "master-job": {"name": names.master_job}
        | _job_summary(jobs.get((ref.namespace, names.master_job))),
        "worker-job": {"name": names.worker_job}
        | _job_summary(jobs.get((ref.namespace, names.worker_job))),
    }


def _workers(ref: TestRef) -> str:
    """Connected over expected workers, e.g. 3/5."""
    expected = ref.expected_workers
    return f"{ref.status.get('connectedWorkers', 0)}/{'?' if expected is None else expected}"


def list_tests(
    kube: lightkube.Client, app: str, namespace: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """The list-tests action's results: a count and, per test, what it runs and how it is doing."""
    now = now or datetime.now(timezone.utc)
    refs = _tests(kube, app, namespace)
    results: dict[str, Any] = {"count": len(refs)}
    if not refs:
        return results
    # Two lists (by the operator's label) instead of three GETs per test.
    selector: LabelSelector = {MANAGED_BY[0]: MANAGED_BY[1]}
    scope = namespace or ALL_NS
    with api_errors(app, "listing the tests' Services and Jobs"):
        services = {key_of(s) for s in kube.list(Service, namespace=scope, labels=selector)}
        jobs = {key_of(j): j for j in kube.list(Job, namespace=scope, labels=selector)}
    results["tests"] = {
        f"test-{index}": {
            "name": ref.name,
            "namespace": ref.namespace,
            "phase": ref.phase,
            "workers": _workers(ref),
            "image": ref.spec.image if ref.spec else "",
            "age": age(ref.created, now),
            **_children(ref, services, jobs),
        }
        for index, ref in enumerate(refs)
    }
    return results


def _event_time(event: Event) -> datetime:
    stamp = event.lastTimestamp or event.eventTime or event.firstTimestamp
    stamp = stamp or metadata_of(event).creationTimestamp
    return stamp or datetime.min.replace(tzinfo=timezone.utc)


def _events(kube: lightkube.Client, app: str, ref: TestRef, now: datetime) -> dict[str, Any]:
    with api_errors(app, f"listing the events of LocustTest {ref.name}"):
        found = list(
            kube.list(
                Event,
                namespace=ref.namespace,
                fields={
                    "involvedObject.kind": KIND,
                    "involvedObject.name": ref.name,
                    "involvedObject.namespace": ref.namespace,
                },
            )
        )
    # Filter again, in case a server ignores part of the selector.
    mine = [
        e for e in found if e.involvedObject.kind == KIND and e.involvedObject.name == ref.name
    ]
    recent = sorted(mine, key=_event_time)[-MAX_EVENTS:]
    return {
        f"event-{index}": {
            "type": event.type or "",
            "reason": event.reason or "",
            "message": event.message or "",
            "count": event.count or 1,
            "age": age(_event_time(event), now),
        }
        for index, event in enumerate(recent)
    }


def _kebab(name: str) -> str:
    """A condition type as an action result key: WorkersConnected -> workers-connected."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


# Status fields describe-test shows, when the reconciler has set them, under these keys.
_STATUS_FIELDS = {
    "observedGeneration": "observed-generation",
    "startTime": "start-time",
    "completionTime": "completion-time",
    "connectedWorkers": "connected-workers",
    "expectedWorkers": "expected-workers",
}


def _status_summary(ref: TestRef) -> dict[str, Any]:
    """The test's phase, the status fields it has, and its conditions by type."""
    status = ref.status
    summary: dict[str, Any] = {"phase": ref.phase}
    summary |= {key: status[field] for field, key in _STATUS_FIELDS.items() if field in status}
    conditions = {
        _kebab(condition["type"]): {
            "status": condition.get("status", ""),
            "reason": condition.get("reason", ""),
            "message": condition.get("message", ""),
            "since": condition.get("lastTransitionTime", ""),
        }
        for condition in status.get("conditions") or ()
    }
    if conditions:
        summary["conditions"] = conditions
    return summary


def describe_test(
    kube: lightkube.Client,
    app: str,
    name: str,
    namespace: str | None,
    config: OperatorConfig,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The describe-test action's results: status, spec summary, children and recent events."""
    now = now or datetime.now(timezone.utc)
    # A list, not a GET: it searches every namespace when none is given, and tells a missing
    # test (empty list) from a missing CRD (404).
    matches = [ref for ref in _tests(kube, app, namespace, name) if ref.name == name]
    if not matches:
        where = f"namespace {namespace}" if namespace else "any namespace"
        raise ClusterError(f"LocustTest {name} not found in {where}")
    if len(matches) > 1:
        spaces = ", ".join(ref.namespace for ref in matches)
        raise ClusterError(
            f"LocustTest {name} exists in several namespaces ({spaces}): give namespace=..."
        )
    ref = matches[0]
    results: dict[str, Any] = {
        "name": ref.name,
        "namespace": ref.namespace,
        "age": age(ref.created, now),
        **_status_summary(ref),
    }
    events = _events(kube, app, ref, now)
    if events:
        results["events"] = events
    if ref.spec is None:
        # Still worth showing: the conditions and events say what the reconciler made of it.
        return results | {"spec": {"error": ref.spec_error}}
    spec = ref.spec
    summary: dict[str, Any] = {
        "image": spec.image,
        "workers": spec.worker_replicas,
        "master-args": shlex.join(master_args(spec, config)),
        "worker-args": shlex.join(worker_args(spec)),
    }
    if spec.config_map:
        summary["config-map"] = spec.config_map
    if spec.lib_config_map:
        summary["lib-config-map"] = spec.lib_config_map
    names = child_names(spec.name)
    with api_errors(app, f"reading the children of LocustTest {name}"):
        service = get_or_none(kube, Service, names.service, ref.namespace)
        jobs = {
            (ref.namespace, job_name): job
            for job_name in (names.master_job, names.worker_job)
            if (job := get_or_none(kube, Job, job_name, ref.namespace)) is not None
        }
    services = {(ref.namespace, names.service)} if service else set()
    return results | {"spec": summary, "children": _children(ref, services, jobs)}
