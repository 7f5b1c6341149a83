"""`LocustWebApi` against the fake cluster: a master's web API read through the API server's
pod proxy or straight from the pod's address, with the errors a poller has to tell apart.

The masters are the benchmark's stub masters (Locust 2.47's payload), on pods the local kubelet
runs with the stub image, so the whole path is the one a real cluster takes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from benchmarks.stub_master import (
    CAPTURE,
    STUB_REPOSITORY,
    StubMaster,
    StubMasters,
    follow,
    master_addresses,
    stub_images,
)
from fakekube import FakeKube, KubeletSettings
from reconciler.runtime.kube_http import LocustWebApi, WebApiError, pod_proxy

from .conftest import wait_until


@pytest.fixture
def node(tmp_path: Path) -> Iterator[FakeKube]:
    """A cluster whose Jobs' pods run, with the stub image for Locust."""
    settings = KubeletSettings(root=tmp_path / "node", images=stub_images())
    with FakeKube(kubelet=settings, proxy_timeout=2) as kube:
        kube.jobs.auto = True
        yield kube


@pytest.fixture
async def client(node: FakeKube, tmp_path: Path) -> AsyncIterator[AsyncClient]:
    config = KubeConfig.from_file(node.write_kubeconfig(tmp_path / "kubeconfig"))
    kube = AsyncClient(config=config)
    yield kube
    await kube.close()


@pytest.fixture
async def stubs(node: FakeKube) -> AsyncIterator[StubMasters]:
    """Stub masters on every Running master pod of the cluster."""
    async with StubMasters() as masters:
        following = asyncio.create_task(follow(masters, node.url, interval=0.05))
        yield masters
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)


def master_job(name: str, image: str = f"{STUB_REPOSITORY}:2.47.0") -> dict[str, Any]:
    container = {
        "name": name,
        "image": image,
        "args": ["--master", "--master-port=5557"],
        "ports": [{"containerPort": 8089}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            }
        },
    }


async def running_master(node: FakeKube, stubs: StubMasters, name: str) -> dict[str, Any]:
    """Create the master Job; its Running pod, once a stub listens on its address."""
    await asyncio.to_thread(node.create, master_job(name))

    def ready() -> dict[str, Any] | None:
        for pod in node.list("v1", "Pod", "default", {"app": name}):
            ip = (pod.get("status") or {}).get("podIP")
            if pod["status"].get("phase") == "Running" and ip in stubs.masters:
                return pod
        return None

    return await asyncio.to_thread(wait_until, ready, what=f"the {name} master running")


async def test_stats_stop_and_report_through_the_pod_proxy(
    node: FakeKube, client: AsyncClient, stubs: StubMasters
) -> None:
    pod = await running_master(node, stubs, "shop")
    api = LocustWebApi("default", pod["metadata"]["name"], client=client)

    stats = await api.get_json("/stats/requests")
    assert stats["state"] == "running"
    assert set(stats) == set(json.loads(CAPTURE.read_text()))
    assert stats["stats"][-1]["name"] == "Aggregated"

    stopped = await api.post("/stop")
    assert stopped.json() == {"success": True, "message": "Test stopped"}
    after = await api.get_json("/stats/requests")
    assert (after["state"], after["user_count"]) == ("stopped", 0)
    assert await api.get_json("/stats/requests") == after  # a stopped test's numbers stay put
    report = await api.get_bytes("/stats/report")
    assert report.startswith(b"<!DOCTYPE html>") and b"Aggregated" in report

    proxied = [
        (r.method, r.verb, r.path.rpartition("/proxy")[2])
        for r in node.requests
        if r.subresource == "proxy"
    ]
    assert proxied == [
        ("GET", "get", "/stats/requests"),
        ("POST", "create", "/stop"),
        ("GET", "get", "/stats/requests"),
        ("GET", "get", "/stats/requests"),
        ("GET", "get", "/stats/report"),
    ]


async def test_the_same_calls_go_straight_to_the_pod_address_without_the_proxy(
    node: FakeKube, stubs: StubMasters
) -> None:
    pod = await running_master(node, stubs, "direct")
    async with httpx2.AsyncClient() as http:
        api = LocustWebApi(
            "default",
            pod["metadata"]["name"],
            pod_ip=pod["status"]["podIP"],
            http=http,
            via_proxy=False,
        )
        assert (await api.get_json("/stats/requests"))["state"] == "running"
        await api.post("/stop")
        assert (await api.get_json("/stats/requests"))["state"] == "stopped"
    assert [r for r in node.requests if r.subresource == "proxy"] == []


