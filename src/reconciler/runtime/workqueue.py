"""A work queue with client-go's guarantees, for asyncio.

* a key waiting in the queue is held once, however often it is added;
* a key is never handed to two workers at once: added while being processed, it is queued again
  when the worker calls `done`;
* failures are retried with per-key exponential backoff (with jitter, capped), and `forget` resets
  it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

from .metrics import WORKQUEUE_ADDS, WORKQUEUE_DEPTH, WORKQUEUE_RETRIES

K = TypeVar("K", bound=Hashable)


class ShutDown(Exception):
    """The queue was shut down; workers should exit."""


class WorkQueue(Generic[K]):
    def __init__(
        self, name: str = "locusttest", *, base_delay: float = 0.005, max_delay: float = 300.0
    ):
        self._name = name
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._ready: asyncio.Queue[K | None] = asyncio.Queue()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._shutting_down = False
        self._depth = WORKQUEUE_DEPTH.labels(name)
        self._adds = WORKQUEUE_ADDS.labels(name)
        self._retries = WORKQUEUE_RETRIES.labels(name)

    def __len__(self) -> int:
        return len(self._dirty)

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(key)
        if key not in self._processing:
            self._ready.put_nowait(key)
            self._depth.inc()

    def add_after(self, key: K, delay: float) -> None:
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key: K) -> float:
        """Requeue after this key's next backoff delay; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = min(self._base_delay * (2**failures), self._max_delay)
        delay *= random.uniform(0.8, 1.2)  # jitter: failures that started together spread out
        self._retries.inc()
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    async def get(self) -> K:
        """Wait for the next key; raises ShutDown once the queue is shut down."""
        key = await self._ready.get()
        if key is None or self._shutting_down:
            self._ready.put_nowait(None)  # wake the next worker too
            raise ShutDown
        self._depth.dec()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._ready.put_nowait(key)
            self._depth.inc()

    def shut_down(self) -> None:
        """Stop handing out keys; workers finish their current key and get ShutDown."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.put_nowait(None)
