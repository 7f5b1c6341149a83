"""The work queue's guarantees: dedup, one worker per key, backoff, shutdown."""

import asyncio

import pytest

from reconciler.runtime.workqueue import ShutDown, WorkQueue


async def test_a_key_added_twice_while_waiting_is_handed_out_once():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    assert [await queue.get(), await queue.get()] == ["a", "b"]
    assert len(queue) == 0


async def test_a_key_added_while_processing_waits_for_done():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add("a")  # a change arrives while the worker still reconciles
    queue.add("b")
    # b, added after a, is what a second worker gets: a waits for the first worker.
    assert await asyncio.wait_for(queue.get(), 10) == "b"
    assert len(queue) == 1
    queue.done(key)
    assert await asyncio.wait_for(queue.get(), 10) == "a"


async def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    queue: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.05)
    delays = [queue.add_rate_limited("a") for _ in range(5)]
    assert 0.008 <= delays[0] <= 0.012
    assert 0.016 <= delays[1] <= 0.024
    assert all(d <= 0.06 for d in delays)
    assert queue.failures("a") == 5
    queue.forget("a")
    assert queue.failures("a") == 0


async def test_rate_limited_key_comes_back_after_its_delay():
    queue: WorkQueue[str] = WorkQueue(base_delay=0.05)
    queue.add_rate_limited("a")
    assert len(queue) == 0
    assert await asyncio.wait_for(queue.get(), 1) == "a"


async def test_shut_down_releases_every_waiting_worker():
    queue: WorkQueue[str] = WorkQueue()
    waiters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    queue.shut_down()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ShutDown) for r in results)


async def test_no_new_work_is_handed_out_after_shut_down():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.shut_down()
    queue.add("b")
    with pytest.raises(ShutDown):
        await queue.get()
