"""Everything the charm does with the Kubernetes API: cluster objects in, test summaries out.

Plain lightkube, no ops: the charm turns `ClusterError`s into statuses or action failures. The
client is built on demand (never at charm construction): in a pod lightkube uses the
ServiceAccount, elsewhere the KUBECONFIG file, which is how the tests point the charm at a fake
API server.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import httpx2
import jinja2
import lightkube
from lightkube import ALL_NS, ApiError, codecs
from lightkube.core.client import FieldSelector, LabelSelector
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Service
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from charm_config import WEBHOOK_PORT
from reconciler.config import OperatorConfig
from reconciler.crds import (
    CRD_NAME,
    GROUP,
    KIND,
    PART_OF_LABEL,
    PLURAL,
    ConversionWebhook,
    crd_manifest,
)
from reconciler.resources import MANAGED_BY, child_names, master_args, worker_args
from reconciler.spec import SpecError, TestSpec, parse

logger = logging.getLogger(__name__)

# Read as the storage version, v2 (v1 objects arrive converted by the webhook); a CRD installed by
# an older charm serves v1 only.
LOCUST_TEST_VERSIONS = tuple(
    create_namespaced_resource(GROUP, version, KIND, PLURAL) for version in ("v2", "v1")
)

TEMPLATES = Path(__file__).parent / "templates"
MAX_EVENTS = 10


class ClusterError(Exception):
    """A Kubernetes problem, with a one-line message a user can act on.

    `blocking` is False for problems that may go away by themselves (API server unavailable).
    """

    def __init__(self, message: str, *, blocking: bool = True):
        super().__init__(message)
        self.message = message
        self.blocking = blocking


def client(app: str) -> lightkube.Client:
    """A client whose server-side applies are recorded under the application's name."""
    try:
        return lightkube.Client(field_manager=app)
    except lightkube.ConfigError as error:  # neither in a pod nor given a kubeconfig
        raise ClusterError(f"no Kubernetes credentials: {error}") from None


def object_name(app: str, namespace: str) -> str:
    """Name of the cluster-scoped objects: unique per application and model."""
    return f"{app}-{namespace}"


def labels(app: str, namespace: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "juju",
        "app.kubernetes.io/name": "locust-operator",
        "app.kubernetes.io/instance": object_name(app, namespace),
    }


def _meta(obj: Any) -> ObjectMeta:
    """An object's metadata, which the API always returns (lightkube types it as optional)."""
    assert obj.metadata is not None
    return obj.metadata


def _key(obj: Any) -> tuple[str, str]:
    meta = _meta(obj)
    return meta.namespace or "", meta.name or ""


