"""The RBAC the charm renders: names, labels, subject and least-privilege rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import cluster_objects
import reports
from tests.unit.charm.conftest import APP, EXPECTED_RULES, LABELS, MODEL


def rules_of(role) -> dict[tuple[str, str], set[str]]:
    rules: dict[tuple[str, str], set[str]] = {}
    for rule in role.rules:
        for group in rule.apiGroups:
            for resource in rule.resources:
                rules.setdefault((group, resource), set()).update(rule.verbs)
    return rules


def test_role_and_binding_are_named_per_application_and_model():
    role, binding = cluster_objects.rbac_objects(APP, MODEL)

    assert (role.kind, role.metadata.name) == ("ClusterRole", f"{APP}-{MODEL}")
    assert (binding.kind, binding.metadata.name) == ("ClusterRoleBinding", f"{APP}-{MODEL}")
    assert role.metadata.labels == LABELS
    assert binding.metadata.labels == LABELS


def test_binding_binds_the_applications_service_account():
    _, binding = cluster_objects.rbac_objects(APP, MODEL)

    assert binding.roleRef.to_dict() == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{APP}-{MODEL}",
    }
    assert [s.to_dict() for s in binding.subjects] == [
        {"kind": "ServiceAccount", "name": APP, "namespace": MODEL}
    ]


def test_role_grants_exactly_what_the_reconciler_needs():
    role, _ = cluster_objects.rbac_objects(APP, MODEL)

    assert rules_of(role) == EXPECTED_RULES


def test_role_deletes_only_a_tests_own_children_and_grants_no_wildcards():
    """Deleting is for rolling back the children of a test the API server refused, and for
    ending the master of a test stopped early."""
    role, _ = cluster_objects.rbac_objects(APP, MODEL)

    deletable = {resource for resource, verbs in rules_of(role).items() if "delete" in verbs}
    assert deletable == {("", "services"), ("batch", "jobs"), ("", "pods")}
    verbs = set().union(*rules_of(role).values())
    assert not verbs & {"deletecollection", "*", "escalate", "bind", "impersonate"}
    assert all("*" not in (rule.resources + rule.apiGroups) for rule in role.rules)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (3599, "59m"), (7200, "2h"), (3 * 86400 + 5, "3d")],
)
def test_age_reads_like_kubectl(seconds: int, expected: str):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    assert reports.age(now - timedelta(seconds=seconds), now) == expected
