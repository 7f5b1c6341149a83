"""Reconcile one LocustTest: its children exist, and its status says how the test is doing.

The controller decides and calls the API; `resources.py` shapes every object and `status.py`
derives the status. A reconcile is level-triggered and idempotent: it reads the test and its
children from the caches, creates what is missing (a child that already exists counts as created),
and writes the status only when it changed, so restarts, retries and duplicate events converge.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from lightkube import ApiError, AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Service
from lightkube.types import CascadeType, PatchType

from .api.naming import ObjectKey, child_names
from .api.parse import parse
from .api.types import LocustTestV2, SpecError, TestSpec
from .config import OperatorConfig
from .resources import build_children
from .resources.command import flag_conflicts
from .resources.labels import GENERATION_ANNOTATION
from .status.conditions import (
    NORMAL,
    READY,
    TERMINAL,
    WARNING,
    InvolvedObject,
    condition,
    parse_time,
)
from .status.phase import Children, evaluate, final_status, invalid_status
from .status.results import MASTER_NOT_RUNNING, Observation, Problem
from .status.thresholds import verdict_event, verdict_status

log = logging.getLogger(__name__)

TestKey = ObjectKey
# Shown in ResourceDeleted events and logs, as upstream names them.
_CHILD_LABELS = {
    "service": "Master Service",
    "master_job": "Master Job",
    "worker_job": "Worker Job",
}


@dataclass(frozen=True)
class Result:
    """What the work queue does with the key after a reconcile."""

    requeue: bool = False
    after: float = 0.0  # seconds; 0 with requeue means at once

    @property
    def label(self) -> str:
        """controller-runtime's result label for the reconcile counter."""
        if not self.requeue:
            return "success"
        return "requeue_after" if self.after else "requeue"


DONE = Result()
# A 409 Conflict means our view was stale, not that the API is sick: look again at once.
REQUEUE = Result(requeue=True)


class ChildRefused(Exception):
    """The API server refused a child as invalid: the test cannot run as written."""


@dataclass(frozen=True)
class _Written:
    """A status this operator wrote, and the test's resourceVersions known to be older.

    resourceVersions are opaque: they can be compared for equality only. The older ones are
    those that reconciles read before the write and those earlier writes produced.
    """

    uid: str | None
    status: Mapping[str, Any]
    version: str  # the one the write produced
    older: frozenset[str]


class EventRecorder(Protocol):
    """Where the controller records Events: queued, written off the reconcile path."""

    def record(self, subject: InvolvedObject, type_: str, reason: str, message: str) -> None: ...


class ClusterView(Protocol):
    """The caches the controller reads a test's children from."""

    def service(self, key: ObjectKey) -> Mapping[str, Any] | None: ...

    def job(self, key: ObjectKey) -> Mapping[str, Any] | None: ...

    def pods(self, namespace: str, job_names: Sequence[str]) -> Sequence[Mapping[str, Any]]: ...


class ResultsSource(Protocol):
    """What the results poller last learnt from each test's master."""

    def observation(self, key: TestKey) -> Observation | None: ...


# Told of every status written (the test, the status before, the status after).
StatusListener = Callable[[TestKey, Mapping[str, Any], Mapping[str, Any]], Awaitable[None]]


