"""The event recorder: queued off the caller's path, written by one task, repeats aggregated."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from lightkube import AsyncClient

from fakekube.server import FakeKube
from reconciler.runtime import events
from reconciler.runtime.events import EventRecorder
from reconciler.status.conditions import InvolvedObject
from tests.unit.runtime_support import client, eventually, logs, messages, requests_for

__all__ = ["client", "logs"]  # fixtures

TEST = InvolvedObject("locust.io/v2", "LocustTest", "default", "team.perftest", "uid-1")
OTHER = InvolvedObject("locust.io/v2", "LocustTest", "default", "other", "uid-2")


def recorded(kube: FakeKube) -> list[dict[str, Any]]:
    return sorted(kube.list("v1", "Event", "default"), key=lambda e: e["metadata"]["name"])


def by_message(kube: FakeKube) -> dict[str, dict[str, Any]]:
    return {e["message"]: e for e in kube.list("v1", "Event", "default")}


Recorder = Callable[..., EventRecorder]


@pytest.fixture
async def recorder(client: AsyncClient) -> AsyncIterator[Recorder]:
    """Make (and start, unless told not to) recorders; each is stopped afterwards."""
    made: list[EventRecorder] = []

    def make(start: bool = True, **options: Any) -> EventRecorder:
        recorder = EventRecorder(client, **options)
        if start:
            recorder.start()
        made.append(recorder)
        return recorder

    yield make
    for recorder in made:
        await recorder.stop(timeout=0.2)


async def test_an_event_is_written_as_kubernetes_shows_it(
    fakekube: FakeKube, recorder: Recorder
) -> None:
    recorder().record(TEST, "Normal", "Created", "Created Job team-perftest-master")

    (event,) = await eventually(lambda: recorded(fakekube), "the event")
    assert event["metadata"]["name"].startswith("team.perftest.")
    assert event["involvedObject"] == {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "namespace": "default",
        "name": "team.perftest",
        "uid": "uid-1",
    }
    assert (event["type"], event["reason"], event["message"]) == (
        "Normal",
        "Created",
        "Created Job team-perftest-master",
    )
    assert event["count"] == 1
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert event["source"] == {"component": "locust-operator"}


async def test_recording_only_queues_so_a_slow_write_never_holds_the_caller(
    fakekube: FakeKube, recorder: Recorder
) -> None:
    held = fakekube.faults.add(verb="create", resource="events", delay=0.5, times=1)
    events_recorder = recorder()

    events_recorder.record(TEST, "Normal", "Created", "first")
    # record() is not a coroutine and never yields: nothing can have been sent yet.
    assert requests_for(fakekube, "events") == []
    await eventually(lambda: held.hits == 1, "the first write to be held in the server")
    events_recorder.record(TEST, "Normal", "Created", "second")  # returns while the write waits

    found = await eventually(lambda: len(recorded(fakekube)) == 2 and by_message(fakekube), "both")
    assert set(found) == {"first", "second"}


async def test_a_failed_write_is_logged_and_the_recorder_goes_on(
    fakekube: FakeKube, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    fakekube.faults.add(verb="create", resource="events", status=500, times=1)
    events_recorder = recorder()

    events_recorder.record(TEST, "Warning", "CreateFailed", "lost")
    events_recorder.record(TEST, "Normal", "Created", "kept")

    await eventually(lambda: "kept" in by_message(fakekube), "the second event")
    assert "lost" not in by_message(fakekube)
    assert "Could not record event CreateFailed for team.perftest: fakekube injected fault" in (
        messages(logs, "reconciler.runtime.events", logging.WARNING)
    )


async def test_repeats_within_the_window_bump_the_count_of_one_event(
    fakekube: FakeKube, recorder: Recorder
) -> None:
    events_recorder = recorder()
    for _ in range(3):
        events_recorder.record(TEST, "Warning", "CreateFailed", "quota exceeded")
    events_recorder.record(TEST, "Warning", "CreateFailed", "another message")
    events_recorder.record(OTHER, "Warning", "CreateFailed", "quota exceeded")

    await eventually(lambda: len(requests_for(fakekube, "events")) == 5, "five writes")
    repeated = [e for e in recorded(fakekube) if e["message"] == "quota exceeded"]
    assert sorted((e["involvedObject"]["name"], e["count"]) for e in repeated) == [
        ("other", 1),
        ("team.perftest", 3),
    ]
    assert by_message(fakekube)["another message"]["count"] == 1
    assert [r.verb for r in requests_for(fakekube, "events")].count("patch") == 2


async def test_repeats_after_the_window_are_new_events(
    fakekube: FakeKube, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "_AGGREGATION_WINDOW", 0.0)
    events_recorder = recorder()
    events_recorder.record(TEST, "Warning", "CreateFailed", "quota exceeded")
    events_recorder.record(TEST, "Warning", "CreateFailed", "quota exceeded")

    found = await eventually(lambda: len(recorded(fakekube)) == 2 and recorded(fakekube), "two")
    assert [e["count"] for e in found] == [1, 1]


async def test_a_repeat_of_an_event_deleted_meanwhile_is_created_anew(
    fakekube: FakeKube, recorder: Recorder
) -> None:
    events_recorder = recorder()
    events_recorder.record(TEST, "Warning", "CreateFailed", "quota exceeded")
    (first,) = await eventually(lambda: recorded(fakekube), "the event")
    fakekube.delete("v1", "Event", first["metadata"]["name"], "default")  # e.g. its TTL ran out

    events_recorder.record(TEST, "Warning", "CreateFailed", "quota exceeded")

    (second,) = await eventually(lambda: recorded(fakekube), "the new event")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert second["count"] == 1
    patch, create = requests_for(fakekube, "events")[1:]
    assert (patch.verb, patch.status_code, create.verb) == ("patch", 404, "create")


async def test_a_full_queue_drops_the_event_with_a_warning_and_never_raises(
    fakekube: FakeKube, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    events_recorder = recorder(start=False, capacity=2)
    for message in ("one", "two", "three"):
        events_recorder.record(TEST, "Warning", "CreateFailed", message)

    assert events_recorder.dropped == 1
    assert "Event queue full, dropped Warning event CreateFailed for team.perftest" in (
        messages(logs, "reconciler.runtime.events", logging.WARNING)
    )
    events_recorder.start()
    await events_recorder.stop()
    assert set(by_message(fakekube)) == {"one", "two"}


async def test_stop_writes_what_is_queued_first(fakekube: FakeKube, recorder: Recorder) -> None:
    events_recorder = recorder()
    for n in range(5):
        events_recorder.record(TEST, "Normal", "Created", f"event {n}")

    await events_recorder.stop()

    assert set(by_message(fakekube)) == {f"event {n}" for n in range(5)}


async def test_stop_gives_up_on_a_stalled_api_server_after_its_timeout(
    fakekube: FakeKube, recorder: Recorder, logs: pytest.LogCaptureFixture
) -> None:
    held = fakekube.faults.add(verb="create", resource="events", delay=5)
    events_recorder = recorder()
    events_recorder.record(TEST, "Normal", "Created", "stuck")
    events_recorder.record(TEST, "Normal", "Created", "queued")
    await eventually(lambda: held.hits == 1, "the write to be held in the server")

    await asyncio.wait_for(events_recorder.stop(timeout=0.1), 20)

    assert "Gave up writing" in messages(logs, "reconciler.runtime.events", logging.WARNING)
    assert recorded(fakekube) == []
