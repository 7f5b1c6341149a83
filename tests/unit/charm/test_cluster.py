"""The leader's cluster objects, against the fake API server: apply, refuse, retry, remove."""

from __future__ import annotations

import base64
import dataclasses

import httpx2
import pytest
from ops import testing

from reconciler.crds import crd_manifest
from fakekube.server import FakeKube
from tests.unit.charm.conftest import (
    APP,
    CRD,
    EXPECTED_RULES,
    LABELS,
    MODEL,
    TLS,
    default_env,
    established,
    running_container,
    state,
)

ROLE = ("rbac.authorization.k8s.io/v1", "ClusterRole", f"{APP}-{MODEL}")
BINDING = ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", f"{APP}-{MODEL}")
TRUST = f"missing cluster permissions; run: juju trust {APP} --scope=cluster"

# Another project's locusttests.locust.io: a different schema, and not labelled as ours.
FOREIGN_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: locusttests.locust.io
spec:
  group: locust.io
  scope: Namespaced
  names: {kind: LocustTest, listKind: LocustTestList, plural: locusttests, singular: locusttest}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                locustfile: {type: string}
                users: {type: integer}
"""


def leader_state(**kwargs) -> testing.State:
    kwargs.setdefault("containers", {running_container(default_env())})
    return state(leader=True, **kwargs)


def rules_of(role: dict) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


def writes(kube: FakeKube) -> list[tuple[str, str, str]]:
    return [(r.verb, r.resource, r.name) for r in kube.requests if r.verb != "get"]


def without_printer_columns(crd: dict) -> dict:
    """`crd` as an older charm might have left it: without printer columns."""
    for version in crd["spec"]["versions"]:
        version["additionalPrinterColumns"] = []
    return crd


def printer_columns(crd: dict) -> dict[str, list[str]]:
    return {
        version["name"]: [column["name"] for column in version["additionalPrinterColumns"]]
        for version in crd["spec"]["versions"]
    }


# --- Apply -------------------------------------------------------------------------------------


def test_leader_applies_the_crd_and_rbac(ctx: testing.Context, kube: FakeKube):
    out = ctx.run(ctx.on.config_changed(), leader_state())

    crd = kube.get(*CRD)
    assert crd["metadata"]["labels"] == {"app.kubernetes.io/part-of": "locust-operator"}
    assert [v["schema"] for v in crd["spec"]["versions"]] == [
        v["schema"] for v in crd_manifest()["spec"]["versions"]
    ]
    role = kube.get(*ROLE)
    assert role["metadata"]["labels"] == LABELS
    assert rules_of(role) == EXPECTED_RULES
    binding = kube.get(*BINDING)
    assert binding["metadata"]["labels"] == LABELS
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{APP}-{MODEL}",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": APP, "namespace": MODEL}]
    assert out.unit_status == testing.ActiveStatus()


def test_the_crd_sends_conversions_to_the_applications_service(
    ctx: testing.Context, kube: FakeKube
):
    ctx.run(ctx.on.config_changed(), leader_state())

    crd = kube.get(*CRD)
    assert crd["spec"]["conversion"] == {
        "strategy": "Webhook",
        "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {
                # Juju's Service for the application, in the model's namespace.
                "service": {"name": APP, "namespace": MODEL, "port": 9443, "path": "/convert"},
                "caBundle": base64.b64encode(TLS.ca_bundle.encode()).decode(),
            },
        },
    }
    # With a webhook to convert, both versions are served; v2 is stored.
    versions = {v["name"]: (v["served"], v["storage"]) for v in crd["spec"]["versions"]}
    assert versions == {"v1": (True, False), "v2": (True, True)}


def test_applies_are_server_side_with_the_app_as_field_manager(
    ctx: testing.Context, kube: FakeKube, sent: list[httpx2.Request]
):
    ctx.run(ctx.on.config_changed(), leader_state())

    applies = [r for r in sent if r.method == "PATCH"]
    assert [r.url.path.rsplit("/", 1)[-1] for r in applies] == [
        "locusttests.locust.io",
        f"{APP}-{MODEL}",
        f"{APP}-{MODEL}",
    ]
    for request in applies:
        assert request.headers["content-type"] == "application/apply-patch+yaml"
        assert request.url.params["fieldManager"] == APP
        assert request.url.params["force"] == "true"


def test_the_version_and_the_crd_are_checked_before_anything_is_applied(
    ctx: testing.Context, kube: FakeKube
):
    ctx.run(ctx.on.config_changed(), leader_state())

    assert [r.path for r in kube.requests][0] == "/version"
    assert [(r.verb, r.resource) for r in kube.requests][1:] == [
        ("get", "customresourcedefinitions"),
        ("patch", "customresourcedefinitions"),
        ("patch", "clusterroles"),
        ("patch", "clusterrolebindings"),
        # What is labelled ours and no longer wanted goes (none here).
        ("list", "clusterrolebindings"),
        ("list", "clusterroles"),
        ("list", "rolebindings"),
        ("list", "roles"),
    ]


def test_maintenance_is_shown_while_applying(ctx: testing.Context, kube: FakeKube):
    ctx.run(ctx.on.config_changed(), leader_state())

    assert testing.MaintenanceStatus("applying the CRD and RBAC") in ctx.unit_status_history


def test_applying_again_changes_nothing(ctx: testing.Context, kube: FakeKube):
    first = ctx.run(ctx.on.config_changed(), leader_state())
    before = [kube.get(*CRD), kube.get(*ROLE), kube.get(*BINDING)]

    out = ctx.run(ctx.on.config_changed(), first)

    assert [kube.get(*CRD), kube.get(*ROLE), kube.get(*BINDING)] == before
    assert out.unit_status == testing.ActiveStatus()


def test_our_crd_applied_by_hand_is_taken_over(ctx: testing.Context, kube: FakeKube):
    # `locust-operator crd | kubectl apply -f -` carries the part-of label: it is ours.
    kube.create(without_printer_columns(crd_manifest()))

    out = ctx.run(ctx.on.config_changed(), leader_state())

    crd = kube.get(*CRD)
    assert printer_columns(crd) == printer_columns(crd_manifest())
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert out.unit_status == testing.ActiveStatus()


def test_upgrade_charm_reapplies(ctx: testing.Context, kube: FakeKube):
    installed = ctx.run(ctx.on.config_changed(), leader_state())
    kube.delete(*ROLE)
    kube.patch(*CRD, {"spec": without_printer_columns(kube.get(*CRD))["spec"]})

    out = ctx.run(ctx.on.upgrade_charm(), installed)

    assert rules_of(kube.get(*ROLE)) == EXPECTED_RULES
    assert printer_columns(kube.get(*CRD)) == printer_columns(crd_manifest())
    assert out.unit_status == testing.ActiveStatus()


def test_new_leader_applies(ctx: testing.Context, kube: FakeKube):
    out = ctx.run(ctx.on.leader_elected(), leader_state())

    assert kube.get(*CRD) and kube.get(*ROLE) and kube.get(*BINDING)
    assert out.unit_status == testing.ActiveStatus()


def test_non_leader_never_calls_the_api(ctx: testing.Context, kube: FakeKube):
    running = running_container(default_env())
    for event in (
        ctx.on.config_changed(),
        ctx.on.upgrade_charm(),
        ctx.on.update_status(),
        ctx.on.pebble_ready(running),
        ctx.on.remove(),
    ):
        out = ctx.run(event, state(containers={running}))

        assert out.unit_status == testing.ActiveStatus(
            "standby: the leader manages the CRD and RBAC"
        )
    assert kube.requests == []


def test_update_status_makes_no_calls_when_all_is_applied(ctx: testing.Context, kube: FakeKube):
    installed = ctx.run(ctx.on.config_changed(), leader_state())
    kube.clear_requests()

    out = ctx.run(ctx.on.update_status(), installed)

    assert kube.requests == []
    assert out.unit_status == testing.ActiveStatus()


# --- Refusals and failures --------------------------------------------------------------------


def test_a_cluster_too_old_blocks_and_nothing_is_applied(ctx: testing.Context, kube: FakeKube):
    kube.kubernetes_version = "1.28.9"

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status == testing.BlockedStatus(
        "Kubernetes v1.28.9-fakekube is too old: the operator needs 1.29 or later (its metrics "
        "exporter runs as a native sidecar)"
    )
    assert writes(kube) == []
    assert kube.get(*CRD) is None and kube.get(*ROLE) is None


def test_forbidden_blocks_with_the_trust_command(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(verb="get", resource="customresourcedefinitions", status=403)

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status == testing.BlockedStatus(TRUST)
    assert kube.get(*CRD) is None and kube.get(*ROLE) is None


def test_forbidden_apply_blocks_with_the_trust_command(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(verb="patch", resource="clusterroles", status=403)

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status == testing.BlockedStatus(TRUST)


def test_blocked_status_survives_later_hooks(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(verb="get", resource="customresourcedefinitions", status=403)
    blocked = ctx.run(ctx.on.config_changed(), leader_state())

    out = ctx.run(ctx.on.pebble_ready(blocked.get_container("reconciler")), blocked)

    assert out.unit_status == testing.BlockedStatus(TRUST)


def test_update_status_retries_after_trust_is_granted(ctx: testing.Context, kube: FakeKube):
    fault = kube.faults.add(verb="get", resource="customresourcedefinitions", status=403)
    blocked = ctx.run(ctx.on.config_changed(), leader_state())
    kube.faults.remove(fault)  # juju trust locust-operator --scope=cluster

    out = ctx.run(ctx.on.update_status(), blocked)

    assert kube.get(*CRD) and kube.get(*ROLE) and kube.get(*BINDING)
    assert out.unit_status == testing.ActiveStatus()


def test_foreign_crd_blocks_and_is_left_untouched(ctx: testing.Context, kube: FakeKube):
    kube.apply_yaml(FOREIGN_CRD, field_manager="other-operator")
    foreign = kube.wait_for(lambda: established(kube.get(*CRD)), message="CRD established")
    kube.clear_requests()

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(
        "CRD locusttests.locust.io belongs to another Locust operator: remove it"
    )
    assert "app.kubernetes.io/part-of=locust-operator" in out.unit_status.message
    assert kube.get(*CRD) == foreign
    assert writes(kube) == []


def test_foreign_crd_is_rechecked_on_update_status(ctx: testing.Context, kube: FakeKube):
    kube.apply_yaml(FOREIGN_CRD, field_manager="other-operator")
    blocked = ctx.run(ctx.on.config_changed(), leader_state())
    kube.delete(*CRD)  # the user removed the other operator's CRD

    out = ctx.run(ctx.on.update_status(), blocked)

    assert kube.get(*CRD)["metadata"]["labels"] == {"app.kubernetes.io/part-of": "locust-operator"}
    assert out.unit_status == testing.ActiveStatus()


def test_server_error_waits_with_the_code(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(
        verb="patch",
        resource="customresourcedefinitions",
        status=503,
        message="etcd is unavailable",
    )

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status == testing.WaitingStatus(
        "kubernetes API error 503 while applying the LocustTest CRD: etcd is unavailable"
    )


def test_other_client_error_blocks_with_the_code(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(
        verb="patch", resource="clusterrolebindings", status=422, message="roleRef is immutable"
    )

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status == testing.BlockedStatus(
        "kubernetes API error 422 while applying the reconciler's RBAC: roleRef is immutable"
    )


def test_unreachable_api_waits(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(verb="get", resource="customresourcedefinitions", drop=True)

    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status.name == "waiting"
    assert out.unit_status.message.startswith("cannot reach the kubernetes API")


def test_no_kubernetes_credentials_blocks(ctx: testing.Context):
    # Neither in a pod nor given a kubeconfig (the autouse fixture's default).
    out = ctx.run(ctx.on.config_changed(), leader_state())

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith("no Kubernetes credentials")


def test_stale_problem_is_not_shown_by_a_non_leader(ctx: testing.Context, kube: FakeKube):
    kube.faults.add(verb="get", resource="customresourcedefinitions", status=403)
    blocked = ctx.run(ctx.on.config_changed(), leader_state())

    out = ctx.run(ctx.on.update_status(), dataclasses.replace(blocked, leader=False))

    assert out.unit_status == testing.ActiveStatus("standby: the leader manages the CRD and RBAC")


# --- Remove -------------------------------------------------------------------------------------


def test_removing_the_last_unit_deletes_the_rbac_but_never_the_crd(
    ctx: testing.Context, kube: FakeKube
):
    installed = ctx.run(ctx.on.config_changed(), leader_state())
    kube.clear_requests()

    ctx.run(ctx.on.remove(), dataclasses.replace(installed, planned_units=0))

    assert kube.get(*ROLE) is None and kube.get(*BINDING) is None
    assert kube.get(*CRD) is not None
    assert writes(kube) == [
        ("patch", "customresourcedefinitions", "locusttests.locust.io"),  # released
        ("list", "clusterrolebindings", ""),
        ("delete", "clusterrolebindings", f"{APP}-{MODEL}"),
        ("list", "clusterroles", ""),
        ("delete", "clusterroles", f"{APP}-{MODEL}"),
        ("list", "rolebindings", ""),
        ("list", "roles", ""),
    ]
    annotations = kube.get(*CRD)["metadata"].get("annotations") or {}
    assert "locust.io/owner-application" not in annotations


def test_scale_down_deletes_nothing(ctx: testing.Context, kube: FakeKube):
    installed = ctx.run(ctx.on.config_changed(), leader_state())
    kube.clear_requests()

    ctx.run(ctx.on.remove(), dataclasses.replace(installed, planned_units=2))

    assert kube.requests == []
    assert kube.get(*CRD) and kube.get(*ROLE) and kube.get(*BINDING)


def test_remove_tolerates_rbac_already_gone(ctx: testing.Context, kube: FakeKube):
    out = ctx.run(ctx.on.remove(), leader_state(planned_units=0))

    assert [r.status_code for r in kube.requests] == [404, 200, 200, 200, 200]  # no CRD, no RBAC
    assert out.unit_status.name != "error"


@pytest.mark.parametrize("status", [403, 500])
def test_remove_failure_is_logged_not_raised(ctx: testing.Context, kube: FakeKube, status: int):
    installed = ctx.run(ctx.on.config_changed(), leader_state())
    kube.faults.add(verb="delete", status=status)

    ctx.run(ctx.on.remove(), dataclasses.replace(installed, planned_units=0))

    assert any(
        "Could not release the CRD or delete the RBAC" in line.message for line in ctx.juju_log
    )
