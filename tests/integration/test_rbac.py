"""The ClusterRole the charm grants (src/templates/rbac.yaml.j2): enough, and no more.

Enough: the fake enforces it (see conftest), so a missing rule fails the tests that need it.
No more: across a representative run of the reconciler and the charm's actions, every rule the
role grants is one the server's authorizer relied on, for a request or for an admission check.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Service

import reports
from reconciler.api.types import LocustTestV2
from reconciler.config import OperatorConfig
from benchmarks.stub_master import STUB_IMAGE, STUB_REPOSITORY
from fakekube import KubeletSettings
from fakekube.sandbox import OperatorProcess
from fakekube.server import FakeKube
from reconciler.crds import crd_text
from tests.integration.conftest import (
    APP,
    MODEL,
    OPERATOR_USER,
    grant_operator_role,
    operator_rbac,
    refused,
    wait_until,
)
from tests.integration.objects import (
    children,
    reasons,
    conditions,
    create,
    create_bypassing_validation,
    locusttest,
    status,
    wait_for_children,
)
from tests.integration.test_leader_election import ELECTION
from tests.integration.test_results import Stubs


@pytest.fixture
def fakekube(tmp_path):
    """A kubelet that runs the stub Locust image only: the pods of the Locust image are left for
    the scenario to drive."""
    settings = KubeletSettings(root=tmp_path / "node", images={STUB_REPOSITORY: STUB_IMAGE})
    with FakeKube(authorization="RBAC", kubelet=settings) as server:
        yield server


def granted() -> set[tuple[str, str, str]]:
    role = next(d for d in operator_rbac() if d["kind"] == "ClusterRole")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def relied_on(kube) -> set[tuple[str, str, str]]:
    """What the authorizer allowed the application's ServiceAccount, as role rule entries."""
    return {
        (a.api_group, f"{a.resource}/{a.subresource}" if a.subresource else a.resource, a.verb)
        for a in (check.attributes for check in kube.authorization_checks if check.allowed)
        if a.user.name == OPERATOR_USER and a.resource_request
    }


def run_the_charms_actions(kubeconfig, name: str) -> None:
    """list-tests and describe-test, as the charm runs them: as the same ServiceAccount."""
    kube = Client(config=KubeConfig.from_file(kubeconfig), field_manager=APP)
    listed = reports.list_tests(kube, APP, None)
    assert name in {test["name"] for test in listed["tests"].values()}
    described = reports.describe_test(
        kube, APP, name, "default", OperatorConfig.from_env({}), datetime.now(timezone.utc)
    )
    assert described["children"]["master-job"]["name"] == f"{name}-master"
    kube.close()


def abort_the_test_of_a_stub_master(client, cluster) -> None:
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "stub-scripts", "namespace": "default"},
            "data": {"locustfile.py": "# the stub image runs no Locust\n"},
        }
    )
    thresholds = [{"metric": "failRatio", "max": 0.1, "abortOnFail": True}]
    create(
        client,
        locusttest(
            "aborted",
            workers=1,
            image=f"{STUB_REPOSITORY}:2.47.0",
            testFiles={"configMapRef": "stub-scripts"},
            thresholds=thresholds,
        ),
    )
    wait_for_children(client, "aborted")
    stubs = Stubs(cluster)
    try:
        (master,) = cluster.jobs.create_pods("default", "aborted-master")
        wait_until(
            lambda: "ReportSaved" in reasons(client, "aborted"),
            timeout=20,
            what="the report of the aborted test",
        )
        assert "TestAborted" in reasons(client, "aborted")
        name = master["metadata"]["name"]
        wait_until(
            lambda: name not in {p.metadata.name for p in client.list(Pod)},
            what="the master pod deleted",
        )
    finally:
        stubs.close()


