"""`locust-operator run`, as a separate process, against the fake API server.

Each test observes what a user would: objects in the API server, Events, the operator's log lines,
its probes and its exit code.
"""

from __future__ import annotations

import pytest
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace

from reconciler.api.types import LocustTestV2
from tests.integration.conftest import wait_until
from tests.integration.objects import (
    children,
    create,
    events_for,
    locusttest,
    wait_for_children,
)

CHILDREN = ("service", "master", "worker")


def test_a_new_test_gets_its_service_and_jobs_owned_by_it(client, start_operator, cluster):
    operator = start_operator()
    test = create(client, locusttest())

    found = wait_for_children(client, "team.perftest")

    assert [p.port for p in found["service"].spec.ports] == [5557, 5558, 9646]
    assert found["master"].spec.parallelism == 1
    assert found["worker"].spec.parallelism == 3
    for child in found.values():
        (owner,) = child.metadata.ownerReferences
        assert (owner.kind, owner.name, owner.uid) == ("LocustTest", "team.perftest",
                                                       test.metadata.uid)
        assert owner.controller is True and owner.blockOwnerDeletion is True
    posts = [(r.resource, r.name) for r in cluster.requests
             if r.verb == "create" and r.resource in ("services", "jobs")]
    assert [resource for resource, _ in posts] == ["services", "jobs", "jobs"]
    assert "LocustTest created: 'team.perftest'" in operator.log()


def test_created_events_name_each_child(client, start_operator):
    start_operator()
    create(client, locusttest())
    wait_for_children(client, "team.perftest")

    messages = wait_until(
        lambda: len(m := sorted(e.message for e in events_for(client, "team.perftest")
                                if e.reason == "Created" and e.type == "Normal")) == 3 and m,
        what="three Created events")
    assert messages == ["Created Job team-perftest-master", "Created Job team-perftest-worker",
                        "Created Service team-perftest-master"]


def test_an_update_changes_nothing_and_logs_upstreams_lines(client, start_operator):
    operator = start_operator()
    create(client, locusttest(workers=5))
    before = wait_for_children(client, "team.perftest")

    test = client.get(LocustTestV2, "team.perftest", namespace="default")
    test.spec["worker"]["replicas"] = 20
    test.spec["master"]["command"] = "--locustfile /lotest/src/other.py"
    updated = client.replace(test)
    assert updated.metadata.generation == 2

    wait_until(
        lambda: (
            "Update operations on team.perftest are not currently supported!" in operator.log()
        ),
        what="the update log line",
    )
    assert "LocustTest updated: team.perftest in namespace: default." in operator.log()
    after = children(client, "team.perftest")
    for key in CHILDREN:
        assert after[key].metadata.uid == before[key].metadata.uid
        assert after[key].metadata.resourceVersion == before[key].metadata.resourceVersion
    assert after["worker"].spec.parallelism == 5


def test_deleting_a_test_removes_its_children(client, start_operator):
    start_operator()
    create(client, locusttest())
    wait_for_children(client, "team.perftest")

    client.delete(LocustTestV2, "team.perftest", namespace="default")

    wait_until(lambda: not children(client, "team.perftest"), what="garbage collection")


def test_a_restart_reconciles_again_without_duplicates_or_errors(client, start_operator):
    first = start_operator()
    create(client, locusttest())
    before = wait_for_children(client, "team.perftest")
    wait_until(lambda: len(events_for(client, "team.perftest")) == 3, what="events")
    assert first.stop() == 0

    second = start_operator()
    create(client, locusttest("after.restart"))
    wait_for_children(client, "after.restart")

    after = children(client, "team.perftest")
    assert {k: c.metadata.uid for k, c in after.items()} == {
        k: c.metadata.uid for k, c in before.items()}
    assert len(list(client.list(Job, namespace="default"))) == 4
    assert len(events_for(client, "team.perftest")) == 3
    log = second.log()
    assert "LocustTest created: 'team.perftest'" not in log
    assert "ERROR" not in log and "Traceback" not in log


def test_watch_namespaces_limits_what_is_reconciled(client, start_operator):
    for name in ("load-a", "load-b", "elsewhere"):
        client.create(Namespace(metadata=ObjectMeta(name=name)))
    start_operator(WATCH_NAMESPACES="load-a,load-b")

    for namespace in ("load-a", "load-b", "elsewhere"):
        create(client, locusttest("same.name", namespace))

    wait_for_children(client, "same.name", "load-a")
    wait_for_children(client, "same.name", "load-b")
    assert children(client, "same.name", "elsewhere") == {}


