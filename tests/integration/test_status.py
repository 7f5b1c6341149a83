"""A test's live status: phases driven by its Jobs and pods, conditions, events, self-healing,
pod health, and the printer columns `kubectl get lotest` shows."""

from __future__ import annotations

import httpx2
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Service

from reconciler.api.types import LocustTestV2
from tests.integration.conftest import AS_ADMIN, wait_until
from tests.integration.objects import (
    children,
    conditions,
    create,
    create_bypassing_validation,
    events_for,
    locusttest,
    reasons,
    status,
    wait_for_children,
    wait_for_phase,
)


def workers(current: dict) -> tuple:
    found = next(c for c in current["conditions"] if c["type"] == "WorkersConnected")
    return current["connectedWorkers"], found["status"], found["reason"]


def event_count(client, name: str, reason: str) -> int:
    """How many times an event was recorded: repeats bump one Event's count, as in Kubernetes."""
    return sum(e.count or 1 for e in events_for(client, name) if e.reason == reason)


def test_a_test_goes_from_pending_to_running_to_succeeded(client, start_operator, cluster):
    operator = start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    pending = wait_until(
        lambda: (s := status(client, "shop.checkout")).get("conditions") and s, what="a status"
    )
    assert pending["phase"] == "Pending"
    assert pending["expectedWorkers"] == 2

    for job in ("shop-checkout-master", "shop-checkout-worker"):
        for pod in cluster.jobs.create_pods("default", job):
            cluster.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running")
        cluster.jobs.sync_job("default", job)
    # The master's pod and the workers' Job reach the operator in either order: the test can be
    # Running before its workers count as connected.
    running = wait_until(
        lambda: (
            (s := status(client, "shop.checkout")).get("phase") == "Running"
            and s.get("connectedWorkers") == 2
            and s
        ),
        what="Running with both workers connected",
    )
    assert running["startTime"]
    assert conditions(running)["WorkersConnected"] == ("True", "AllWorkersConnected")
    assert conditions(running)["Ready"] == ("True", "ResourcesCreated")

    cluster.jobs.complete_job("default", "shop-checkout-master")
    done = wait_for_phase(client, "shop.checkout", "Succeeded")
    assert done["completionTime"]
    assert conditions(done)["TestCompleted"] == ("True", "TestSucceeded")
    assert workers(done) == (0, "False", "TestEnded")
    wait_until(
        lambda: {"TestStarted", "TestCompleted"} <= set(reasons(client, "shop.checkout")),
        what="the phase events",
    )
    assert event_count(client, "shop.checkout", "TestStarted") == 1
    log = wait_until(
        lambda: (text := operator.log()) and "Running -> Succeeded" in text and text,
        what="the last transition in the log",
    )
    assert log.count("phase transition: Pending -> Running") == 1
    assert log.count("phase transition: Running -> Succeeded") == 1


def test_pods_that_have_not_started_leave_the_test_pending(client, start_operator, cluster):
    first = start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    wait_until(
        lambda: (
            conditions(status(client, "shop.checkout")).get("Ready")
            == ("True", "ResourcesCreated")
        ),
        what="Ready",
    )
    first.stop()
    # Pending pods, which the Jobs count as active; an operator started now sees them at once.
    pods = {}
    for job in ("shop-checkout-master", "shop-checkout-worker"):
        pods[job] = [p["metadata"]["name"] for p in cluster.jobs.create_pods("default", job)]
        assert cluster.jobs.sync_job("default", job)["status"]["active"] == len(pods[job])
    start_operator()

    pending = wait_until(
        lambda: (
            (s := status(client, "shop.checkout"))
            and next(c for c in s["conditions"] if c["type"] == "PodsHealthy")["message"]
            == "Pods are starting up"
            and s
        ),
        what="the operator to see the pods",
    )
    assert pending["phase"] == "Pending"
    assert workers(pending) == (0, "False", "WaitingForWorkers")

    # The master runs; the workers' containers run but are not ready yet.
    cluster.jobs.set_pod_phase("default", pods["shop-checkout-master"][0], "Running")
    for name in pods["shop-checkout-worker"]:
        cluster.jobs.set_pod_phase("default", name, "Running", ready=False)
    for job in pods:
        cluster.jobs.sync_job("default", job)
    running = wait_for_phase(client, "shop.checkout", "Running")
    assert workers(running)[0] == 0

    for name in pods["shop-checkout-worker"]:
        cluster.jobs.set_pod_phase("default", name, "Running")
    cluster.jobs.sync_job("default", "shop-checkout-worker")
    connected = wait_until(
        lambda: (s := status(client, "shop.checkout")).get("connectedWorkers") == 2 and s,
        what="both workers connected",
    )
    assert workers(connected) == (2, "True", "AllWorkersConnected")
    wait_until(lambda: "TestStarted" in reasons(client, "shop.checkout"), what="TestStarted")
    assert event_count(client, "shop.checkout", "TestStarted") == 1