def test_every_rule_of_the_cluster_role_is_needed_by_the_reconciler_or_the_actions(
    client, start_operator, cluster, tmp_path
):
    first = start_operator(POD_HEALTH_GRACE_SECONDS="0", RESULTS_INTERVAL_SECONDS="1", **ELECTION)
    wait_until(lambda: "now the leader" in first.log(), what="leadership")
    cluster.faults.add(verb="create", resource="jobs", status=500, times=2)
    create(client, locusttest("checked"))
    wait_for_children(client, "checked")
    # A child deleted under a running test: recreated once the test is read live.
    wait_until(
        lambda: conditions(status(client, "checked")).get("Ready") == ("True", "ResourcesCreated"),
        what="Ready",
    )
    client.delete(Service, "checked-master", namespace="default")
    wait_until(lambda: "externally deleted, recreated" in first.log(), what="the recreation")
    # Invalid in a way only the reconciler sees: a Warning event and an InvalidSpec status.
    create_bypassing_validation(
        cluster,
        locusttest(
            "clash",
            volumes=[{"name": "clash-master", "emptyDir": {}}],
            volumeMounts=[{"name": "clash-master", "mountPath": "/data"}],
        ),
    )
    # A worker Job the API server refuses: the Service and the master Job are rolled back.
    cluster.faults.add(verb="create", resource="jobs", status=422, skip=1, times=1)
    create(client, locusttest("refused"))
    wait_until(lambda: "Deleted Job refused-master" in first.log(), what="the rollback")
    test = client.get(LocustTestV2, "checked", namespace="default")
    test.spec["worker"]["replicas"] = 9
    client.replace(test)
    wait_until(lambda: "Update operations on checked" in first.log(), what="the update")
    # A pod stuck creating: the reconciler looks for the ConfigMap it mounts.
    (pod,) = cluster.jobs.create_pods("default", "checked-master")
    cluster.patch_status(
        "v1",
        "Pod",
        pod["metadata"]["name"],
        {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "checked-master",
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
    wait_until(
        lambda: any(
            r.resource == "configmaps" for r in cluster.requests if r.user == OPERATOR_USER
        ),
        what="the ConfigMap check",
    )
    run_the_charms_actions(
        cluster.write_kubeconfig(tmp_path / "actions", user=OPERATOR_USER), "checked"
    )
    # A test stopped early through its master's web API (pods/proxy), its report saved
    # (configmaps create), its master pod deleted (pods delete).
    abort_the_test_of_a_stub_master(client, cluster)
    assert first.stop() == 0
    second = start_operator(**ELECTION)
    wait_until(lambda: "now the leader" in second.log(), what="leadership")
    client.delete(LocustTestV2, "checked", namespace="default")
    client.delete(LocustTestV2, "aborted", namespace="default")
    wait_until(lambda: not children(client, "checked"), what="garbage collection")
    wait_until(lambda: not children(client, "aborted"), what="garbage collection")
    assert second.stop() == 0

    assert granted() - relied_on(cluster) == set()
    assert not list(client.list(Job, namespace="default"))


def test_watching_one_namespace_needs_only_roles(tmp_path):
    """With WATCH_NAMESPACES, the charm grants Roles there and one for the Lease: nothing
    cluster-wide. The operator, as its ServiceAccount, works within them."""
    with FakeKube(authorization="RBAC") as kube:
        kube.apply_yaml(crd_text())
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "load"}})
        grant_operator_role(kube, watch_namespaces=("load",))
        kubeconfig = kube.write_kubeconfig(tmp_path / "operator", user=OPERATOR_USER)
        settings = {**ELECTION, "LEASE_NAMESPACE": MODEL, "WATCH_NAMESPACES": "load"}
        operator = OperatorProcess(kubeconfig, tmp_path / "operator.log", settings)
        try:
            operator.wait_ready()
            wait_until(lambda: "now the leader" in operator.log(), what="leadership")
            admin = Client(config=KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "admin")))
            create(admin, locusttest("scoped", namespace="load"))
            wait_for_children(admin, "scoped", namespace="load")
        finally:
            assert operator.stop() == 0
        assert refused(kube) == []
        assert "forbidden" not in operator.log().lower()