async def test_a_master_nobody_answers_for_is_unreachable(
    node: FakeKube, client: AsyncClient, stubs: StubMasters
) -> None:
    pod = await running_master(node, stubs, "gone")
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    await stubs.silence(ip)  # the pod runs, but nothing listens on 8089 any more

    with pytest.raises(WebApiError) as proxied:
        await LocustWebApi("default", name, client=client).get_json("/stats/requests")
    assert proxied.value.reason == "WebApiUnreachable"
    assert proxied.value.status_code == 503
    assert str(proxied.value) == (
        f"default/{name}:8089/stats/requests: HTTP 503: error trying to reach service: "
        f"dial tcp {ip}:8089: connect: connection refused"
    )
    async with httpx2.AsyncClient() as http:
        direct = LocustWebApi("default", name, pod_ip=ip, http=http, via_proxy=False)
        with pytest.raises(WebApiError) as straight:
            await direct.get_json("/stats/requests")
    assert straight.value.reason == "WebApiUnreachable"
    assert straight.value.status_code is None
    assert str(straight.value).startswith(f"default/{name}:8089/stats/requests: ConnectError")


async def test_a_missing_pod_is_unreachable_with_the_api_servers_message(
    client: AsyncClient,
) -> None:
    with pytest.raises(WebApiError) as error:
        await LocustWebApi("default", "ghost-master-x", client=client).post("/stop")
    assert error.value.reason == "WebApiUnreachable"
    assert str(error.value) == (
        'default/ghost-master-x:8089/stop: HTTP 404: pods "ghost-master-x" not found'
    )


async def test_answers_that_are_not_what_was_asked_for_are_invalid_responses(
    node: FakeKube, client: AsyncClient, stubs: StubMasters
) -> None:
    pod = await running_master(node, stubs, "odd")
    api = LocustWebApi("default", pod["metadata"]["name"], client=client)
    with pytest.raises(WebApiError) as not_json:
        await api.get_json("/stats/report")
    assert (not_json.value.reason, not_json.value.status_code) == ("InvalidResponse", 200)
    with pytest.raises(WebApiError) as not_there:
        await api.get_json("/no/such/page")
    assert (not_there.value.reason, not_there.value.status_code) == ("InvalidResponse", 404)
    assert str(not_there.value).endswith(": the master answered HTTP 404")


async def test_pod_proxy_returns_any_answer_as_it_is(node: FakeKube, client: AsyncClient) -> None:
    await asyncio.to_thread(
        node.create,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "waiting", "namespace": "default"},
            "spec": {"containers": [{"name": "m", "image": "busybox"}]},
        },
    )
    response = await pod_proxy(
        client, "GET", "default", "waiting", 8089, "/stats/requests", timeout=5
    )
    assert response.status_code == 400
    assert response.json()["message"] == "address not allowed"


def test_the_web_api_needs_its_client() -> None:
    with pytest.raises(ValueError, match="via_proxy needs the API client"):
        LocustWebApi("default", "m")
    with pytest.raises(ValueError, match="without the proxy it needs http and pod_ip"):
        LocustWebApi("default", "m", via_proxy=False)


def test_a_stub_masters_counts_grow_at_the_captured_rates_until_it_is_stopped() -> None:
    template = json.loads(CAPTURE.read_text())
    master = StubMaster(template, started=100.0)
    early, later = master.payload(110.0), master.payload(120.0)
    rows = [(row["name"], row["total_rps"]) for row in template["stats"][:-1]]
    for (name, rate), row in zip(rows, later["stats"], strict=False):
        assert (row["name"], row["num_requests"]) == (name, int(rate * 20))
    assert later["stats"][-1]["num_requests"] == sum(
        r["num_requests"] for r in later["stats"][:-1]
    )
    assert early["stats"][-1]["num_requests"] < later["stats"][-1]["num_requests"]
    assert early["state"] == later["state"] == "running"
    master.stopped_at = 120.0
    assert master.payload(500.0)["stats"] == later["stats"]
    assert (master.payload(500.0)["state"], master.payload(500.0)["user_count"]) == ("stopped", 0)


def test_stub_masters_follow_running_master_pods_only() -> None:
    def pod(phase: str, ip: str, *args: str) -> dict[str, Any]:
        return {
            "spec": {"containers": [{"name": "c", "args": list(args)}]},
            "status": {"phase": phase, "podIP": ip},
        }

    pods = [
        pod("Running", "127.1.0.2", "--master", "--master-port=5557"),
        pod("Running", "127.1.0.3", "--worker"),
        pod("Pending", "127.1.0.4", "--master"),
        pod("Running", "", "--master"),
    ]
    assert master_addresses(pods) == ["127.1.0.2"]