def test_a_failed_master_job_fails_the_test(client, start_operator, cluster):
    start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    cluster.jobs.fail_job("default", "shop-checkout-master")

    failed = wait_for_phase(client, "shop.checkout", "Failed")
    assert conditions(failed)["TestCompleted"] == ("True", "TestFailed")
    assert conditions(failed)["Ready"] == ("False", "ResourcesFailed")
    assert workers(failed) == (0, "False", "TestEnded")
    wait_until(lambda: "TestFailed" in reasons(client, "shop.checkout"), what="TestFailed")


def test_a_child_deleted_while_running_is_recreated_with_a_warning(
    client, start_operator, cluster
):
    start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    before = wait_for_children(client, "shop.checkout")
    for pod in cluster.jobs.create_pods("default", "shop-checkout-master"):
        cluster.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running")
    cluster.jobs.sync_job("default", "shop-checkout-master")
    wait_for_phase(client, "shop.checkout", "Running")

    client.delete(Service, "shop-checkout-master", namespace="default")

    recreated = wait_until(
        lambda: (
            (s := children(client, "shop.checkout").get("service"))
            and s.metadata.uid != before["service"].metadata.uid
            and s
        ),
        what="a new Service",
    )
    assert recreated.spec.ports[0].port == 5557
    warnings = wait_until(
        lambda: [e for e in events_for(client, "shop.checkout") if e.reason == "ResourceDeleted"],
        what="ResourceDeleted",
    )
    assert warnings[0].type == "Warning"
    assert warnings[0].message == (
        "Master Service shop-checkout-master was deleted externally, will attempt recreation"
    )


def test_a_finished_test_is_not_healed(client, start_operator, cluster):
    operator = start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    cluster.jobs.complete_job("default", "shop-checkout-master")
    wait_for_phase(client, "shop.checkout", "Succeeded")

    client.delete(Job, "shop-checkout-worker", namespace="default")  # as a TTL would

    create(client, locusttest("later"))
    wait_for_children(client, "later")  # the operator has moved on
    assert "worker" not in children(client, "shop.checkout")
    assert "ResourceDeleted" not in reasons(client, "shop.checkout")
    assert "Traceback" not in operator.log()


def test_a_spec_change_after_creation_is_reported_as_drift(client, start_operator):
    operator = start_operator()
    create(client, locusttest("shop.checkout", workers=5))
    before = wait_for_children(client, "shop.checkout")

    test = client.get(LocustTestV2, "shop.checkout", namespace="default")
    test.spec["worker"]["replicas"] = 20
    client.replace(test)

    drifted = wait_until(
        lambda: "SpecDrifted" in conditions(s := status(client, "shop.checkout")) and s,
        what="SpecDrifted",
    )
    assert conditions(drifted)["SpecDrifted"] == ("True", "SpecChangeIgnored")
    assert drifted["observedGeneration"] == 2
    after = children(client, "shop.checkout")
    assert after["worker"].metadata.uid == before["worker"].metadata.uid
    assert after["worker"].spec.parallelism == 5
    assert "Update operations on shop.checkout are not currently supported!" in operator.log()


