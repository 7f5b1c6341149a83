"""List, then watch: local caches of the objects the operator cares about, reporting every change.

A cache is filled by a list and kept current by a watch that starts at the list's resourceVersion,
so no change between the two is missed. When the watch's resourceVersion has expired (410 Gone) or
the stream breaks, the informer lists again and reports the difference, including deletions it did
not see. Children are watched through a label selector, so the operator never caches every Job or
pod in the cluster, only its own.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.core.generic_client import ALL_NS

from ..api.naming import ObjectKey
from .metrics import WATCH_RESTARTS

log = logging.getLogger(__name__)

# Called with (key, old, new); old is None for an addition, new is None for a deletion.
ChangeHandler = Callable[[ObjectKey, "dict[str, Any] | None", "dict[str, Any] | None"], None]


def as_dict(obj: Any, api_version: str, kind: str) -> dict[str, Any]:
    """A lightkube object as the plain document the rest of the operator reads."""
    document = obj.to_dict()
    document.setdefault("apiVersion", api_version)
    document.setdefault("kind", kind)
    return document


def key_of(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj["metadata"]
    return ObjectKey(metadata.get("namespace") or "default", metadata["name"])


class Informer:
    """Keeps `cache` equal to one kind of object in one namespace (or all) and reports changes."""

    def __init__(
        self,
        client: AsyncClient,
        resource: Any,
        on_change: ChangeHandler,
        *,
        namespace: str | None = None,
        labels: LabelSelector | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        watch_timeout: int = 300,
        max_backoff: float = 30.0,
    ):
        self._client = client
        self._resource = resource
        info = resource._api_info
        self._api_version = (
            f"{info.resource.group}/{info.resource.version}"
            if info.resource.group
            else info.resource.version
        )
        self._kind = info.resource.kind
        self._on_change = on_change
        self._namespace = namespace or ALL_NS
        self._labels = labels
        self._transform = transform
        self._watch_timeout = watch_timeout
        self._max_backoff = max_backoff
        self.cache: dict[ObjectKey, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.connected = False

    @property
    def scope(self) -> str:
        where = "all namespaces" if self._namespace == ALL_NS else f"namespace {self._namespace}"
        return f"{info_plural(self._resource)} in {where}"

    async def run(self) -> None:
        """List and watch until cancelled, recovering from every error."""
        failures = 0
        while True:
            try:
                version = await self._list()
                failures = 0
                await self._watch(version)
            except asyncio.CancelledError:
                raise
            except ApiError as error:
                if error.status.code == 410:
                    log.info("Watch of %s expired, listing again", self.scope)
                    WATCH_RESTARTS.labels("expired").inc()
                    continue
                failures += 1
                self._lost(f"{error.status.code} {error.status.message}", failures)
            except Exception as error:  # connection refused, reset, timeouts: all retried
                failures += 1
                self._lost(str(error) or type(error).__name__, failures)
            await asyncio.sleep(backoff_delay(failures, self._max_backoff))

    def _lost(self, reason: str, failures: int) -> None:
        self.connected = False
        WATCH_RESTARTS.labels("error").inc()
        level = logging.WARNING if failures <= 3 or failures % 10 == 0 else logging.DEBUG
        log.log(level, "Lost the watch of %s (attempt %d): %s", self.scope, failures, reason)

    def _document(self, obj: Any) -> dict[str, Any]:
        document = as_dict(obj, self._api_version, self._kind)
        return self._transform(document) if self._transform else document

    async def _list(self) -> str:
        listing = self._client.list(self._resource, namespace=self._namespace, labels=self._labels)
        current = {}
        async for obj in listing:
            document = self._document(obj)
            current[key_of(document)] = document
        previous, self.cache = self.cache, current
        self.connected = True
        for key, old in previous.items():
            if key not in current:
                self._on_change(key, old, None)
        for key, document in current.items():
            before = previous.get(key)
            if before is None or before["metadata"].get("resourceVersion") != document[
                "metadata"
            ].get("resourceVersion"):
                self._on_change(key, before, document)
        self.synced.set()
        return listing.resourceVersion

    async def _watch(self, version: str) -> None:
        """Apply watch events to the cache until an error ends the watch.

        lightkube re-opens a stream the server closed cleanly (timeoutSeconds) from the last
        resourceVersion seen; every error is raised so that `run` lists again.
        """
        stream = self._client.watch(
            self._resource,
            namespace=self._namespace,
            labels=self._labels,
            resource_version=version,
            server_timeout=self._watch_timeout + random.randint(0, 60),
        )
        async for change, obj in stream:
            document = self._document(obj)
            key = key_of(document)
            old = self.cache.get(key)
            if change == "DELETED":
                self.cache.pop(key, None)
                self._on_change(key, old, None)
            elif change in ("ADDED", "MODIFIED"):
                self.cache[key] = document
                self._on_change(key, old, document)


def backoff_delay(failures: int, cap: float) -> float:
    """Seconds to wait before listing again after `failures` failures in a row: 0.2 s doubling,
    capped, with jitter so that informers which failed together do not retry together."""
    # The exponent is bounded: after about a thousand failures (hours of outage at the cap),
    # 2 ** failures no longer converts to a float and the informer would die of OverflowError.
    return min(0.2 * 2 ** min(failures - 1, 32), cap) * random.uniform(0.8, 1.2)


def info_plural(resource: Any) -> str:
    return resource._api_info.plural
