"""Leader election over a Lease on the fake API server: acquire, renew, lose, stand by, release."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime, timezone
from typing import Any

import pytest
from lightkube import AsyncClient
from prometheus_client import REGISTRY

from fakekube.server import FakeKube
from reconciler.config import LeaderElectionSettings
from reconciler.runtime.leader import LeaderElector, LeadershipLost
from tests.unit.runtime_support import client, eventually, logs, messages, requests_for

__all__ = ["client", "logs"]  # fixtures

LEASE = "lock"
# Short periods keep the tests fast; each test says which of them it waits out.
FAST = LeaderElectionSettings(
    enabled=True,
    lease_name=LEASE,
    lease_namespace="default",
    lease_duration_seconds=30,
    renew_deadline_seconds=0.5,
    retry_period_seconds=0.05,
)


def lease(kube: FakeKube) -> dict[str, Any]:
    found = kube.get("coordination.k8s.io/v1", "Lease", LEASE, "default")
    assert found is not None, "no Lease"
    return found


def holder(kube: FakeKube) -> str | None:
    found = kube.get("coordination.k8s.io/v1", "Lease", LEASE, "default")
    return ((found or {}).get("spec") or {}).get("holderIdentity")


def micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def held_by_another(kube: FakeKube, duration: int) -> dict[str, Any]:
    now = micro_time(datetime.now(timezone.utc))
    return kube.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": "default"},
            "spec": {
                "holderIdentity": "other",
                "leaseDurationSeconds": duration,
                "acquireTime": now,
                "renewTime": now,
                "leaseTransitions": 4,
            },
        }
    )


def leader_gauge() -> float | None:
    return REGISTRY.get_sample_value("leader_election_master_status", {"name": LEASE})


class Leading:
    """What `lead()` does: note that it started, then run until cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


Elect = Callable[..., "tuple[LeaderElector, asyncio.Task[None]]"]


@pytest.fixture
async def elect(client: AsyncClient) -> AsyncIterator[Elect]:
    """Run electors; any still running afterwards is cancelled."""
    tasks: list[asyncio.Task[None]] = []

    def elect(
        lead: Callable[[], Coroutine[Any, Any, None]],
        identity: str = "me",
        settings: LeaderElectionSettings = FAST,
        on_api: Callable[[bool], None] = lambda ok: None,
    ) -> tuple[LeaderElector, asyncio.Task[None]]:
        elector = LeaderElector(client, settings, identity=identity, on_api=on_api)
        task = asyncio.create_task(elector.run(lead))
        tasks.append(task)
        return elector, task

    yield elect
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def started(leading: Leading) -> None:
    await asyncio.wait_for(leading.started.wait(), 20)


async def test_it_creates_the_lease_leads_renews_and_releases_it_when_cancelled(
    fakekube: FakeKube, elect: Elect, logs: pytest.LogCaptureFixture
) -> None:
    leading = Leading()
    reachable: list[bool] = []
    _, task = elect(leading, on_api=reachable.append)

    await started(leading)
    spec = lease(fakekube)["spec"]
    assert spec["holderIdentity"] == "me"
    assert spec["leaseDurationSeconds"] == 30 and spec["leaseTransitions"] == 0
    assert spec["acquireTime"] and spec["renewTime"]
    assert leader_gauge() == 1
    assert reachable and all(reachable)
    await eventually(
        lambda: len(requests_for(fakekube, "leases", "update", status_code=200)) >= 2,
        "two renewals",
    )
    assert holder(fakekube) == "me"

    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert leading.cancelled.is_set()
    released = lease(fakekube)["spec"]
    assert released.get("holderIdentity") is None and released["leaseDurationSeconds"] == 1
    assert leader_gauge() == 0
    assert "Released lease default/lock" in messages(logs, "reconciler.runtime.leader")


async def test_a_standby_waits_while_anothers_lease_is_renewed_in_time(
    fakekube: FakeKube, elect: Elect
) -> None:
    held_by_another(fakekube, duration=3600)
    leading = Leading()
    reachable: list[bool] = []
    elect(leading, on_api=reachable.append)

    await eventually(
        lambda: len(requests_for(fakekube, "leases", "get")) >= 5, "five rounds of trying"
    )
    assert not leading.started.is_set()
    assert holder(fakekube) == "other"
    assert requests_for(fakekube, "leases", "update") == []
    assert reachable and all(reachable)  # a standby that reads the Lease is healthy
    assert leader_gauge() == 0


async def test_a_lease_not_renewed_within_its_duration_is_taken_over(
    fakekube: FakeKube, elect: Elect
) -> None:
    held_by_another(fakekube, duration=1)  # and never renewed: its holder is gone
    leading = Leading()
    elect(leading)

    await started(leading)  # after a second of seeing the same record, by this replica's clock
    spec = lease(fakekube)["spec"]
    assert spec["holderIdentity"] == "me"
    assert spec["leaseTransitions"] == 5
    assert spec["leaseDurationSeconds"] == 30


