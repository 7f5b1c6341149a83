"""Watch: newline-delimited events, resume from a resourceVersion, 410 Gone, selectors, timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from lightkube import ApiError, AsyncClient, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import on_error_retry

from fakekube import FakeKube

from .conftest import configmap

CMS = "/api/v1/namespaces/default/configmaps"


class Stream:
    """A raw watch stream read line by line, as a client library does."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self._lines: Iterator[str] = response.iter_lines()

    def next(self) -> dict[str, Any]:
        line = next(self._lines)
        while not line:
            line = next(self._lines)
        return json.loads(line)

    def rest(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._lines if line]


def open_watch(http: httpx.Client, path: str = CMS, **params: str) -> Any:
    return http.stream("GET", path, params={"watch": "true", **params})


def summary(event: dict[str, Any]) -> tuple[str, str]:
    return event["type"], event["object"]["metadata"]["name"]


def test_watch_starts_with_current_objects_then_streams_live_events(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("a"))
    # The server would keep this stream open for an hour: every event read below was flushed as
    # it happened (a buffered one would fail the client's 10 s read timeout instead).
    with open_watch(http, timeoutSeconds="3600") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["Transfer-Encoding"] == "chunked"
        stream = Stream(response)
        assert summary(stream.next()) == ("ADDED", "a")
        fakekube.create(configmap("b"))
        assert summary(stream.next()) == ("ADDED", "b")
        fakekube.patch("v1", "ConfigMap", "a", {"data": {"k": "2"}})
        modified = stream.next()
        assert summary(modified) == ("MODIFIED", "a") and modified["object"]["data"] == {"k": "2"}
        deleted_at = fakekube.delete("v1", "ConfigMap", "b")["metadata"]["resourceVersion"]
        deleted = stream.next()
        assert summary(deleted) == ("DELETED", "b")
        assert deleted["object"]["metadata"]["resourceVersion"] == deleted_at
        fakekube.expire_watches()
        assert stream.rest() == []


