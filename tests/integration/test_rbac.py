"""The reconciler stays within the ClusterRole the charm grants it (src/templates/rbac.yaml.j2)."""

from __future__ import annotations

from pathlib import Path

import jinja2
import yaml
from lightkube.resources.batch_v1 import Job

from reconciler.api.types import LocustTestV2
from tests.integration.conftest import OPERATOR_USER, wait_until
from tests.integration.objects import (
    children,
    create,
    create_bypassing_validation,
    locusttest,
    wait_for_children,
)
from tests.integration.test_leader_election import ELECTION

TEMPLATE = Path(__file__).resolve().parents[2] / "src" / "templates" / "rbac.yaml.j2"


def granted() -> set[tuple[str, str, str]]:
    text = jinja2.Template(TEMPLATE.read_text()).render(
        name="locust-operator-model", labels={}, service_account="locust-operator",
        namespace="model")
    role = next(d for d in yaml.safe_load_all(text) if d["kind"] == "ClusterRole")
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_every_request_of_the_reconciler_is_granted_by_its_cluster_role(
    client, start_operator, cluster
):
    first = start_operator(POD_HEALTH_GRACE_SECONDS="0", **ELECTION)
    wait_until(lambda: "now the leader" in first.log(), what="leadership")
    cluster.faults.add(verb="create", resource="jobs", status=500, times=2)
    create(client, locusttest("checked"))
    wait_for_children(client, "checked")
    # Invalid in a way only the reconciler sees: a Warning event and an InvalidSpec status.
    create_bypassing_validation(
        cluster,
        locusttest(
            "clash",
            volumes=[{"name": "clash-master", "emptyDir": {}}],
            volumeMounts=[{"name": "clash-master", "mountPath": "/data"}],
        ),
    )
    test = client.get(LocustTestV2, "checked", namespace="default")
    test.spec["worker"]["replicas"] = 9
    client.replace(test)
    wait_until(lambda: "Update operations on checked" in first.log(), what="the update")
    # A pod stuck creating: the reconciler looks for the ConfigMap it mounts.
    (pod,) = cluster.jobs.create_pods("default", "checked-master")
    cluster.patch_status("v1", "Pod", pod["metadata"]["name"], {"phase": "Pending",
                         "containerStatuses": [{"name": "checked-master", "ready": False,
                                                "restartCount": 0, "image": "x", "imageID": "",
                                                "state": {"waiting": {
                                                    "reason": "ContainerCreating"}}}]},
                         namespace="default")
    wait_until(lambda: any(r.resource == "configmaps" for r in cluster.requests
                           if r.user == OPERATOR_USER), what="the ConfigMap check")
    assert first.stop() == 0
    second = start_operator(**ELECTION)
    wait_until(lambda: "now the leader" in second.log(), what="leadership")
    client.delete(LocustTestV2, "checked", namespace="default")
    wait_until(lambda: not children(client, "checked"), what="garbage collection")
    assert second.stop() == 0

    # /version is every user's to read (Kubernetes' system:public-info-viewer role).
    requests = [
        r for r in cluster.requests if r.user == OPERATOR_USER and r.path != "/version"
    ]
    used = {
        (r.api_group, f"{r.resource}/{r.subresource}" if r.subresource else r.resource, r.verb)
        for r in requests
    }
    assert used - granted() == set()
    # The check has teeth: the reconciler did use the rights it is granted for its work.
    assert {
        ("locust.io", "locusttests", "list"),
        ("locust.io", "locusttests", "watch"),
        ("", "services", "create"),
        ("batch", "jobs", "create"),
        ("", "events", "create"),
        ("", "events", "patch"),
        ("coordination.k8s.io", "leases", "update"),
        ("locust.io", "locusttests/status", "patch"),
        ("batch", "jobs", "watch"),
        ("", "pods", "watch"),
    } <= used
    assert not list(client.list(Job, namespace="default"))