def test_tests_in_several_namespaces_are_isolated(client, start_operator):
    for name in ("team-a", "team-b"):
        client.create(Namespace(metadata=ObjectMeta(name=name)))
    start_operator()
    a = create(client, locusttest("shared", "team-a", workers=2))
    b = create(client, locusttest("shared", "team-b", workers=7))

    in_a = wait_for_children(client, "shared", "team-a")
    in_b = wait_for_children(client, "shared", "team-b")
    assert in_a["worker"].spec.parallelism == 2
    assert in_b["worker"].spec.parallelism == 7
    assert in_a["worker"].metadata.ownerReferences[0].uid == a.metadata.uid
    assert in_b["worker"].metadata.ownerReferences[0].uid == b.metadata.uid


def test_rapid_create_delete_cycles_converge_on_the_last_test(client, start_operator):
    operator = start_operator()
    for _ in range(8):
        create(client, locusttest("flappy", workers=2))
        client.delete(LocustTestV2, "flappy", namespace="default")
    final = create(client, locusttest("flappy", workers=4))

    def settled():
        found = children(client, "flappy")
        return (
            len(found) == 3
            and all(
                c.metadata.ownerReferences[0].uid == final.metadata.uid for c in found.values()
            )
            and found
        )

    found = wait_until(settled, timeout=20, what="children owned by the last flappy")
    assert found["worker"].spec.parallelism == 4
    assert (
        len(
            [
                j
                for j in client.list(Job, namespace="default")
                if j.metadata.name.startswith("flappy-")
            ]
        )
        == 2
    )
    assert "Traceback" not in operator.log()


def test_an_api_error_is_retried_until_the_test_converges(client, start_operator, cluster):
    operator = start_operator()
    cluster.faults.add(verb="create", resource="jobs", status=500, times=3)

    create(client, locusttest())

    wait_for_children(client, "team.perftest")
    log = operator.log()
    assert "Reconcile of LocustTest default/team.perftest failed (attempt 1)" in log
    warnings = wait_until(lambda: [e for e in events_for(client, "team.perftest")
                                   if e.type == "Warning" and e.reason == "CreateFailed"],
                          what="a CreateFailed warning")
    assert warnings[0].message.startswith("Failed to create Job team-perftest-master")


def test_a_failing_test_does_not_hold_up_the_others(client, start_operator, cluster):
    client.create(Namespace(metadata=ObjectMeta(name="broken")))
    start_operator()
    # A create's name is in its body, not its path: the fault targets the namespace instead.
    cluster.faults.add(verb="create", resource="services", namespace="broken", status=500)

    create(client, locusttest("unlucky", "broken"))
    for index in range(5):
        create(client, locusttest(f"healthy-{index}", workers=1))

    for index in range(5):
        wait_for_children(client, f"healthy-{index}")
    assert children(client, "unlucky", "broken") == {}


def test_the_api_server_rejects_a_name_too_long_for_the_child_jobs(client):
    # The CRD's CEL rule answers at admission, with upstream's message, before any operator sees it.
    with pytest.raises(ApiError) as rejected:
        create(client, locusttest("n" * 57))
    assert rejected.value.status.code == 422
    assert "max CR name length is 56" in rejected.value.status.message


def test_an_expired_watch_is_recovered_by_listing_again(client, start_operator, cluster):
    start_operator()
    create(client, locusttest("before"))
    wait_for_children(client, "before")

    cluster.compact()
    cluster.expire_watches()
    create(client, locusttest("after"))

    wait_for_children(client, "after")


def test_probes_and_metrics(client, start_operator):
    operator = start_operator()
    create(client, locusttest())
    wait_for_children(client, "team.perftest")

    assert operator.get("/healthz")[0] == 200
    assert operator.get("/readyz") == (200, "ok\n")
    status, metrics = operator.get("/metrics", port=operator.metrics_port)
    assert status == 200
    line = next(line for line in metrics.splitlines() if line.startswith(
        'controller_runtime_reconcile_total{controller="locusttest",result="success"}'))
    assert float(line.split()[-1]) >= 1


def test_sigterm_exits_cleanly(start_operator):
    operator = start_operator()
    assert operator.stop() == 0
    assert "locust-operator stopped" in operator.log()


def test_unreachable_api_server_means_not_ready(tmp_path, start_operator, cluster):
    operator = start_operator()
    cluster.stop()
    wait_until(lambda: operator.get("/readyz")[0] == 503, what="/readyz to fail")
    assert operator.get("/healthz")[0] == 200


def test_a_request_above_its_limit_stops_the_operator_naming_both(start_operator):
    operator = start_operator(wait=False, POD_CPU_REQUEST="2", POD_CPU_LIMIT="1")
    assert operator.proc.wait(10) == 2
    assert 'POD_CPU_REQUEST="2" is more than POD_CPU_LIMIT="1"' in operator.log()


@pytest.mark.parametrize("setting", ["POD_CPU_LIMIT=lots", "JOB_TTL_SECONDS_AFTER_FINISHED=-1"])
def test_invalid_settings_stop_the_operator_before_it_starts(start_operator, setting):
    name, value = setting.split("=")
    operator = start_operator(wait=False, **{name: value})
    assert operator.proc.wait(10) == 2
    assert f'{name}="{value}"' in operator.log()
