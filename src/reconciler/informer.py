"""List, then watch: a local cache of LocustTests that tells the controller what changed.

The cache is filled by a list and kept current by a watch that starts at the list's resourceVersion,
so no change between the two is missed. When the watch's resourceVersion has expired (410 Gone) or the
stream breaks, the informer lists again and reports the difference, including deletions it did not see.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.core.generic_client import ALL_NS
from lightkube.generic_resource import create_namespaced_resource

from .controller import TestKey
from .crds import GROUP, KIND, PLURAL
from .metrics import WATCH_RESTARTS

log = logging.getLogger(__name__)

LocustTestV1 = create_namespaced_resource(GROUP, "v1", KIND, PLURAL)
API_VERSION = f"{GROUP}/v1"

# Called with (key, old, new); old is None for an addition, new is None for a deletion.
ChangeHandler = Callable[[TestKey, "dict[str, Any] | None", "dict[str, Any] | None"], None]


def as_dict(obj: Any) -> dict[str, Any]:
    """A LocustTest from lightkube as the plain document the spec parser reads."""
    return {"apiVersion": API_VERSION, "kind": KIND, **obj.to_dict()}


def key_of(test: dict[str, Any]) -> TestKey:
    return TestKey(test["metadata"].get("namespace") or "default", test["metadata"]["name"])


class Informer:
    """Keeps `cache` equal to the LocustTests in one namespace (or all) and reports every change."""

    def __init__(
        self,
        client: AsyncClient,
        on_change: ChangeHandler,
        *,
        namespace: str | None = None,
        watch_timeout: int = 300,
        max_backoff: float = 30.0,
    ):
        self._client = client
        self._on_change = on_change
        self._namespace = namespace or ALL_NS
        self._watch_timeout = watch_timeout
        self._max_backoff = max_backoff
        self.cache: dict[TestKey, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.connected = False

    @property
    def scope(self) -> str:
        return "all namespaces" if self._namespace == ALL_NS else f"namespace {self._namespace}"

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
                    log.info("Watch of LocustTests in %s expired, listing again", self.scope)
                    WATCH_RESTARTS.labels("expired").inc()
                    continue
                failures += 1
                self._lost(f"{error.status.code} {error.status.message}", failures)
            except Exception as error:  # connection refused, reset, timeouts: all retried
                failures += 1
                self._lost(str(error) or type(error).__name__, failures)
            delay = min(0.2 * 2 ** (failures - 1), self._max_backoff) * random.uniform(0.8, 1.2)
            await asyncio.sleep(delay)

    def _lost(self, reason: str, failures: int) -> None:
        self.connected = False
        WATCH_RESTARTS.labels("error").inc()
        level = logging.WARNING if failures <= 3 or failures % 10 == 0 else logging.DEBUG
        log.log(level, "Lost the LocustTest watch in %s (attempt %d): %s", self.scope, failures,
                reason)

    async def _list(self) -> str:
        listing = self._client.list(LocustTestV1, namespace=self._namespace)
        current = {}
        async for obj in listing:
            test = as_dict(obj)
            current[key_of(test)] = test
        previous, self.cache = self.cache, current
        self.connected = True
        for key, old in previous.items():
            if key not in current:
                self._on_change(key, old, None)
        for key, test in current.items():
            old = previous.get(key)
            if old is None or old["metadata"].get("resourceVersion") != test["metadata"].get(
                "resourceVersion"
            ):
                self._on_change(key, old, test)
        self.synced.set()
        return listing.resourceVersion

    async def _watch(self, version: str) -> None:
        """Apply watch events to the cache until an error ends the watch.

        lightkube re-opens a stream the server closed cleanly (timeoutSeconds) from the last
        resourceVersion seen; every error is raised so that `run` lists again.
        """
        stream = self._client.watch(
            LocustTestV1,
            namespace=self._namespace,
            resource_version=version,
            server_timeout=self._watch_timeout + random.randint(0, 60),
        )
        async for change, obj in stream:
            test = as_dict(obj)
            key = key_of(test)
            old = self.cache.get(key)
            if change == "DELETED":
                self.cache.pop(key, None)
                self._on_change(key, old, None)
            elif change in ("ADDED", "MODIFIED"):
                self.cache[key] = test
                self._on_change(key, old, test)

