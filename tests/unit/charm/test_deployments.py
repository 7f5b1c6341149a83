"""Two deployments on one cluster, and the RBAC of a deployment that watches some namespaces.

One cluster has one LocustTest CRD, and so one locust-operator deployment that owns it: the CRD
records the application and model that applied it, and another deployment is Blocked naming
them, leaves the CRD alone and runs no reconciler. Watching only some namespaces, the
reconciler's rights are Roles in those namespaces (and one for its Lease), not a ClusterRole.
"""

from __future__ import annotations

import dataclasses

import ops
from ops import testing

import charm_config
import workload
from fakekube.server import FakeKube
from tests.unit.charm.conftest import (
    APP,
    CRD,
    LABELS,
    MODEL,
    default_env,
    running_container,
    state,
)

OWNER_APPLICATION = "locust.io/owner-application"
OWNER_MODEL = "locust.io/owner-model"
ELSEWHERE = (
    "CRD locusttests.locust.io is managed by application locust-operator in model other: one "
    "cluster runs one locust-operator; remove this one, or that one first"
)
PEERS = "peers"


def leader(**kwargs) -> testing.State:
    kwargs.setdefault("containers", {running_container(default_env())})
    return state(leader=True, **kwargs)


def owned_by_other(kube: FakeKube, ctx: testing.Context) -> dict:
    """The CRD as the deployment in model `other` left it, with that deployment's Service."""
    ctx.run(ctx.on.config_changed(), leader())
    crd = kube.get(*CRD)
    kube.patch(*CRD, {"metadata": {"annotations": {OWNER_MODEL: "other"}}})
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}})
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": APP, "namespace": "other"},
            "spec": {"ports": [{"port": 443}]},
        }
    )
    kube.clear_requests()
    return crd


def service_status(out: testing.State) -> ops.pebble.ServiceStatus:
    container = out.get_container(workload.CONTAINER)
    return container.service_statuses[workload.SERVICE]


def test_the_crd_records_the_deployment_that_applied_it(ctx: testing.Context, kube: FakeKube):
    ctx.run(ctx.on.config_changed(), leader())

    annotations = kube.get(*CRD)["metadata"]["annotations"]
    assert (annotations[OWNER_APPLICATION], annotations[OWNER_MODEL]) == (APP, MODEL)


def test_a_crd_owned_by_another_deployment_blocks_and_is_left_alone(
    ctx: testing.Context, kube: FakeKube
):
    owned_by_other(kube, ctx)
    before = kube.get(*CRD)

    out = ctx.run(ctx.on.config_changed(), leader(relations={testing.PeerRelation(PEERS)}))

    assert out.unit_status == testing.BlockedStatus(ELSEWHERE)
    assert kube.get(*CRD) == before  # its conversion webhook still points at the owner
    assert [r.verb for r in kube.requests if r.resource == "customresourcedefinitions"] == ["get"]
    assert service_status(out) == ops.pebble.ServiceStatus.INACTIVE  # no second reconciler
    peers = out.get_relations(PEERS)[0]
    assert peers.local_app_data["reconciler-stopped-because"] == ELSEWHERE


def test_the_other_units_stop_their_reconciler_too(ctx: testing.Context):
    told = testing.PeerRelation(PEERS, local_app_data={"reconciler-stopped-because": ELSEWHERE})

    out = ctx.run(
        ctx.on.update_status(),
        state(containers={running_container(default_env())}, relations={told}),
    )

    assert out.unit_status == testing.BlockedStatus(ELSEWHERE)
    assert service_status(out) == ops.pebble.ServiceStatus.INACTIVE


def test_the_crd_is_taken_over_once_its_owner_is_gone(ctx: testing.Context, kube: FakeKube):
    owned_by_other(kube, ctx)
    peers = testing.PeerRelation(PEERS)
    blocked = ctx.run(ctx.on.config_changed(), leader(relations={peers}))
    kube.delete("v1", "Service", APP, "other")  # the other deployment was removed

    out = ctx.run(ctx.on.update_status(), blocked)

    assert out.unit_status == testing.ActiveStatus()
    assert kube.get(*CRD)["metadata"]["annotations"][OWNER_MODEL] == MODEL
    assert out.get_relations(PEERS)[0].local_app_data.get("reconciler-stopped-because", "") == ""


def test_removing_the_last_unit_releases_the_crd(ctx: testing.Context, kube: FakeKube):
    installed = ctx.run(ctx.on.config_changed(), leader())

    ctx.run(ctx.on.remove(), dataclasses.replace(installed, planned_units=0))

    annotations = kube.get(*CRD)["metadata"].get("annotations") or {}
    assert OWNER_APPLICATION not in annotations and OWNER_MODEL not in annotations


def rbac(kube: FakeKube) -> set[tuple[str, str, str | None]]:
    """Our RBAC objects in the cluster: (kind, name, namespace)."""
    found = set()
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        for obj in kube.list("rbac.authorization.k8s.io/v1", kind):
            if obj["metadata"].get("labels") == LABELS:
                found.add((kind, obj["metadata"]["name"], obj["metadata"].get("namespace")))
    return found


NAME = f"{APP}-{MODEL}"
CLUSTER_WIDE = {("ClusterRole", NAME, None), ("ClusterRoleBinding", NAME, None)}
NAMESPACED = {
    ("Role", NAME, "staging"),
    ("RoleBinding", NAME, "staging"),
    ("Role", f"{NAME}-lease", MODEL),
    ("RoleBinding", f"{NAME}-lease", MODEL),
}


def test_watching_some_namespaces_grants_roles_there_and_nothing_cluster_wide(
    ctx: testing.Context, kube: FakeKube
):
    env = default_env(WATCH_NAMESPACES="staging")
    ctx.run(
        ctx.on.config_changed(),
        leader(config={"watch-namespaces": "staging"}, containers={running_container(env)}),
    )

    assert rbac(kube) == NAMESPACED
    role = kube.get("rbac.authorization.k8s.io/v1", "Role", NAME, "staging")
    assert {r for rule in role["rules"] for r in rule["resources"]} >= {"locusttests", "jobs"}
    lease = kube.get("rbac.authorization.k8s.io/v1", "Role", f"{NAME}-lease", MODEL)
    assert [rule["resources"] for rule in lease["rules"]] == [["leases"]]
    binding = kube.get("rbac.authorization.k8s.io/v1", "RoleBinding", NAME, "staging")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": APP, "namespace": MODEL}]


def test_changing_watch_namespaces_replaces_the_rbac(ctx: testing.Context, kube: FakeKube):
    cluster_wide = ctx.run(ctx.on.config_changed(), leader())
    assert rbac(kube) == CLUSTER_WIDE

    namespaced = ctx.run(
        ctx.on.config_changed(),
        dataclasses.replace(cluster_wide, config={"watch-namespaces": "staging"}),
    )
    assert rbac(kube) == NAMESPACED

    ctx.run(ctx.on.config_changed(), dataclasses.replace(namespaced, config={}))
    assert rbac(kube) == CLUSTER_WIDE


def test_the_option_is_the_reconcilers_setting():
    assert charm_config.variable_for("watch-namespaces") == "WATCH_NAMESPACES"
