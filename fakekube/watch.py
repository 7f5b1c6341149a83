"""Watch events and watchers.

A watcher sees an event through its filters the way the apiserver's watch cache does: an object
that starts matching a label or field selector is ADDED, one that stops matching is DELETED.
Each event's JSON line is encoded once per served version and shared by every watcher.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from .selectors import FieldSelector, LabelSelector

if TYPE_CHECKING:
    from .resources import ResourceType

ADDED, MODIFIED, DELETED, BOOKMARK, ERROR = "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"

_encode = msgspec.json.encode


def event_line(event_type: str, obj: dict[str, Any]) -> bytes:
    """One newline-terminated watch event, as the apiserver streams it."""
    return b'{"type":"' + event_type.encode() + b'","object":' + _encode(obj) + b"}\n"


@dataclass(eq=False)
class WatchEvent:
    """A change to one stored object: its new state (last state for DELETED) and its previous one."""

    type: str
    object: dict[str, Any]
    previous: dict[str, Any] | None
    resource_version: int
    _encoded: dict[str, bytes] = field(default_factory=dict, repr=False)

    def encoded_object(self, rt: ResourceType) -> bytes:
        cached = self._encoded.get(rt.api_version)
        if cached is None:
            cached = self._encoded[rt.api_version] = _encode(rt.present(self.object))
        return cached


class Watcher:
    """One open watch request: its filters and the queue of lines still to send."""

    def __init__(
        self, rt: ResourceType, namespace: str | None, labels: LabelSelector, fields: FieldSelector
    ):
        self.rt = rt
        self.namespace = namespace
        self.labels = labels
        self.fields = fields
        self.lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def matches(self, obj: dict[str, Any]) -> bool:
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels.matches(meta.get("labels")) and self.fields.matches(
            self.rt.present(obj)
        )

    def send(self, event_type: str, obj: dict[str, Any]) -> None:
        self.lines.put_nowait(event_line(event_type, self.rt.present(obj)))

    def offer(self, event: WatchEvent) -> None:
        now_matches = self.matches(event.object)
        if event.type == MODIFIED:
            before_matched = event.previous is not None and self.matches(event.previous)
            if now_matches and not before_matched:
                event_type = ADDED
            elif before_matched and not now_matches:
                event_type = DELETED
            elif now_matches:
                event_type = MODIFIED
            else:
                return
        elif now_matches:
            event_type = event.type
        else:
            return
        payload = event.encoded_object(self.rt)
        self.lines.put_nowait(
            b'{"type":"' + event_type.encode() + b'","object":' + payload + b"}\n"
        )

    def close(self) -> None:
        """End the stream cleanly after the lines already queued."""
        self.lines.put_nowait(None)
