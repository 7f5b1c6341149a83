"""Kubernetes Events, recorded off the reconcile path.

Like client-go's event broadcaster, `EventRecorder.record` only queues; a background task writes
the Events, so a slow or failing Event write never delays a test's children. Repeats of the same
event (same object, type, reason and message) within ten minutes bump the existing Event's `count`
instead of creating a new object, which keeps a test that fails on every retry from flooding the
namespace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone

from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from ..status.conditions import InvolvedObject

log = logging.getLogger(__name__)

COMPONENT = "locust-operator"
_AGGREGATION_WINDOW = 600.0
_REMEMBERED = 4096


@dataclass(frozen=True)
class _Pending:
    subject: InvolvedObject
    type: str
    reason: str
    message: str


class EventRecorder:
    """Queues events and writes them from one background task."""

    def __init__(self, client: AsyncClient, *, capacity: int = 10_000):
        self._client = client
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=capacity)
        self._recent: OrderedDict[_Pending, tuple[str, int, float]] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def record(self, subject: InvolvedObject, type_: str, reason: str, message: str) -> None:
        """Queue an event; never blocks and never raises."""
        try:
            self._queue.put_nowait(_Pending(subject, type_, reason, message))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "Event queue full, dropped %s event %s for %s", type_, reason, subject.name
            )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-recorder")

    async def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (up to `timeout` seconds), then stop."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except asyncio.TimeoutError:
            log.warning("Gave up writing %d queued events at shutdown", self._queue.qsize())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except ApiError as error:
                log.warning(
                    "Could not record event %s for %s: %s",
                    pending.reason,
                    pending.subject.name,
                    error.status.message,
                )
            except Exception as error:  # a lost event must never stop the recorder
                log.warning(
                    "Could not record event %s for %s: %s",
                    pending.reason,
                    pending.subject.name,
                    error,
                )
            finally:
                self._queue.task_done()

    async def _write(self, pending: _Pending) -> None:
        now = time.monotonic()
        stamp = datetime.now(timezone.utc)
        previous = self._recent.get(pending)
        if previous and now - previous[2] < _AGGREGATION_WINDOW:
            name, count, _ = previous
            patch = {"count": count + 1, "lastTimestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")}
            try:
                await self._client.patch(Event, name, patch, namespace=pending.subject.namespace)
                self._remember(pending, name, count + 1, now)
                return
            except ApiError as error:
                if error.status.code != 404:
                    raise
        created = await self._client.create(_event(pending, stamp))
        assert created.metadata is not None and created.metadata.name
        self._remember(pending, created.metadata.name, 1, now)

    def _remember(self, pending: _Pending, name: str, count: int, now: float) -> None:
        self._recent[pending] = (name, count, now)
        self._recent.move_to_end(pending)
        while len(self._recent) > _REMEMBERED:
            self._recent.popitem(last=False)


def _event(pending: _Pending, stamp: datetime) -> Event:
    subject = pending.subject
    return Event(
        metadata=ObjectMeta(generateName=f"{subject.name}.", namespace=subject.namespace),
        involvedObject=ObjectReference(
            apiVersion=subject.api_version,
            kind=subject.kind,
            name=subject.name,
            namespace=subject.namespace,
            uid=subject.uid,
        ),
        type=pending.type,
        reason=pending.reason,
        message=pending.message,
        count=1,
        firstTimestamp=stamp,
        lastTimestamp=stamp,
        source=EventSource(component=COMPONENT),
    )