def rbac_objects(app: str, namespace: str) -> list[ClusterRole | ClusterRoleBinding]:
    """The ClusterRole and ClusterRoleBinding for the application's ServiceAccount."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text = env.get_template("rbac.yaml.j2").render(
        name=object_name(app, namespace),
        labels=labels(app, namespace),
        service_account=app,  # Juju names the application's ServiceAccount after it
        namespace=namespace,
    )
    return cast(list[ClusterRole | ClusterRoleBinding], codecs.load_all_yaml(text))


@contextmanager
def _api(app: str, doing: str) -> Iterator[None]:
    """Turn lightkube and HTTP failures into ClusterErrors; log what happened."""
    try:
        yield
    except ApiError as error:
        code, message = error.status.code, error.status.message
        logger.warning("Kubernetes API error while %s: %s %s", doing, code, message)
        if code == 403:
            raise ClusterError(
                f"missing cluster permissions; run: juju trust {app} --scope=cluster"
            ) from None
        raise ClusterError(
            f"kubernetes API error {code} while {doing}: {message}",
            blocking=code is None or code < 500,
        ) from None
    except (httpx2.HTTPError, lightkube.ConfigError) as error:
        logger.warning("Cannot reach the Kubernetes API while %s: %s", doing, error)
        raise ClusterError(f"cannot reach the kubernetes API: {error}", blocking=False) from None


def _conversion_webhook(app: str, namespace: str, ca_bundle: str) -> ConversionWebhook:
    """Where the apiserver converts LocustTests: the application's Service (Juju names it after
    the application) on the webhook port, verified against `ca_bundle` (PEM)."""
    return ConversionWebhook(
        service_name=app,
        service_namespace=namespace,
        port=WEBHOOK_PORT,
        ca_bundle=ca_bundle.encode(),
    )


def apply_cluster_objects(
    kube: lightkube.Client, app: str, namespace: str, ca_bundle: str
) -> None:
    """Install or update the CRD (converted by our webhook), then the RBAC, with server-side apply.

    Refuses (and touches nothing) when a locusttests.locust.io CRD exists that is not ours: three
    unrelated projects use that name with different schemas, and overwriting another operator's
    CRD would break its tests, or silently prune their fields.
    """
    with _api(app, "checking the LocustTest CRD"):
        try:
            existing = kube.get(CustomResourceDefinition, CRD_NAME)
        except ApiError as error:
            if error.status.code != 404:
                raise
        else:
            owner_labels = _meta(existing).labels or {}
            key, value = PART_OF_LABEL
            if owner_labels.get(key) != value:
                logger.warning(
                    "CRD %s exists without %s=%s; not touching it", CRD_NAME, key, value
                )
                raise ClusterError(
                    f"CRD {CRD_NAME} belongs to another Locust operator: remove it (and that "
                    f"operator), or label it {key}={value} if it is this charm's"
                )
    with _api(app, "applying the LocustTest CRD"):
        manifest = crd_manifest(_conversion_webhook(app, namespace, ca_bundle))
        crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(manifest))
        kube.apply(crd, field_manager=app, force=True)
    with _api(app, "applying the ClusterRole and ClusterRoleBinding"):
        for obj in rbac_objects(app, namespace):
            kube.apply(obj, field_manager=app, force=True)
    logger.info("Applied %s and RBAC %s", CRD_NAME, object_name(app, namespace))


def delete_rbac(kube: lightkube.Client, app: str, namespace: str) -> None:
    """Delete the ClusterRoleBinding and ClusterRole; never the CRD (that deletes every test)."""
    name = object_name(app, namespace)
    with _api(app, "deleting the ClusterRole and ClusterRoleBinding"):
        for resource in (ClusterRoleBinding, ClusterRole):
            try:
                kube.delete(resource, name)
            except ApiError as error:
                if error.status.code != 404:
                    raise
    logger.info("Deleted RBAC %s", name)


# --- Actions ------------------------------------------------------------------------------------


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
        namespace, name = _key(test)
        raw = test.to_dict()
        try:
            spec, error = parse(raw, default_namespace=namespace), ""
        except SpecError as problem:
            spec, error = None, str(problem)
        created = _meta(test).creationTimestamp
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
    with _api(app, "listing LocustTests"):
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
    names = child_names(ref.spec)
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
    with _api(app, "listing the tests' Services and Jobs"):
        services = {_key(s) for s in kube.list(Service, namespace=scope, labels=selector)}
        jobs = {_key(j): j for j in kube.list(Job, namespace=scope, labels=selector)}
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


def _get_or_none(kube: lightkube.Client, resource: Any, name: str, namespace: str) -> Any:
    try:
        return kube.get(resource, name, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def _event_time(event: Event) -> datetime:
    stamp = event.lastTimestamp or event.eventTime or event.firstTimestamp
    stamp = stamp or _meta(event).creationTimestamp
    return stamp or datetime.min.replace(tzinfo=timezone.utc)


def _events(kube: lightkube.Client, app: str, ref: TestRef, now: datetime) -> dict[str, Any]:
    with _api(app, f"listing the events of LocustTest {ref.name}"):
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
    names = child_names(spec)
    with _api(app, f"reading the children of LocustTest {name}"):
        service = _get_or_none(kube, Service, names.service, ref.namespace)
        jobs = {
            (ref.namespace, job_name): job
            for job_name in (names.master_job, names.worker_job)
            if (job := _get_or_none(kube, Job, job_name, ref.namespace)) is not None
        }
    services = {(ref.namespace, names.service)} if service else set()
    return results | {"spec": summary, "children": _children(ref, services, jobs)}
