"""A work queue with client-go's guarantees, for asyncio.

* a key waiting in the queue is held once, however often it is added;
* a key is never handed to two workers at once: added while being processed, it is queued again
  when the worker calls `done`;
* failures are retried with per-key exponential backoff (with jitter, capped), and `forget` resets
  it;
* keys added with `add_low_priority` (the results poller's wake-ups: status writes of running
  tests) are handed out only when no other key waits, so a burst of new tests is not queued
  behind them; `add` of a waiting low-priority key moves it ahead.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
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
        # Keys waiting for a worker, each lane in the order added (dicts as ordered sets).
        self._urgent: dict[K, None] = {}
        self._low: dict[K, None] = {}
        # One True per waiting key, so that `get` can wait; False once shut down.
        self._signals: asyncio.Queue[bool] = asyncio.Queue()
        self._dirty: dict[K, bool] = {}  # key -> added with low priority only
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._shutting_down = False
        self._last_add = -math.inf
        self._depth = WORKQUEUE_DEPTH.labels(name)
        self._adds = WORKQUEUE_ADDS.labels(name)
        self._retries = WORKQUEUE_RETRIES.labels(name)

    def __len__(self) -> int:
        return len(self._dirty)

    def added_within(self, seconds: float) -> bool:
        """Whether a key was added with `add` (not `add_low_priority`) in the last `seconds`:
        the queue has new work coming in."""
        return time.monotonic() - self._last_add < seconds

    def add(self, key: K) -> None:
        if self._shutting_down:
            return
        self._last_add = time.monotonic()
        if key not in self._dirty:
            self._insert(key, low_priority=False)
        elif self._dirty[key]:  # promoted: a change to the test or its children came in
            self._dirty[key] = False
            if key in self._low:
                del self._low[key]
                self._urgent[key] = None

    def add_low_priority(self, key: K) -> None:
        """Add `key` behind every key added with `add`, now or later, while it waits."""
        if not self._shutting_down and key not in self._dirty:
            self._insert(key, low_priority=True)

    def _insert(self, key: K, *, low_priority: bool) -> None:
        self._adds.inc()
        self._dirty[key] = low_priority
        if key not in self._processing:
            self._push(key)

    def _push(self, key: K) -> None:
        (self._low if self._dirty[key] else self._urgent)[key] = None
        self._signals.put_nowait(True)
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
        if not await self._signals.get() or self._shutting_down:
            self._signals.put_nowait(False)  # wake the next worker too
            raise ShutDown
        lane = self._urgent or self._low
        key = next(iter(lane))
        del lane[key]
        self._depth.dec()
        del self._dirty[key]
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._push(key)

    def shut_down(self) -> None:
        """Stop handing out keys; workers finish their current key and get ShutDown."""
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._signals.put_nowait(False)
