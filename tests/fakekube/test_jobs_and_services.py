"""Built-in defaulting for Jobs and Services, and the drivable Job controller."""

from __future__ import annotations

import re

import pytest

from fakekube import FakeKube, StatusError

from .conftest import job


def condition_types(obj: dict) -> list[str]:
    return [c["type"] for c in obj["status"].get("conditions", [])]


def test_job_defaulting_and_generated_selector(fakekube: FakeKube) -> None:
    created = fakekube.create(job("j"))
    uid, spec = created["metadata"]["uid"], created["spec"]
    assert spec["backoffLimit"] == 6
    assert spec["completions"] == 1 and spec["parallelism"] == 1  # both unset: both default to 1
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "j",
        "job-name": "j",
        "batch.kubernetes.io/job-name": "j",
        "controller-uid": uid,
        "batch.kubernetes.io/controller-uid": uid,
    }
    assert created["metadata"]["labels"] == {
        "app": "j"
    }  # from the template, before the generated labels
    assert spec["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    assert "status" not in created


def test_work_queue_jobs_keep_completions_unset(fakekube: FakeKube) -> None:
    spec = fakekube.create(job("q", parallelism=3, backoffLimit=0))["spec"]
    assert "completions" not in spec and spec["parallelism"] == 3 and spec["backoffLimit"] == 0


def test_job_pod_template_must_not_restart_always(fakekube: FakeKube) -> None:
    body = job("bad")
    body["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(StatusError) as error:
        fakekube.create(body)
    assert error.value.code == 422
    assert error.value.message == (
        # Since Kubernetes 1.20 a defaulted (or explicit) Always is reported as a missing value.
        'Job.batch "bad" is invalid: spec.template.spec.restartPolicy: Required value: '
        'valid values: "OnFailure", "Never"'
    )


def test_job_template_is_immutable(fakekube: FakeKube) -> None:
    fakekube.create(job("j"))
    with pytest.raises(StatusError) as error:
        fakekube.patch(
            "batch/v1",
            "Job",
            "j",
            {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "other"}]}}}},
            patch_type="strategic",
        )
    assert "spec.template" in error.value.message and "field is immutable" in error.value.message


