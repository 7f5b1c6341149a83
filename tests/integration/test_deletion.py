"""A deleted test stays deleted: nothing of it comes back, however late the operator hears."""

from __future__ import annotations

from reconciler.api.types import LocustTestV2
from tests.integration.conftest import OPERATOR_USER, wait_until
from tests.integration.objects import (
    children,
    conditions,
    create,
    locusttest,
    reasons,
    status,
    wait_for_children,
)

TESTS = [f"short-lived-{n}" for n in range(5)]


def children_created_by_the_operator(cluster, since: int) -> list:
    return [
        r
        for r in cluster.requests[since:]
        if r.user == OPERATOR_USER and r.verb == "create" and r.resource in ("services", "jobs")
    ]


def test_children_are_not_recreated_for_a_test_deleted_behind_a_stale_cache(
    client, start_operator, cluster
):
    operator = start_operator()
    for name in TESTS:
        create(client, locusttest(name, workers=1))
    for name in TESTS:
        wait_for_children(client, name)
        wait_until(
            lambda n=name: (
                conditions(status(client, n)).get("Ready") == ("True", "ResourcesCreated")
            ),
            what=f"{name} to be Ready",
        )
    # The operator's watch of LocustTests reconnects late, so the garbage collector's deletion
    # of the children reaches it before the deletion of their tests does.
    stall = cluster.faults.add(verb="watch", resource="locusttests", delay=3, times=1)
    cluster.expire_watches()
    wait_until(lambda: stall.hits, what="the operator to watch LocustTests again")
    deleted_at = len(cluster.requests)
    for name in TESTS:
        client.delete(LocustTestV2, name, namespace="default")
    wait_until(
        lambda: all(children(client, name) == {} for name in TESTS),
        what="the garbage collector to delete the children",
    )

    # A test created now is seen after the deletions, on the same watch: once its children
    # exist, the operator has caught up with every deletion.
    create(client, locusttest("later", workers=1))
    wait_for_children(client, "later")
    created = children_created_by_the_operator(cluster, deleted_at)
    assert [r.resource for r in created] == ["services", "jobs", "jobs"]  # those of "later"
    assert all(children(client, name) == {} for name in TESTS)
    for name in TESTS:
        assert "ResourceDeleted" not in reasons(client, name)
    assert "externally deleted" not in operator.log()
