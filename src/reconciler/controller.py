"""Reconcile one LocustTest: make its master Service, master Job and worker Job exist.

The controller decides and calls the API; the builders in `resources.py` shape every object. A
reconcile is idempotent: creating a child that already exists counts as success, so a restart, a
retry or a duplicate event converges on the same three objects without duplicates or errors.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lightkube import ApiError, AsyncClient

from .config import OperatorConfig
from .events import NORMAL, WARNING, EventRecorder, InvolvedObject
from .resources import build_children
from .spec import SpecError, TestSpec, parse

log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What the work queue should do with the key after a reconcile."""

    DONE = "success"
    REQUEUE = "requeue"  # at once: a 409 Conflict means our view was stale, not that the API is sick


@dataclass(frozen=True)
class TestKey:
    """Identifies a LocustTest in the work queue."""

    __test__ = False

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class Reconciler:
    """Creates a LocustTest's children; raises on errors worth a retry with backoff."""

    def __init__(self, client: AsyncClient, config: OperatorConfig, recorder: EventRecorder):
        self._client = client
        self._config = config
        self._recorder = recorder

    async def reconcile(self, key: TestKey, test: Mapping[str, Any] | None) -> Outcome:
        """Bring `test` (the latest known state of `key`, None if deleted) to its desired state."""
        if test is None:
            log.debug("LocustTest %s not found, likely deleted", key)
            return Outcome.DONE
        metadata = test.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            return Outcome.DONE  # the garbage collector removes the children through ownerReferences
        subject = _involved(test, key)
        try:
            spec = parse(test)
        except SpecError as error:
            log.warning("LocustTest %s is invalid and was not created: %s", key, error)
            self._recorder.record(subject, WARNING, "InvalidSpec", str(error))
            return Outcome.DONE
        if spec.generation > 1:
            log.info("LocustTest updated: %s in namespace: %s.", spec.name, spec.namespace)
            log.info("Update operations on %s are not currently supported!", spec.name)
            return Outcome.DONE
        return await self._create_children(spec, subject)

    async def _create_children(self, spec: TestSpec, subject: InvolvedObject) -> Outcome:
        created = []
        for child in build_children(spec, self._config):
            kind, name = child.kind, child.metadata.name
            try:
                await self._client.create(child, namespace=spec.namespace)
            except ApiError as error:
                if _reason(error) == "AlreadyExists":
                    log.debug("%s %s already exists", kind, name)
                    continue
                if error.status.code == 409:
                    log.info("Conflict creating %s %s, retrying: %s", kind, name,
                             error.status.message)
                    return Outcome.REQUEUE
                self._recorder.record(subject, WARNING, "CreateFailed",
                                      f"Failed to create {kind} {name}: {error.status.message}")
                raise
            if not created:
                log.info("LocustTest created: '%s'", spec.name)
            created.append(child)
            log.info("Created %s %s in namespace %s", kind, name, spec.namespace)
            self._recorder.record(subject, NORMAL, "Created", f"Created {kind} {name}")
        if not created:
            log.debug("LocustTest %s/%s: all children already exist", spec.namespace, spec.name)
        return Outcome.DONE


def _reason(error: ApiError) -> str | None:
    return getattr(error.status, "reason", None)


def _involved(test: Mapping[str, Any], key: TestKey) -> InvolvedObject:
    metadata = test.get("metadata") or {}
    return InvolvedObject(
        api_version=test.get("apiVersion", "locust.io/v1"),
        kind=test.get("kind", "LocustTest"),
        namespace=key.namespace,
        name=key.name,
        uid=metadata.get("uid"),
    )
