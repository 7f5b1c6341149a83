"""Pebble custom notices: how the reconciler tells the charm that a test changed.

Under Juju the reconciler runs as a Pebble service in the charm's workload container. Juju
starts that container's Pebble with `PEBBLE_SOCKET` set, and Pebble passes its own environment
on to the services it starts, so the reconciler finds the socket there. A notice recorded
through it (`POST /v1/notices`, type `custom`) reaches the charm as a `pebble-custom-notice`
event within a moment, which is how results reach related applications without waiting for
update-status.

Notifying is best-effort: no socket, a refused request or a Pebble that is not up are logged
once at debug level and never raised, so a test's reconcile never depends on them. A burst of
notices for one key (many tests changing at once) is coalesced: at most one request per
`min_interval` seconds, and always one after the last call, so the charm never misses the
final change.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2

logger = logging.getLogger(__name__)

#: The key the charm listens for: some LocustTest's phase or verdict changed.
TEST_CHANGED = "locust.io/test-changed"
SOCKET_ENV = "PEBBLE_SOCKET"
DEFAULT_MIN_INTERVAL = 1.0
DEFAULT_TIMEOUT = 5.0


def worth_a_notice(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Whether a test's status write changes what the charm reports: its phase or verdict."""
    before = before or {}
    return any(before.get(key) != after.get(key) for key in ("phase", "verdict"))


class PebbleNotifier:
    """Records Pebble custom notices over Pebble's unix socket, coalescing bursts per key."""

    def __init__(
        self,
        socket_path: str,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.socket_path = socket_path
        self._min_interval = min_interval
        self._timeout = timeout
        self._clock = clock
        self._pending: dict[str, dict[str, str]] = {}
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._last_sent: dict[str, float] = {}
        self._failing = False
        self._client: httpx2.AsyncClient | None = None

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> PebbleNotifier | None:
        """A notifier on `$PEBBLE_SOCKET` (`env` defaults to the process's environment), or
        None when the variable is unset: not running under Pebble."""
        path = (os.environ if env is None else env).get(SOCKET_ENV, "")
        return cls(path, min_interval=min_interval, timeout=timeout) if path else None

    async def notify(self, key: str = TEST_CHANGED, data: Mapping[str, str] | None = None) -> None:
        """Ask for a notice `key` (with `data`, the latest call's wins); returns at once.

        The notice is sent in the background: at once if none was sent for `key` in the last
        `min_interval` seconds, else when that interval has passed (one notice for all the
        calls meanwhile).
        """
        self._pending[key] = dict(data or {})
        if key not in self._senders:
            self._senders[key] = asyncio.create_task(self._send_pending(key))

    async def flush(self) -> None:
        """Wait until every asked-for notice has been sent (or has failed)."""
        while self._senders:
            await asyncio.gather(*self._senders.values(), return_exceptions=True)

    async def close(self) -> None:
        """Send what is pending, then release the connection."""
        await self.flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send_pending(self, key: str) -> None:
        try:
            while key in self._pending:
                wait = self._last_sent.get(key, -self._min_interval) + self._min_interval
                delay = wait - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                data = self._pending.pop(key)
                await self._post(key, data)
                self._last_sent[key] = self._clock()
        finally:
            del self._senders[key]

    async def _post(self, key: str, data: Mapping[str, str]) -> None:
        body: dict[str, object] = {"action": "add", "type": "custom", "key": key}
        if data:
            body["data"] = dict(data)
        if self._client is None:
            transport = httpx2.AsyncHTTPTransport(uds=self.socket_path)
            self._client = httpx2.AsyncClient(
                transport=transport, base_url="http://localhost", timeout=self._timeout
            )
        try:
            response = await self._client.post("/v1/notices", json=body)
            if response.status_code != 200:
                problem = f"{response.status_code} {' '.join(response.text.split())[:200]}"
            else:
                problem = ""
        except Exception as error:  # best-effort: whatever goes wrong, the reconcile goes on
            problem = f"{type(error).__name__}: {error}"
        if problem:
            if not self._failing:
                logger.debug(
                    "Could not record the Pebble notice %s on %s: %s (further failures are "
                    "not logged until one succeeds)",
                    key,
                    self.socket_path,
                    problem,
                )
            self._failing = True
        else:
            self._failing = False