def test_create_pods_makes_owned_pending_pods_from_the_template(fakekube: FakeKube) -> None:
    created = fakekube.create(job("workers", parallelism=2))
    pods = fakekube.jobs.create_pods("default", "workers", node_name="node-1")
    assert len(pods) == 2
    for pod in pods:
        assert re.fullmatch(r"workers-[a-z0-9]{5}", pod["metadata"]["name"])
        labels = pod["metadata"]["labels"]
        assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "workers"
        assert (
            labels["controller-uid"]
            == labels["batch.kubernetes.io/controller-uid"]
            == created["metadata"]["uid"]
        )
        assert labels["app"] == "workers"
        owner = pod["metadata"]["ownerReferences"][0]
        assert owner == {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": "workers",
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert pod["status"]["phase"] == "Pending" and pod["spec"]["nodeName"] == "node-1"
    listed = fakekube.list("v1", "Pod", "default", labels={"job-name": "workers"})
    assert sorted(listed, key=lambda p: p["metadata"]["name"]) == sorted(
        pods, key=lambda p: p["metadata"]["name"]
    )


def test_pod_phases_and_job_status(fakekube: FakeKube) -> None:
    fakekube.create(job("j", parallelism=2, backoffLimit=0))
    first, second = (p["metadata"]["name"] for p in fakekube.jobs.create_pods("default", "j"))
    running = fakekube.jobs.set_pod_phase("default", first, "Running")
    container = running["status"]["containerStatuses"][0]
    assert container["state"]["running"]["startedAt"] and container["ready"] is True
    status = fakekube.jobs.sync_job("default", "j")["status"]
    assert status["active"] == 2 and status["ready"] == 1 and status["startTime"]
    assert "conditions" not in status
    done = fakekube.jobs.set_pod_phase("default", second, "Succeeded")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    status = fakekube.jobs.sync_job("default", "j")["status"]
    assert status["active"] == 1 and status["succeeded"] == 1
    assert "conditions" not in status  # work queue: complete only once no pod is active


def test_job_ready_counts_pods_with_the_ready_condition_not_running_ones(
    fakekube: FakeKube,
) -> None:
    fakekube.create(job("j", parallelism=3))
    first, second, third = (
        p["metadata"]["name"] for p in fakekube.jobs.create_pods("default", "j")
    )
    starting = fakekube.jobs.set_pod_phase("default", first, "Running", ready=False)
    ready = {c["type"]: c["status"] for c in starting["status"]["conditions"]}["Ready"]
    assert ready == "False" and starting["status"]["containerStatuses"][0]["ready"] is False
    fakekube.jobs.set_pod_phase("default", second, "Running")
    status = fakekube.jobs.sync_job("default", "j")["status"]
    # Pending and running-but-unready pods are active; only the Ready one counts as ready.
    assert status["active"] == 3 and status["ready"] == 1
    fakekube.jobs.set_pod_phase("default", first, "Running")
    assert fakekube.jobs.sync_job("default", "j")["status"]["ready"] == 2
    fakekube.jobs.set_pod_phase("default", third, "Failed")
    assert fakekube.jobs.sync_job("default", "j")["status"]["ready"] == 2


def test_work_queue_job_completes_when_a_pod_succeeded_and_none_is_active(
    fakekube: FakeKube,
) -> None:
    fakekube.create(job("j", parallelism=2))
    for pod in fakekube.jobs.create_pods("default", "j"):
        fakekube.jobs.set_pod_phase("default", pod["metadata"]["name"], "Succeeded")
    finished = fakekube.jobs.sync_job("default", "j")
    assert condition_types(finished) == ["SuccessCriteriaMet", "Complete"]
    assert finished["status"]["succeeded"] == 2 and finished["status"]["completionTime"]
    complete = finished["status"]["conditions"][1]
    assert complete["status"] == "True" and complete["reason"] == "CompletionsReached"


def test_first_pod_failure_fails_a_job_with_backoff_limit_zero(fakekube: FakeKube) -> None:
    fakekube.create(job("j", parallelism=2, backoffLimit=0))
    first, second = (p["metadata"]["name"] for p in fakekube.jobs.create_pods("default", "j"))
    failed_pod = fakekube.jobs.set_pod_phase(
        "default", first, "Failed", exit_code=3, reason="Error"
    )
    assert failed_pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    failed = fakekube.jobs.sync_job("default", "j")
    assert condition_types(failed) == ["FailureTarget", "Failed"]
    assert failed["status"]["conditions"][1]["reason"] == "BackoffLimitExceeded"
    assert failed["status"]["failed"] == 1 and "active" not in failed["status"]
    assert fakekube.get("v1", "Pod", second) is None  # the controller removes the remaining pods


def test_a_running_pod_deleted_counts_as_failed(fakekube: FakeKube) -> None:
    fakekube.create(job("j", backoffLimit=0))
    (pod,) = fakekube.jobs.create_pods("default", "j")
    fakekube.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running")
    fakekube.delete("v1", "Pod", pod["metadata"]["name"])
    failed = fakekube.jobs.sync_job("default", "j")
    assert condition_types(failed) == ["FailureTarget", "Failed"]
    assert failed["status"]["failed"] == 1 and "active" not in failed["status"]


def test_a_succeeded_pod_deleted_still_counts_as_succeeded(fakekube: FakeKube) -> None:
    fakekube.create(job("j", backoffLimit=0, parallelism=2, completions=2))
    first, second = (p["metadata"]["name"] for p in fakekube.jobs.create_pods("default", "j"))
    fakekube.jobs.set_pod_phase("default", first, "Succeeded")
    fakekube.delete("v1", "Pod", first)
    fakekube.jobs.set_pod_phase("default", second, "Succeeded")
    done = fakekube.jobs.sync_job("default", "j")
    assert "Complete" in condition_types(done)
    assert done["status"]["succeeded"] == 2


def test_complete_and_fail_conveniences(fakekube: FakeKube) -> None:
    fakekube.create(job("ok"))
    fakekube.create(job("ko"))
    assert "Complete" in condition_types(fakekube.jobs.complete_job("default", "ok"))
    assert "Failed" in condition_types(fakekube.jobs.fail_job("default", "ko"))


def test_auto_mode_creates_pods_and_tracks_them(fakekube: FakeKube) -> None:
    fakekube.jobs.auto = True
    fakekube.create(job("auto", parallelism=3))
    pods = fakekube.wait_for(
        lambda: (
            len(fakekube.list("v1", "Pod", "default")) == 3
            and fakekube.list("v1", "Pod", "default")
        ),
        message="three pods",
    )
    assert {p["status"]["phase"] for p in pods} == {"Pending"}
    fakekube.wait_for(
        lambda: fakekube.get("batch/v1", "Job", "auto").get("status", {}).get("active") == 3,
        message="status.active to count the pods",
    )
    for pod in pods:
        fakekube.jobs.set_pod_phase("default", pod["metadata"]["name"], "Succeeded")
    fakekube.wait_for(
        lambda: "Complete" in condition_types(fakekube.get("batch/v1", "Job", "auto")),
        message="the Job to complete",
    )


def test_service_defaulting_and_cluster_ip_allocation(fakekube: FakeKube) -> None:
    first = fakekube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "master"},
            "spec": {
                "selector": {"app": "m"},
                "ports": [
                    {"name": "web", "port": 8089},
                    {"name": "p2", "port": 5557, "targetPort": "p2"},
                ],
            },
        }
    )
    spec = first["spec"]
    assert spec["type"] == "ClusterIP" and spec["sessionAffinity"] == "None"
    assert re.fullmatch(r"10\.96\.\d+\.\d+", spec["clusterIP"]) and spec["clusterIPs"] == [
        spec["clusterIP"]
    ]
    assert spec["ports"][0] == {"name": "web", "port": 8089, "targetPort": 8089, "protocol": "TCP"}
    assert spec["ports"][1]["targetPort"] == "p2"
    assert first["status"] == {"loadBalancer": {}}
    second = fakekube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "other"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    assert second["spec"]["clusterIP"] != spec["clusterIP"]
    headless = fakekube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "headless"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]},
        }
    )
    assert headless["spec"]["clusterIPs"] == ["None"]


