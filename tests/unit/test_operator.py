"""The operator process in-process on the fake API server: readiness, shutdown, retries, exits.

The reconciler is a stand-in here (the controller has tests of its own): what is under test is
how the operator runs reconciles, not what they do.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap
from prometheus_client import REGISTRY

from fakekube.sandbox import free_port
from fakekube.server import FakeKube
from reconciler.api.naming import ObjectKey
from reconciler.config import OperatorConfig
from reconciler.controller import DONE, Result
from reconciler.crds import crd_text
from reconciler.runtime import operator as operator_module
from reconciler.runtime.operator import EXIT_FAILED, EXIT_INVALID, EXIT_OK, Operator
from reconciler.status.conditions import InvolvedObject
from tests.certs import serving_certificate
from tests.unit.runtime_support import eventually, logs, messages, requests_for

__all__ = ["logs"]  # fixture

T = ObjectKey("default", "t")
ELECTION = {
    "LEADER_ELECTION": "true",
    "LEASE_NAME": "operator-lock",
    "LEASE_NAMESPACE": "default",
    "LEASE_DURATION_SECONDS": "3",
    "LEASE_RENEW_DEADLINE_SECONDS": "0.5",
    "LEASE_RETRY_PERIOD_SECONDS": "0.05",
}


def locusttest(name: str = "t") -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "image": "locustio/locust:2.47.0",
            "master": {"command": "--locustfile /lotest/src/locustfile.py"},
            "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": 1},
        },
    }


def lease_holder(kube: FakeKube) -> str | None:
    lease = kube.get("coordination.k8s.io/v1", "Lease", "operator-lock", "default") or {}
    return (lease.get("spec") or {}).get("holderIdentity")


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"controller": "locusttest", **labels}) or 0.0


Behaviour = Callable[["StandInReconciler", ObjectKey], Awaitable[Result]]


async def done(reconciler: StandInReconciler, key: ObjectKey) -> Result:
    return DONE


class StandIn:
    """Put where the operator finds the Reconciler class: makes reconcilers whose every
    reconcile runs `behaviour`."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = done
        self.made: list[StandInReconciler] = []

    def __call__(
        self, client: AsyncClient, config: Any, recorder: Any, caches: Any, **parts: Any
    ) -> StandInReconciler:
        self.made.append(StandInReconciler(self, client, recorder))
        return self.made[-1]


class StandInReconciler:
    def __init__(self, stand_in: StandIn, client: AsyncClient, recorder: Any) -> None:
        self.stand_in = stand_in
        self.client = client
        self.recorder = recorder
        self.calls: list[ObjectKey] = []

    async def reconcile(self, key: ObjectKey, test: Any) -> Result:
        self.calls.append(key)
        return await self.stand_in.behaviour(self, key)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> StandIn:
    stand_in = StandIn()
    monkeypatch.setattr(operator_module, "Reconciler", stand_in)
    return stand_in


