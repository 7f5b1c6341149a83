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


async def test_low_priority_keys_wait_behind_every_other_key():
    queue: WorkQueue[str] = WorkQueue()
    queue.add_low_priority("polled-1")
    queue.add("new-1")
    queue.add_low_priority("polled-2")
    queue.add("new-2")
    assert [await queue.get() for _ in range(4)] == ["new-1", "new-2", "polled-1", "polled-2"]


async def test_adding_a_waiting_low_priority_key_moves_it_ahead_once():
    queue: WorkQueue[str] = WorkQueue()
    queue.add_low_priority("a")
    queue.add("b")
    queue.add("a")  # its Job changed: more than a status write is due
    queue.add_low_priority("a")  # does not send it back
    assert [await queue.get() for _ in range(2)] == ["b", "a"]
    assert len(queue) == 0


async def test_a_key_added_while_processing_keeps_the_higher_priority_for_after_done():
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    key = await queue.get()
    queue.add_low_priority("a")
    queue.add_low_priority("c")
    queue.add("a")
    queue.done(key)
    assert [await queue.get() for _ in range(2)] == ["a", "c"]


async def test_only_keys_added_with_add_count_as_new_work_coming_in():
    queue: WorkQueue[str] = WorkQueue()
    queue.add_low_priority("polled")
    assert not queue.added_within(60)
    queue.add("new")
    assert queue.added_within(60)
    assert not queue.added_within(0)