def test_broken_pods_fail_the_test_after_the_grace_period(client, start_operator, cluster):
    start_operator(POD_HEALTH_GRACE_SECONDS="1")
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    (pod,) = cluster.jobs.create_pods("default", "shop-checkout-master")
    name = pod["metadata"]["name"]
    cluster.patch_status(
        "v1",
        "Pod",
        name,
        {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "shop-checkout-master",
                    "ready": False,
                    "restartCount": 0,
                    "image": "x",
                    "imageID": "",
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": "Back-off pulling image",
                        }
                    },
                }
            ],
        },
        namespace="default",
    )

    failed = wait_for_phase(client, "shop.checkout", "Failed", timeout=20)
    health = next(c for c in failed["conditions"] if c["type"] == "PodsHealthy")
    assert (health["status"], health["reason"]) == ("False", "ImagePullError")
    assert name in health["message"]
    wait_until(lambda: "PodFailure" in reasons(client, "shop.checkout"), what="PodFailure")


def test_a_missing_configmap_is_named(client, start_operator, cluster):
    start_operator(POD_HEALTH_GRACE_SECONDS="1")
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    (pod,) = cluster.jobs.create_pods("default", "shop-checkout-master")
    cluster.patch_status(
        "v1",
        "Pod",
        pod["metadata"]["name"],
        {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "shop-checkout-master",
                    "ready": False,
                    "restartCount": 0,
                    "image": "x",
                    "imageID": "",
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                }
            ],
        },
        namespace="default",
    )

    failed = wait_for_phase(client, "shop.checkout", "Failed", timeout=20)
    health = next(c for c in failed["conditions"] if c["type"] == "PodsHealthy")
    assert health["reason"] == "ConfigurationError"
    assert "ConfigMap not found (expected: scripts)" in health["message"]


def test_a_stored_test_that_breaks_a_rule_fails_with_invalid_spec(client, start_operator, cluster):
    start_operator()
    # A volume named like the operator's own test-files volume, stored before the CRD had the rule.
    create_bypassing_validation(
        cluster,
        locusttest(
            "dotted.name",
            workers=2,
            volumes=[{"name": "dotted-name-master", "emptyDir": {}}],
            volumeMounts=[{"name": "dotted-name-master", "mountPath": "/data"}],
        ),
    )

    invalid = wait_until(
        lambda: (
            conditions(s := status(client, "dotted.name")).get("Ready") == ("False", "InvalidSpec")
            and s
        ),
        what="InvalidSpec",
    )
    assert invalid["phase"] == "Failed"
    assert children(client, "dotted.name") == {}
    wait_until(lambda: "InvalidSpec" in reasons(client, "dotted.name"), what="the event")


def test_a_pending_test_is_created_after_a_restart_whatever_its_generation(client, start_operator):
    create(client, locusttest("shop.checkout", workers=2))
    test = client.get(LocustTestV2, "shop.checkout", namespace="default")
    test.spec["worker"]["replicas"] = 4
    client.replace(test)  # generation 2 before any operator saw it

    start_operator()

    found = wait_for_children(client, "shop.checkout")
    assert found["worker"].spec.parallelism == 4
    assert "SpecDrifted" not in conditions(status(client, "shop.checkout"))


def test_printer_columns_show_phase_and_workers(client, start_operator, cluster):
    start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    wait_until(lambda: status(client, "shop.checkout").get("phase"), what="a phase")

    table = httpx2.get(
        f"{cluster.url}/apis/locust.io/v2/namespaces/default/locusttests",
        headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io", **AS_ADMIN},
    ).json()
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:4] == ["Name", "Phase", "Workers", "Connected"]
    assert table["rows"][0]["cells"][:4] == ["shop.checkout", "Pending", 2, 0]


def test_the_operator_watches_only_its_own_jobs_and_pods(client, start_operator, cluster):
    start_operator()
    create(client, locusttest("shop.checkout", workers=2))
    wait_for_children(client, "shop.checkout")
    watches = [
        r
        for r in cluster.requests
        if r.verb in ("list", "watch") and r.resource in ("jobs", "pods", "services")
    ]
    assert watches
    assert all(
        "managed-by=locust-k8s-operator" in r.query.get("labelSelector", "") for r in watches
    )
    assert not [e for e in client.list(Event, namespace="default") if e.type == "Warning"]