@pytest.fixture
def cluster(fakekube: FakeKube, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """The fake API server with the CRD installed, and KUBECONFIG pointing at it."""
    fakekube.apply_yaml(crd_text())
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    return fakekube


class Running:
    def __init__(self, operator: Operator, task: asyncio.Task[int]):
        self.operator = operator
        self.task = task
        self.health_port = operator.config.health_port

    async def readyz(self) -> tuple[int, str] | None:
        """GET /readyz: (status, body), or None while nothing listens."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.health_port)
        except OSError:
            return None
        writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        response = (await reader.read()).decode()
        writer.close()
        head, _, body = response.partition("\r\n\r\n")
        return int(head.split()[1]), body.strip()

    async def wait_readyz(self, status: int, body: str) -> None:
        seen: list[tuple[int, str] | None] = []

        async def check() -> bool:
            seen.append(await self.readyz())
            return seen[-1] == (status, body)

        deadline = asyncio.get_running_loop().time() + 20
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"/readyz never answered {status} {body!r}; last {seen[-1]}")
            await asyncio.sleep(0.02)

    async def terminate(self) -> int:
        """SIGTERM, as the kubelet sends it (the probes answer: the handler is in place)."""
        signal.raise_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.task, 30)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(cluster: FakeKube) -> AsyncIterator[Start]:
    """Run operators in this process; each is waited for until its probes answer."""
    running: list[Running] = []

    async def start(**env: str) -> Running:
        config = OperatorConfig.from_env(
            {"HEALTH_PORT": str(free_port()), "METRICS_PORT": "0", **env}
        )
        operator = Operator(config)
        handle = Running(operator, asyncio.create_task(operator.main()))
        running.append(handle)

        async def serving() -> bool:
            return handle.task.done() or await handle.readyz() is not None

        deadline = asyncio.get_running_loop().time() + 20
        while not await serving():
            assert asyncio.get_running_loop().time() < deadline, "the probes never answered"
            await asyncio.sleep(0.02)
        return handle

    yield start
    for handle in running:  # the ones a test did not stop; never by a signal, as it may be over
        handle.task.cancel()
    await asyncio.gather(*(h.task for h in running), return_exceptions=True)


# --- Readiness --------------------------------------------------------------------------------


async def test_ready_once_the_children_are_listed_even_while_the_tests_cannot_be(
    cluster: FakeKube, start: Start, stand_in: StandIn
) -> None:
    no_pods = cluster.faults.add(verb="list", resource="pods", status=500)
    # Tests still stored as v1 are read through this replica's own conversion webhook, which the
    # API server reaches only once the pod is ready: waiting for them would never end.
    no_tests = cluster.faults.add(verb="list", resource="locusttests", status=500)
    running = await start()

    await running.wait_readyz(
        503, "waiting for the first list of the operator's Services, Jobs and pods"
    )
    cluster.faults.remove(no_pods)
    await running.wait_readyz(200, "ok")
    assert no_tests.hits > 0 and no_tests in cluster.faults.rules  # the tests' list still fails

    cluster.faults.add(verb="watch", resource="jobs", status=500)
    cluster.faults.add(verb="list", resource="jobs", status=500)
    cluster.expire_watches()
    await running.wait_readyz(503, "reconnecting to the API server")
    cluster.faults.clear()
    await running.wait_readyz(200, "ok")


async def test_a_standby_is_ready_once_it_reaches_the_lease(
    cluster: FakeKube, start: Start, stand_in: StandIn
) -> None:
    cluster.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": "operator-lock", "namespace": "default"},
            "spec": {"holderIdentity": "the-leader", "leaseDurationSeconds": 3600},
        }
    )
    outage = cluster.faults.add(resource="leases", status=503)
    running = await start(**ELECTION)

    await running.wait_readyz(503, "waiting for the API server")
    cluster.faults.remove(outage)
    await running.wait_readyz(200, "ok: standing by for the lease")
    assert requests_for(cluster, "locusttests") == []  # a standby does not watch
    assert lease_holder(cluster) == "the-leader"


async def test_not_ready_until_the_conversion_webhook_has_its_certificate(
    cluster: FakeKube, start: Start, stand_in: StandIn, tmp_path: Path
) -> None:
    cert_dir = tmp_path / "certs"
    running = await start(
        ENABLE_WEBHOOKS="true", WEBHOOK_CERT_DIR=str(cert_dir), WEBHOOK_PORT=str(free_port())
    )

    await running.wait_readyz(503, "waiting for the conversion webhook's certificate")
    # Both files at once, as a Secret volume's atomic update delivers them.
    serving_certificate("locust-operator.default.svc").write(tmp_path / "staged").rename(cert_dir)
    await running.wait_readyz(200, "ok")


# --- Shutdown ---------------------------------------------------------------------------------


@pytest.mark.parametrize("election", [{}, ELECTION], ids=["alone", "leader"])
async def test_sigterm_lets_the_reconcile_in_flight_finish_then_exits_0(
    cluster: FakeKube,
    start: Start,
    stand_in: StandIn,
    logs: pytest.LogCaptureFixture,
    election: dict[str, str],
) -> None:
    in_flight, finish = asyncio.Event(), asyncio.Event()

    async def slow(reconciler: StandInReconciler, key: ObjectKey) -> Result:
        in_flight.set()
        await finish.wait()
        await reconciler.client.create(ConfigMap(metadata=ObjectMeta(name="written-late")))
        subject = InvolvedObject("locust.io/v2", "LocustTest", "default", key.name)
        reconciler.recorder.record(subject, "Normal", "Created", "recorded late")
        return DONE

    stand_in.behaviour = slow
    running = await start(**election)
    cluster.create(locusttest())
    await asyncio.wait_for(in_flight.wait(), 20)

    signal.raise_signal(signal.SIGTERM)
    await eventually(
        lambda: "Shutdown signal received" in messages(logs, "reconciler"), "the signal"
    )
    assert not running.task.done()  # still waiting for the reconcile
    finish.set()

    assert await asyncio.wait_for(running.task, 30) == EXIT_OK
    assert cluster.get("v1", "ConfigMap", "written-late", "default") is not None
    (event,) = cluster.list("v1", "Event", "default")
    assert event["message"] == "recorded late"  # queued events are written before exiting
    assert "locust-operator stopped" in messages(logs, "reconciler")
    if election:
        assert lease_holder(cluster) is None
        writes = [(r.resource, r.method) for r in cluster.requests if r.method in ("POST", "PUT")]
        # Renewals go on while draining; the release is the last write, once the drain is over.
        assert writes[-1] == ("leases", "PUT")
        late = writes.index(("configmaps", "POST")), writes.index(("events", "POST"))
        assert late[0] < late[1] < len(writes) - 1


# --- Errors -----------------------------------------------------------------------------------


async def test_a_failed_reconcile_is_retried_with_backoff_and_counted(
    cluster: FakeKube,
    start: Start,
    stand_in: StandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    cluster.faults.add(verb="create", resource="configmaps", status=500, times=1)

    async def flaky(reconciler: StandInReconciler, key: ObjectKey) -> Result:
        if len(reconciler.calls) == 2:
            raise RuntimeError("the second failure")
        await reconciler.client.create(ConfigMap(metadata=ObjectMeta(name=f"try-{key.name}")))
        return DONE

    stand_in.behaviour = flaky
    errors = sample("controller_runtime_reconcile_errors_total")
    failed = sample("controller_runtime_reconcile_total", result="error")
    succeeded = sample("controller_runtime_reconcile_total", result="success")
    timed = sample("controller_runtime_reconcile_time_seconds_count")
    running = await start()
    cluster.create(locusttest())

    await eventually(
        lambda: sample("controller_runtime_reconcile_total", result="success") > succeeded,
        "a successful reconcile",
    )
    assert cluster.get("v1", "ConfigMap", "try-t", "default") is not None
    (reconciler,) = stand_in.made
    assert reconciler.calls == [T, T, T]
    logged = messages(logs, "reconciler", logging.ERROR)
    assert "Reconcile of LocustTest default/t failed (attempt 1), retrying in" in logged
    assert ": 500 fakekube injected fault" in logged
    assert "Reconcile of LocustTest default/t failed (attempt 2)" in logged
    assert logged.endswith(": the second failure")
    assert sample("controller_runtime_reconcile_errors_total") == errors + 2
    assert sample("controller_runtime_reconcile_total", result="error") == failed + 2
    assert sample("controller_runtime_reconcile_total", result="success") == succeeded + 1
    assert sample("controller_runtime_reconcile_time_seconds_count") == timed + 3
    assert running.operator.queue.failures(T) == 0  # forgotten after the success
    assert await running.terminate() == EXIT_OK


async def test_losing_the_lease_exits_1(
    cluster: FakeKube,
    start: Start,
    stand_in: StandIn,
    logs: pytest.LogCaptureFixture,
) -> None:
    running = await start(**ELECTION)
    await running.wait_readyz(200, "ok")
    assert lease_holder(cluster)

    cluster.faults.add(resource="leases", status=500)

    assert await asyncio.wait_for(running.task, 30) == EXIT_FAILED
    assert (
        "Leader election lost: failed to renew lease default/operator-lock within 0.5s"
        in messages(logs, "reconciler", logging.ERROR)
    )


async def test_without_a_kubeconfig_it_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    config = OperatorConfig.from_env({"HEALTH_PORT": str(free_port()), "METRICS_PORT": "0"})

    assert await asyncio.wait_for(Operator(config).main(), 30) == EXIT_INVALID
    assert "No Kubernetes configuration" in messages(logs, "reconciler", logging.ERROR)


async def test_a_probe_port_in_use_exits_1(
    cluster: FakeKube, logs: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = OperatorConfig.from_env({"HEALTH_PORT": str(port), "METRICS_PORT": "0"})

        assert await asyncio.wait_for(Operator(config).main(), 30) == EXIT_FAILED
    assert "Cannot serve probes" in messages(logs, "reconciler", logging.ERROR)
