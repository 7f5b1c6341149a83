"""Several replicas: a Lease elects one active reconciler; a standby takes over when it stops."""

from __future__ import annotations

from lightkube.resources.coordination_v1 import Lease

from tests.integration.conftest import wait_until
from tests.integration.objects import create, locusttest, wait_for_children

ELECTION = {
    "LEADER_ELECTION": "true",
    "LEASE_NAME": "locust-operator",
    "LEASE_NAMESPACE": "default",
    "LEASE_DURATION_SECONDS": "3",
    "LEASE_RENEW_DEADLINE_SECONDS": "2",
    "LEASE_RETRY_PERIOD_SECONDS": "0.2",
}


def leader_status(operator) -> float:
    _, metrics = operator.get("/metrics", port=operator.metrics_port)
    line = next(line for line in metrics.splitlines()
                if line.startswith('leader_election_master_status{name="locust-operator"}'))
    return float(line.split()[-1])


def test_one_replica_leads_and_a_standby_takes_over(client, start_operator):
    first = start_operator(**ELECTION)
    wait_until(lambda: "this replica is now the leader" in first.log(), what="a leader")
    second = start_operator(**ELECTION)  # ready while standing by: it talks to the API server

    assert leader_status(first) == 1
    assert leader_status(second) == 0
    lease = client.get(Lease, "locust-operator", namespace="default")
    assert lease.spec.holderIdentity and lease.spec.leaseDurationSeconds == 3

    create(client, locusttest("led"))
    wait_for_children(client, "led")
    assert "LocustTest created: 'led'" in first.log()
    assert "LocustTest created" not in second.log()

    assert first.stop() == 0
    assert "Released lease default/locust-operator" in first.log()
    wait_until(lambda: "this replica is now the leader" in second.log(), timeout=10,
               what="the standby to take over")
    create(client, locusttest("after.failover"))
    wait_for_children(client, "after.failover")
    assert leader_status(second) == 1