def test_watch_from_resource_version_sends_only_later_events(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    first = fakekube.create(configmap("a"))["metadata"]["resourceVersion"]
    fakekube.patch("v1", "ConfigMap", "a", {"data": {"k": "2"}})
    fakekube.create(configmap("b"))
    with open_watch(http, resourceVersion=first, timeoutSeconds="1") as response:
        events = Stream(response).rest()
    assert [summary(e) for e in events] == [("MODIFIED", "a"), ("ADDED", "b")]
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(first)


def test_watch_from_a_list_resource_version_misses_nothing(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(configmap("a"))
    listed = http.get(CMS).json()["metadata"]["resourceVersion"]
    fakekube.create(configmap("b"))
    with open_watch(http, resourceVersion=listed, timeoutSeconds="1") as response:
        assert [summary(e) for e in Stream(response).rest()] == [("ADDED", "b")]


def test_timeout_seconds_ends_the_stream_cleanly(http: httpx.Client) -> None:
    started = time.monotonic()
    with open_watch(http, timeoutSeconds="1") as response:
        assert Stream(response).rest() == []
    # Ended by the server, and not before its time (how long after is the machine's business).
    assert time.monotonic() - started > 0.9


def test_too_old_resource_version_after_compaction_is_410_in_the_stream(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    old = fakekube.create(configmap("a"))["metadata"]["resourceVersion"]
    fakekube.create(configmap("b"))
    fakekube.compact()
    with open_watch(http, resourceVersion=old) as response:
        assert response.status_code == 200
        events = Stream(response).rest()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old} (")
    # The current version is still good to watch from.
    with open_watch(
        http, resourceVersion=str(fakekube.resource_version), timeoutSeconds="1"
    ) as response:
        assert Stream(response).rest() == []


def test_history_is_bounded() -> None:
    with FakeKube(history_limit=3) as small:
        first = small.create(configmap("a"))["metadata"]["resourceVersion"]
        for name in "bcde":
            small.create(configmap(name))
        params = {"watch": "1", "resourceVersion": first}
        with (
            httpx.Client(base_url=small.url) as other,
            other.stream("GET", CMS, params=params) as response,
        ):
            assert Stream(response).next()["object"]["code"] == 410


def test_lightkube_watch_raises_410_and_restarts_when_asked(
    client: Client, fakekube: FakeKube
) -> None:
    old = fakekube.create(configmap("a"))["metadata"]["resourceVersion"]
    fakekube.create(configmap("b"))
    fakekube.compact()
    with pytest.raises(ApiError) as error:
        next(iter(client.watch(ConfigMap, namespace="default", resource_version=old)))
    assert error.value.status.code == 410
    # on_error_retry drops the stale version and starts over from the current state.
    events = client.watch(
        ConfigMap, namespace="default", resource_version=old, on_error=on_error_retry
    )
    kind, obj = next(iter(events))
    assert (kind, obj.metadata.name) == ("ADDED", "a")


def test_selector_watch_turns_transitions_into_added_and_deleted(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    with open_watch(http, labelSelector="app=web", timeoutSeconds="10") as response:
        stream = Stream(response)
        fakekube.create(configmap("x", app="web"))
        assert summary(stream.next()) == ("ADDED", "x")
        fakekube.create(configmap("ignored", app="db"))
        fakekube.patch("v1", "ConfigMap", "x", {"metadata": {"labels": {"app": "api"}}})
        left = stream.next()
        assert summary(left) == ("DELETED", "x") and left["object"]["metadata"]["labels"] == {
            "app": "api"
        }
        fakekube.patch("v1", "ConfigMap", "x", {"metadata": {"labels": {"app": "web"}}})
        assert summary(stream.next()) == ("ADDED", "x")
        fakekube.expire_watches()


def test_namespace_and_field_selector_watches(http: httpx.Client, fakekube: FakeKube) -> None:
    with (
        open_watch(
            http,
            "/api/v1/configmaps",
            fieldSelector="metadata.namespace=kube-system",
            timeoutSeconds="10",
        ) as everywhere,
        open_watch(http, fieldSelector="metadata.name=b", timeoutSeconds="10") as by_name,
    ):
        fakekube.create(configmap("a"))
        fakekube.create(configmap("b"))
        fakekube.create(configmap("c", namespace="kube-system"))
        assert summary(Stream(by_name).next()) == ("ADDED", "b")
        assert summary(Stream(everywhere).next()) == ("ADDED", "c")
        fakekube.expire_watches()


def test_watch_on_a_named_object_path(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("one"))
    fakekube.create(configmap("two"))
    named = "/api/v1/watch/namespaces/default/configmaps/two"  # the deprecated watch prefix
    with open_watch(http, named, timeoutSeconds="1") as response:
        assert [summary(e) for e in Stream(response).rest()] == [("ADDED", "two")]


def test_watch_parameter_on_an_object_path_is_a_get(http: httpx.Client, fakekube: FakeKube) -> None:
    # The apiserver watches collections only: ?watch=true on an object's path reads it once.
    fakekube.create(configmap("two"))

    response = http.get(f"{CMS}/two", params={"watch": "true"})

    assert response.status_code == 200
    assert response.json()["metadata"]["name"] == "two"
    assert fakekube.requests[-1].verb == "get"


def test_bookmarks_when_allowed(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("a"))
    params = {
        "allowWatchBookmarks": "true",
        "sendInitialEvents": "true",
        "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": "1",
    }
    with open_watch(http, **params) as response:
        events = Stream(response).rest()
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_lightkube_sync_watch_in_a_thread(client: Client, fakekube: FakeKube) -> None:
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def consume() -> None:
        for kind, obj in client.watch(ConfigMap, namespace="default", server_timeout=5):
            seen.append((kind, obj.metadata.name))
            if len(seen) == 2:
                done.set()
                return

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    fakekube.wait_for(
        lambda: any(r.verb == "watch" for r in fakekube.requests), message="the watch request"
    )
    fakekube.create(configmap("p"))
    fakekube.delete("v1", "ConfigMap", "p")
    assert done.wait(5)
    assert seen == [("ADDED", "p"), ("DELETED", "p")]


async def test_lightkube_async_watch(kubeconfig: Path, fakekube: FakeKube) -> None:
    fakekube.create(configmap("seed"))
    client = AsyncClient(config=KubeConfig.from_file(kubeconfig))
    try:
        events = client.watch(ConfigMap, namespace="default", server_timeout=5)
        kind, obj = await events.__anext__()
        assert (kind, obj.metadata.name) == ("ADDED", "seed")
        version = obj.metadata.resourceVersion
        await client.create(ConfigMap(metadata=ObjectMeta(name="live")))
        kind, obj = await events.__anext__()
        assert (kind, obj.metadata.name) == ("ADDED", "live")
        assert int(obj.metadata.resourceVersion) > int(version)
        await events.aclose()
    finally:
        await client.close()
