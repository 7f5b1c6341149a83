"""The informer: list, then watch from the list's resourceVersion; list again when the watch cannot
resume, reporting every change, deletions it never saw included."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import ConfigMap
from prometheus_client import REGISTRY

from fakekube.server import FakeKube
from reconciler.api.naming import ObjectKey
from reconciler.runtime.informer import Informer, as_dict, backoff_delay, key_of
from tests.unit.runtime_support import (
    client,
    eventually,
    logs,
    messages,
    requests_for,
)

__all__ = ["client", "logs"]  # fixtures

A, B, C = (ObjectKey("default", name) for name in ("a", "b", "c"))


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": name}}


class Changes:
    """The informer's change handler: remembers every (key, old, new) it is called with."""

    def __init__(self) -> None:
        self.seen: list[tuple[ObjectKey, dict[str, Any] | None, dict[str, Any] | None]] = []

    def __call__(
        self, key: ObjectKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        self.seen.append((key, old, new))

    def summary(self) -> list[tuple[str, str]]:
        """What happened to which object, in order: added, modified or deleted."""
        return [
            ("added" if old is None else "deleted" if new is None else "modified", key.name)
            for key, old, new in self.seen
        ]


Start = Callable[..., Informer]


@pytest.fixture
async def start(client: AsyncClient) -> AsyncIterator[Start]:
    """Run informers of ConfigMaps on the fake API server; they are cancelled afterwards."""
    tasks: list[asyncio.Task[None]] = []

    def start(changes: Changes, **options: Any) -> Informer:
        options.setdefault("namespace", "default")
        informer = Informer(client, ConfigMap, changes, **options)
        tasks.append(asyncio.create_task(informer.run()))
        return informer

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def synced(informer: Informer) -> None:
    await asyncio.wait_for(informer.synced.wait(), 20)


def restarts(reason: str) -> float:
    value = REGISTRY.get_sample_value("locust_operator_watch_restarts_total", {"reason": reason})
    return value or 0.0


async def test_the_first_list_fills_the_cache_and_reports_every_object_as_added(
    fakekube: FakeKube, start: Start
) -> None:
    fakekube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    fakekube.create(configmap("a"))
    fakekube.create(configmap("b", "other"))
    changes = Changes()

    informer = start(changes, namespace=None)
    await synced(informer)

    assert informer.scope == "configmaps in all namespaces"
    other = ObjectKey("other", "b")
    assert set(informer.cache) >= {A, other}
    assert informer.cache[other]["data"] == {"k": "b"}
    assert informer.cache[A]["apiVersion"] == "v1" and informer.cache[A]["kind"] == "ConfigMap"
    assert {(key, old) for key, old, _ in changes.seen} >= {(A, None), (other, None)}
    assert informer.connected


async def test_the_watch_starts_at_the_lists_resource_version_and_misses_nothing_between(
    fakekube: FakeKube, start: Start
) -> None:
    fakekube.create(configmap("a"))
    listed_at = fakekube.resource_version
    # Hold the watch request in the server, so a change lands between the list and the watch.
    held = fakekube.faults.add(verb="watch", resource="configmaps", delay=0.5, times=1)
    changes = Changes()

    informer = start(changes)
    await synced(informer)
    await eventually(lambda: held.hits == 1, "the watch request to reach the server")
    fakekube.create(configmap("b"))

    await eventually(lambda: B in informer.cache, "b in the cache")
    assert changes.summary() == [("added", "a"), ("added", "b")]
    (listing,) = requests_for(fakekube, "configmaps", "list")
    watch = requests_for(fakekube, "configmaps", "watch")[0]
    assert "resourceVersion" not in listing.query
    assert watch.query["resourceVersion"] == str(listed_at)
    assert int(watch.query["timeoutSeconds"]) >= 300  # the server ends it; lightkube resumes


async def test_changes_are_reported_with_the_object_before_and_after(
    fakekube: FakeKube, start: Start
) -> None:
    fakekube.create(configmap("a"))
    fakekube.create(configmap("b"))
    changes = Changes()
    informer = start(changes)
    await synced(informer)

    fakekube.patch("v1", "ConfigMap", "a", {"data": {"k": "changed"}}, "default")
    fakekube.delete("v1", "ConfigMap", "b", "default")
    fakekube.create(configmap("c"))

    await eventually(lambda: C in informer.cache, "c in the cache")
    assert changes.summary()[2:] == [("modified", "a"), ("deleted", "b"), ("added", "c")]
    _, before, after = changes.seen[2]
    assert (before or {})["data"] == {"k": "a"} and (after or {})["data"] == {"k": "changed"}
    assert informer.cache[A]["data"] == {"k": "changed"}
    assert B not in informer.cache
    _, last_seen, _ = changes.seen[3]
    assert (last_seen or {})["metadata"]["name"] == "b"


async def test_a_label_selector_limits_what_is_listed_and_watched(
    fakekube: FakeKube, start: Start
) -> None:
    fakekube.create(configmap("a", app="mine"))
    fakekube.create(configmap("b"))
    changes = Changes()
    informer = start(changes, labels={"app": "mine"})
    await synced(informer)
    assert set(informer.cache) == {A}

    fakekube.create(configmap("unlabelled"))
    fakekube.patch("v1", "ConfigMap", "a", {"metadata": {"labels": {"app": "theirs"}}}, "default")
    fakekube.create(configmap("c", app="mine"))

    # c comes after the others in the same stream: by then they were filtered out.
    await eventually(lambda: C in informer.cache, "c in the cache")
    assert changes.summary() == [("added", "a"), ("deleted", "a"), ("added", "c")]
    assert set(informer.cache) == {C}
    for verb in ("list", "watch"):
        assert requests_for(fakekube, "configmaps", verb)[0].query["labelSelector"] == "app=mine"


async def test_the_transform_shapes_what_is_cached_and_reported(
    fakekube: FakeKube, start: Start
) -> None:
    def names_only(obj: dict[str, Any]) -> dict[str, Any]:
        return {"kind": obj["kind"], "metadata": {"name": obj["metadata"]["name"]}}

    fakekube.create(configmap("a"))
    changes = Changes()
    informer = start(changes, transform=names_only)
    await synced(informer)
    fakekube.create(configmap("b"))

    await eventually(lambda: B in informer.cache, "b in the cache")
    expected = {"kind": "ConfigMap", "metadata": {"name": "b"}}
    assert informer.cache == {A: {"kind": "ConfigMap", "metadata": {"name": "a"}}, B: expected}
    assert [new for _, _, new in changes.seen] == [informer.cache[A], expected]


async def test_an_expired_resource_version_lists_again_and_reports_the_deletions_it_missed(
    fakekube: FakeKube, start: Start, logs: pytest.LogCaptureFixture
) -> None:
    fakekube.create(configmap("a"))
    fakekube.create(configmap("b"))
    changes = Changes()
    informer = start(changes)
    await synced(informer)
    expired_before = restarts("expired")

    # The next list fails, so the informer stays away from the server while b is deleted.
    no_list = fakekube.faults.add(verb="list", resource="configmaps", status=500)
    fakekube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    fakekube.compact()  # the watch's resourceVersion is now too old to resume from
    fakekube.expire_watches()
    await eventually(
        lambda: (
            "configmaps in namespace default expired, listing again"
            in messages(logs, "reconciler.runtime.informer")
        ),
        "the informer to see 410 Gone",
    )
    await eventually(lambda: not informer.connected, "the informer to report the lost watch")
    fakekube.delete("v1", "ConfigMap", "b", "default")
    fakekube.patch("v1", "ConfigMap", "a", {"data": {"k": "changed"}}, "default")
    fakekube.faults.remove(no_list)

    await eventually(lambda: B not in informer.cache, "b to leave the cache")
    assert changes.summary()[2:] == [("deleted", "b"), ("modified", "a")]
    assert informer.cache[A]["data"] == {"k": "changed"}
    assert restarts("expired") == expired_before + 1
    await eventually(lambda: informer.connected, "the informer to be connected again")
    fakekube.create(configmap("c"))
    await eventually(lambda: C in informer.cache, "c, through the new watch")


async def test_a_dropped_stream_lists_again_and_reports_the_deletions_it_missed(
    fakekube: FakeKube, start: Start, logs: pytest.LogCaptureFixture
) -> None:
    fakekube.create(configmap("a"))
    fakekube.create(configmap("b"))
    changes = Changes()
    informer = start(changes)
    await synced(informer)
    errors_before = restarts("error")

    fakekube.faults.add(verb="watch", resource="configmaps", drop=True, times=1)
    no_list = fakekube.faults.add(verb="list", resource="configmaps", status=500)
    fakekube.expire_watches()  # lightkube resumes the watch; that request loses its connection
    await eventually(
        lambda: requests_for(fakekube, "configmaps", "list", status_code=500),
        "the informer to list again",
    )
    fakekube.delete("v1", "ConfigMap", "b", "default")
    fakekube.faults.remove(no_list)

    await eventually(lambda: B not in informer.cache, "b to leave the cache")
    assert changes.summary()[2:] == [("deleted", "b")]
    warnings = messages(logs, "reconciler.runtime.informer", logging.WARNING)
    assert "Lost the watch of configmaps in namespace default (attempt 1)" in warnings
    assert "Lost the watch of configmaps in namespace default (attempt 2): 500" in warnings
    assert restarts("error") >= errors_before + 2
    fakekube.create(configmap("c"))
    await eventually(lambda: C in informer.cache, "c, through the new watch")


async def test_failures_back_off_log_quietly_after_three_and_reset_after_a_list(
    fakekube: FakeKube, start: Start, logs: pytest.LogCaptureFixture
) -> None:
    no_list = fakekube.faults.add(verb="list", resource="configmaps", status=503)
    informer = start(Changes(), max_backoff=0.01)

    def attempts(level: int) -> list[int]:
        return [
            int(r.getMessage().split("(attempt ")[1].split(")")[0])
            for r in logs.records
            if r.name == "reconciler.runtime.informer"
            and r.getMessage().startswith("Lost the watch")
            and r.levelno == level
        ]

    await eventually(lambda: 10 in attempts(logging.WARNING), "ten failures in a row")
    assert not informer.synced.is_set() and not informer.connected
    assert attempts(logging.WARNING)[:4] == [1, 2, 3, 10]
    assert attempts(logging.DEBUG)[:6] == [4, 5, 6, 7, 8, 9]

    fakekube.faults.remove(no_list)
    await synced(informer)
    fakekube.faults.add(verb="watch", resource="configmaps", status=500, times=1)
    logs.clear()
    fakekube.expire_watches()
    await eventually(lambda: attempts(logging.WARNING), "the next failure")
    assert attempts(logging.WARNING) == [1]  # counted afresh after the successful list


def test_the_backoff_doubles_from_a_fifth_of_a_second_with_jitter_up_to_its_cap() -> None:
    for failures, base in ((1, 0.2), (2, 0.4), (3, 0.8), (6, 6.4)):
        assert base * 0.8 <= backoff_delay(failures, 30) <= base * 1.2
    assert 24 <= backoff_delay(9, 30) <= 36
    # An outage of hours means thousands of failures: the delay stays capped.
    assert 24 <= backoff_delay(5000, 30) <= 36


def test_objects_are_keyed_by_namespace_and_name_as_plain_documents() -> None:
    cm = ConfigMap.from_dict(configmap("a"))
    document = as_dict(cm, "v1", "ConfigMap")
    assert document["metadata"]["name"] == "a" and document["data"] == {"k": "a"}
    assert key_of(document) == A
    assert key_of({"metadata": {"name": "cluster-wide"}}) == ObjectKey("default", "cluster-wide")