async def test_a_released_lease_is_taken_at_once_by_a_standby(
    fakekube: FakeKube, elect: Elect
) -> None:
    first, second = Leading(), Leading()
    _, first_task = elect(first, identity="first")
    await started(first)
    elect(second, identity="second")
    await eventually(
        lambda: len(requests_for(fakekube, "leases", "get")) >= 5, "the standby to try"
    )
    assert not second.started.is_set()

    first_task.cancel()
    await asyncio.gather(first_task, return_exceptions=True)

    # Well before the 30 s duration: the release, not expiry, handed it over.
    await asyncio.wait_for(second.started.wait(), 10)
    assert holder(fakekube) == "second"
    assert lease(fakekube)["spec"]["leaseTransitions"] == 1


async def test_a_leader_that_cannot_renew_within_the_deadline_stops_leading(
    fakekube: FakeKube, elect: Elect, logs: pytest.LogCaptureFixture
) -> None:
    leading = Leading()
    reachable: list[bool] = []
    _, task = elect(leading, on_api=reachable.append)
    await started(leading)

    fakekube.faults.add(resource="leases", status=500)

    with pytest.raises(LeadershipLost, match=r"failed to renew lease default/lock within 0.5s"):
        await asyncio.wait_for(task, 20)
    assert leading.cancelled.is_set()
    assert leader_gauge() == 0
    assert reachable[-1] is False
    assert "Lease request failed: 500" in messages(
        logs, "reconciler.runtime.leader", logging.WARNING
    )
    assert "Could not release lease default/lock" in messages(logs, "reconciler.runtime.leader")


async def test_a_conflict_loses_the_round_quietly_to_the_replica_that_wrote_first(
    fakekube: FakeKube, elect: Elect, logs: pytest.LogCaptureFixture
) -> None:
    held_by_another(fakekube, duration=3600)
    fakekube.patch("coordination.k8s.io/v1", "Lease", LEASE, {"spec": {"holderIdentity": None}})
    # Hold this replica's takeover of the free Lease in the server while another replica takes
    # it: the takeover then carries a stale resourceVersion, and the API server answers 409.
    takeover = fakekube.faults.add(verb="update", resource="leases", delay=1.0, times=1)
    leading = Leading()
    elect(leading)
    await eventually(lambda: takeover.hits == 1, "the takeover attempt")
    renewed = micro_time(datetime.now(timezone.utc))
    fakekube.patch(
        "coordination.k8s.io/v1",
        "Lease",
        LEASE,
        {"spec": {"holderIdentity": "other", "renewTime": renewed}},
        "default",
    )

    await eventually(
        lambda: requests_for(fakekube, "leases", "update", status_code=409), "the 409"
    )
    await eventually(
        lambda: len(requests_for(fakekube, "leases", "get")) >= 5, "more rounds after it"
    )
    assert not leading.started.is_set()
    assert holder(fakekube) == "other"
    assert "Lease request failed" not in messages(logs, "reconciler.runtime.leader")


async def test_the_leader_drains_while_still_renewing_and_releases_after(
    fakekube: FakeKube, client: AsyncClient, elect: Elect
) -> None:
    leading = asyncio.Event()
    draining = asyncio.Event()
    drained = asyncio.Event()
    holders_while_draining: list[str | None] = []

    async def lead() -> None:
        leading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            draining.set()
            await drained.wait()  # a reconcile in flight, finishing
            holders_while_draining.append(holder(fakekube))
            raise

    _, task = elect(lead)
    await asyncio.wait_for(leading.wait(), 20)
    task.cancel()
    await asyncio.wait_for(draining.wait(), 20)
    renewals = len(requests_for(fakekube, "leases", "update"))
    # A drain can outlast the lease's duration: the lease must still be renewed meanwhile.
    await eventually(
        lambda: (
            len(requests_for(fakekube, "leases", "update")) > renewals and holder(fakekube) == "me"
        ),
        "a renewal while draining",
    )
    drained.set()
    await asyncio.gather(task, return_exceptions=True)

    assert holders_while_draining == ["me"]
    assert holder(fakekube) is None


async def test_an_unreachable_api_server_is_reported_and_retried(
    fakekube: FakeKube, elect: Elect, logs: pytest.LogCaptureFixture
) -> None:
    outage = fakekube.faults.add(resource="leases", status=503)
    leading = Leading()
    reachable: list[bool] = []
    elect(leading, on_api=reachable.append)

    await eventually(lambda: outage.hits >= 3, "three attempts")
    assert reachable and not any(reachable)
    assert not leading.started.is_set()
    fakekube.faults.remove(outage)

    await started(leading)
    assert reachable[-1] is True
    assert "Lease request failed: 503" in messages(
        logs, "reconciler.runtime.leader", logging.WARNING
    )