def test_service_keeps_its_cluster_ip_on_update(fakekube: FakeKube) -> None:
    created = fakekube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]},
        }
    )
    replacement = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 81}]},
    }
    updated = fakekube.replace(replacement)
    assert updated["spec"]["clusterIP"] == created["spec"]["clusterIP"]
    with pytest.raises(StatusError):
        fakekube.patch("v1", "Service", "s", {"spec": {"clusterIP": "10.96.99.99"}})


def test_services_need_ports_and_names_for_several(fakekube: FakeKube) -> None:
    with pytest.raises(StatusError) as error:
        fakekube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "s"},
                "spec": {"ports": [{"port": 80}, {"port": 81}]},
            }
        )
    assert "spec.ports[0].name: Required value" in error.value.message
    with pytest.raises(StatusError):
        fakekube.create(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
        )


def test_a_pod_deleted_before_it_ended_counts_as_failed(fakekube: FakeKube) -> None:
    """As the real controller counts it (its pods carry a finalizer until counted): a Running pod
    deleted fails a Job with backoffLimit 0."""
    fakekube.jobs.auto = True
    fakekube.create(job("gone", backoffLimit=0))
    (pod,) = fakekube.wait_for(
        lambda: fakekube.list("v1", "Pod", "default", {"app": "gone"}), message="a pod"
    )
    fakekube.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running")
    fakekube.delete("v1", "Pod", pod["metadata"]["name"])
    fakekube.wait_for(
        lambda: "Failed" in condition_types(fakekube.get("batch/v1", "Job", "gone")),
        message="the Job to fail",
    )
    assert fakekube.get("batch/v1", "Job", "gone")["status"]["failed"] == 1