class _NoResults:
    def observation(self, key: TestKey) -> Observation | None:
        return None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Reconciler:
    """Creates a LocustTest's children and keeps its status; raises on errors worth a retry."""

    def __init__(
        self,
        client: AsyncClient,
        config: OperatorConfig,
        recorder: EventRecorder,
        view: ClusterView,
        clock: Callable[[], datetime] = _utcnow,
        results: ResultsSource | None = None,
        on_status_written: StatusListener | None = None,
    ):
        self._client = client
        self._config = config
        self._recorder = recorder
        self._view = view
        self._clock = clock
        self._results = results or _NoResults()
        self._on_status_written = on_status_written
        # The status last written per test. While the cache shows a version from before that
        # write, its status is older than what the operator knows; starting from it would make
        # the same transition twice, with its events and log lines.
        self._written: dict[TestKey, _Written] = {}

    async def reconcile(self, key: TestKey, test: Mapping[str, Any] | None) -> Result:
        """Bring `test` (the latest known state of `key`, None if deleted) to its desired state."""
        if test is None:
            log.debug("LocustTest %s not found, likely deleted", key)
            self._written.pop(key, None)
            return DONE
        metadata = test.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            self._written.pop(key, None)
            return DONE  # the garbage collector removes the children through ownerReferences
        subject = InvolvedObject.of_test(test, key.namespace, key.name)
        current = self._current_status(key, metadata, test.get("status") or {})
        generation = int(metadata.get("generation") or 1)
        children, foreign = self._observe(key, metadata.get("uid"))
        owned = [c for c in (children.service, children.master_job, children.worker_job) if c]
        try:
            spec: TestSpec | None = parse(test)
        except SpecError as error:
            if not owned:
                return await self._invalid(key, subject, metadata, current, str(error))
            log.warning("LocustTest %s: the new spec is invalid and is ignored: %s", key, error)
            spec = None
        if current.get("phase") in TERMINAL:
            # Nothing is created or healed for a finished test; its status only settles.
            settled = final_status(current, self._clock())
            self._merge_results(key, spec, settled)
            if await self._commit(key, metadata, current, settled):
                self._record_verdict(subject, current, settled)
            return DONE
        created_generation = _created_generation(children.master_job)
        if (
            created_generation
            and generation > created_generation
            and (current.get("observedGeneration") != generation)
        ):
            log.info("LocustTest updated: %s in namespace: %s.", key.name, key.namespace)
            log.info("Update operations on %s are not currently supported!", key.name)
        if spec is not None and not children.complete:
            try:
                created = await self._create_missing(
                    spec, subject, children, foreign, current, metadata.get("uid")
                )
            except ChildRefused as refusal:
                return await self._invalid(key, subject, metadata, current, str(refusal))
            if isinstance(created, Result):
                return created
            children = created
            created_generation = created_generation or spec.generation
        now = self._clock()
        result = evaluate(
            current,
            generation=generation,
            expected_workers=spec.worker_replicas
            if spec
            else int(current.get("expectedWorkers") or 0),
            children=children,
            created_generation=created_generation,
            foreign=foreign,
            config_maps=_config_maps(spec),
            missing_config_maps=await self._missing_config_maps(spec, children, now),
            now=now,
            grace_seconds=self._config.pod_health_grace_seconds,
        )
        self._merge_results(key, spec, result.status)
        if not await self._commit(key, metadata, current, result.status):
            return DONE
        # Recorded once the status is written: a failed write is retried, its events with it.
        for event in result.events:
            self._recorder.record(subject, event.type, event.reason, event.message)
        self._record_verdict(subject, current, result.status)
        old_phase, new_phase = current.get("phase"), result.status.get("phase")
        if old_phase and old_phase != new_phase:
            log.info("LocustTest %s phase transition: %s -> %s", key, old_phase, new_phase)
        if result.requeue_after:
            return Result(requeue=True, after=result.requeue_after)
        return DONE

    def _merge_results(self, key: TestKey, spec: TestSpec | None, status: dict[str, Any]) -> None:
        """Put the poller's latest numbers, and the verdict on them, into `status`."""
        if spec is None:
            return  # an invalid new spec: what was judged stays as it was
        observation = self._results.observation(key) or Observation()
        results, problem = observation.results, observation.problem
        has_final = results is not None and results.final
        if status.get("phase") in TERMINAL and not has_final:
            # Its master is gone: whatever it said last was not the end of the test.
            results = None
            if problem is None and (spec.thresholds or status.get("results")):
                problem = Problem(
                    MASTER_NOT_RUNNING, "the master ended before its final results could be read"
                )
        if results is None and problem is None and not spec.thresholds:
            return
        verdict_status(status, spec.thresholds, results, problem, self._clock())

    def _record_verdict(
        self, subject: InvolvedObject, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        event = verdict_event(before, after)
        if event is not None:
            self._recorder.record(subject, event.type, event.reason, event.message)

    def _current_status(
        self, key: TestKey, metadata: Mapping[str, Any], cached: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        """The test's status: the cached one, unless this operator has written a newer one."""
        written = self._written.get(key)
        if written is None:
            return cached
        if written.uid == metadata.get("uid") and metadata.get("resourceVersion") in written.older:
            return written.status
        # The cache has caught up with the write (or gone past it), or this is another test of
        # the same name.
        del self._written[key]
        return cached

    async def _commit(
        self,
        key: TestKey,
        metadata: Mapping[str, Any],
        current: Mapping[str, Any],
        status: Mapping[str, Any],
    ) -> bool:
        """Write `status` if it differs from `current`; False if the test is gone."""
        if status == current:
            return True
        version = await self._write_status(key, status)
        previous = self._written.pop(key, None)
        if version is None:
            return False
        older = {metadata.get("resourceVersion")}
        if previous is not None and previous.uid == metadata.get("uid"):
            older |= {previous.version, *previous.older}
        older.discard(version)
        self._written[key] = _Written(
            metadata.get("uid"), status, version, frozenset(v for v in older if v)
        )
        if self._on_status_written is not None:
            await self._on_status_written(key, current, status)
        return True

    def _observe(self, key: TestKey, uid: str | None) -> tuple[Children, list[str]]:
        """The test's children from the caches; those owned by another object count as absent."""
        names = child_names(key.name)
        found: dict[str, Mapping[str, Any] | None] = {}
        foreign = []
        for attr, kind, lookup, name in (
            ("service", "Service", self._view.service, names.service),
            ("master_job", "Job", self._view.job, names.master_job),
            ("worker_job", "Job", self._view.job, names.worker_job),
        ):
            obj = lookup(ObjectKey(key.namespace, name))
            if obj is not None and not _owned_by(obj, uid):
                foreign.append(f"{kind} {name}")
                obj = None
            found[attr] = obj
        # Only the pods of these Jobs: a deleted namesake's pods may linger until collected.
        jobs = {
            (job.get("metadata") or {}).get("uid")
            for job in (found["master_job"], found["worker_job"])
            if job
        }
        pods = [
            pod
            for pod in self._view.pods(key.namespace, (names.master_job, names.worker_job))
            if any(o.get("uid") in jobs for o in pod["metadata"].get("ownerReferences") or ())
        ]
        return Children(pods=pods, **found), foreign

    async def _create_missing(
        self,
        spec: TestSpec,
        subject: InvolvedObject,
        children: Children,
        foreign: Sequence[str],
        current: Mapping[str, Any],
        uid: str | None,
    ) -> Children | Result:
        """Create the absent children in order.

        Returns the children, or the result to end the reconcile with: a requeue when a 409
        Conflict asks to look again, DONE when the test turns out to be gone.
        """
        ready = condition(current, READY)
        was_created = bool(ready and ready.get("status") == "True")
        found = {
            "service": children.service,
            "master_job": children.master_job,
            "worker_job": children.worker_job,
        }
        missing = [
            (attr, child)
            for attr, child in zip(found, build_children(spec, self._config), strict=True)
            if found[attr] is None and f"{child.kind} {_name(child)}" not in foreign
        ]
        if missing and was_created and not await self._still_exists(spec, uid):
            # Its children went with the test, and the cache has not seen the test go yet.
            return DONE
        created_any = False
        if not was_created:
            _warn_about_flag_conflicts(spec)
        for attr, child in missing:
            kind, name = child.kind, _name(child)
            try:
                made = await self._client.create(child)
            except ApiError as error:
                if _reason(error) == "AlreadyExists":
                    log.debug("%s %s already exists", kind, name)
                    continue
                if error.status.code == 409:
                    log.info(
                        "Conflict creating %s %s, retrying: %s", kind, name, error.status.message
                    )
                    return REQUEUE
                if error.status.code == 422:
                    # The checks in api/ missed a rule the API server applies: remove what
                    # exists rather than leave a half-made test, and say why.
                    await self._remove(spec.namespace, found)
                    raise ChildRefused(f"{kind} {name}: {error.status.message}") from None
                self._recorder.record(
                    subject,
                    WARNING,
                    "CreateFailed",
                    f"Failed to create {kind} {name}: {error.status.message}",
                )
                raise
            if was_created:
                # Only now is it certain the child was gone, not merely missing from a cache.
                log.info(
                    "%s externally deleted, recreated it for %s", _CHILD_LABELS[attr], spec.name
                )
                self._recorder.record(
                    subject,
                    WARNING,
                    "ResourceDeleted",
                    f"{_CHILD_LABELS[attr]} {name} was deleted externally, "
                    "will attempt recreation",
                )
            elif not created_any:
                log.info("LocustTest created: '%s'", spec.name)
            created_any = True
            found[attr] = made.to_dict()
            log.info("Created %s %s in namespace %s", kind, name, spec.namespace)
            self._recorder.record(subject, NORMAL, "Created", f"Created {kind} {name}")
        return Children(pods=children.pods, **found)

    async def _remove(self, namespace: str, found: Mapping[str, Mapping[str, Any] | None]) -> None:
        """Delete the test's children that exist (their pods go with them)."""
        for attr, child in found.items():
            if child is None:
                continue
            resource = Service if attr == "service" else Job
            name = child["metadata"]["name"]
            try:
                await self._client.delete(
                    resource, name, namespace=namespace, cascade=CascadeType.BACKGROUND
                )
            except ApiError as error:
                if error.status.code != 404:
                    raise
            log.info("Deleted %s %s: the test cannot run as written", resource.__name__, name)

    async def _still_exists(self, spec: TestSpec, uid: str | None) -> bool:
        """Whether the test is still there, the same one and not being deleted: asked of the API
        server, as the cache may lag behind the test's deletion that took its children."""
        try:
            live = await self._client.get(LocustTestV2, spec.name, namespace=spec.namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
            live = None
        metadata = live.metadata if live is not None else None
        if metadata is None or metadata.uid != uid or metadata.deletionTimestamp:
            log.info(
                "LocustTest %s/%s is gone or going: its children are not recreated",
                spec.namespace,
                spec.name,
            )
            return False
        return True

    async def _missing_config_maps(
        self, spec: TestSpec | None, children: Children, now: datetime
    ) -> list[str]:
        """ConfigMaps the test needs that do not exist, looked up only for pods stuck creating.

        A missing ConfigMap volume shows only as a pod stuck in ContainerCreating, so the names
        are checked then, and only then, to keep reconciles free of extra requests.
        """
        grace = self._config.pod_health_grace_seconds
        if spec is None or not any(_stuck_creating(pod, now, grace) for pod in children.pods):
            return []
        missing = []
        for name in _config_maps(spec):
            try:
                await self._client.get(ConfigMap, name, namespace=spec.namespace)
            except ApiError as error:
                if error.status.code == 404:
                    missing.append(name)
                elif error.status.code != 403:
                    raise
        return missing

    async def _invalid(
        self,
        key: TestKey,
        subject: InvolvedObject,
        metadata: Mapping[str, Any],
        current: Mapping[str, Any],
        problem: str,
    ) -> Result:
        ready = condition(current, READY)
        if ready and ready.get("reason") == "InvalidSpec" and ready.get("message") == problem:
            return DONE
        log.warning("LocustTest %s is invalid and was not created: %s", key, problem)
        generation = int(metadata.get("generation") or 1)
        status = invalid_status(current, problem, generation, self._clock())
        if await self._commit(key, metadata, current, status):
            self._recorder.record(subject, WARNING, "InvalidSpec", problem)
        return DONE

    async def _write_status(self, key: TestKey, status: Mapping[str, Any]) -> str | None:
        """Merge-patch the status; the resourceVersion it made, None if the test is gone."""
        try:
            patched = await self._client.patch(
                LocustTestV2.Status,
                key.name,
                {"status": status},
                namespace=key.namespace,
                patch_type=PatchType.MERGE,
            )
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise
        return (patched.metadata.resourceVersion if patched.metadata else None) or ""


def _warn_about_flag_conflicts(spec: TestSpec) -> None:
    for role, extra in (("master", spec.master.extra_args), ("worker", spec.worker.extra_args)):
        conflicts = flag_conflicts(extra)
        if conflicts:
            log.warning(
                "User-provided extraArgs override operator-managed flags: test %s/%s, "
                "mode %s, conflicts %s, behavior: user value takes precedence",
                spec.namespace,
                spec.name,
                role,
                ", ".join(conflicts),
            )


def _name(child: Service | Job) -> str:
    assert child.metadata is not None and child.metadata.name
    return str(child.metadata.name)


def _owned_by(obj: Mapping[str, Any], uid: str | None) -> bool:
    owners = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return any(o.get("controller") and o.get("uid") == uid for o in owners)


def _created_generation(master_job: Mapping[str, Any] | None) -> int | None:
    annotations = ((master_job or {}).get("metadata") or {}).get("annotations") or {}
    value = annotations.get(GENERATION_ANNOTATION)
    return int(value) if value and value.isdigit() else None


def _config_maps(spec: TestSpec | None) -> list[str]:
    if spec is None:
        return []
    names = [spec.config_map, spec.lib_config_map, *(s.name for s in spec.env_config_maps)]
    return list(dict.fromkeys(n for n in names if n))


def _stuck_creating(pod: Mapping[str, Any], now: datetime, grace_seconds: float) -> bool:
    created = parse_time(pod["metadata"].get("creationTimestamp"))
    if created is None or (now - created).total_seconds() < grace_seconds:
        return False
    status = pod.get("status") or {}
    return any(
        ((c.get("state") or {}).get("waiting") or {}).get("reason") == "ContainerCreating"
        for c in status.get("containerStatuses") or ()
    )


def _reason(error: ApiError) -> str | None:
    return getattr(error.status, "reason", None)
