"""metrics-endpoint (prometheus_scrape): what Prometheus reads in the databags."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ops import testing

import metrics_endpoint
from tests.unit.charm import cos_schemas
from tests.unit.charm.conftest import APP, MODEL, default_env, running_container, state

FQDN = f"{APP}-0.{APP}-endpoints.{MODEL}.svc.cluster.local"
RULES_FILE = Path(metrics_endpoint.RULES_DIR) / "locust_operator.rule"
ALERTS = {
    "LocustOperatorDown",
    "LocustOperatorNotReconciling",
    "LocustOperatorReconcileErrors",
    "LocustTestFailed",
    "LocustTestVerdictFailed",
    "LocustTestStuckPending",
}


@pytest.fixture(autouse=True)
def fqdn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pod's FQDN, as Kubernetes gives it to a Juju unit."""
    monkeypatch.setattr(metrics_endpoint.socket, "getfqdn", lambda: FQDN)


def prometheus(**kwargs) -> testing.Relation:
    kwargs.setdefault("remote_app_name", "prometheus")
    return testing.Relation(metrics_endpoint.RELATION, interface="prometheus_scrape", **kwargs)


def joined(ctx: testing.Context, relation: testing.Relation, *, leader: bool) -> testing.State:
    return ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        state(leader=leader, relations={relation}, containers={running_container(default_env())}),
    )


def test_leader_publishes_jobs_rules_and_topology_as_the_specification_says(ctx):
    relation = prometheus()
    after = joined(ctx, relation, leader=True)
    out = after.get_relation(relation.id)

    data = cos_schemas.validate(cos_schemas.PROMETHEUS_SCRAPE_APP, out.local_app_data)
    assert data["scrape_jobs"] == [
        {
            "job_name": "reconciler",
            "metrics_path": "/metrics",
            "static_configs": [{"targets": ["*:8080"]}],
        }
    ]
    metadata = data["scrape_metadata"]
    assert {k: metadata[k] for k in ("model", "application", "unit", "charm_name")} == {
        "model": MODEL,
        "application": APP,
        "unit": f"{APP}/0",
        "charm_name": "locust-operator",
    }
    assert metadata["model_uuid"] == after.model.uuid
    cos_schemas.validate_unit(cos_schemas.PROMETHEUS_SCRAPE_UNIT, out.local_unit_data)
    assert out.local_unit_data["prometheus_scrape_unit_address"] == FQDN
    assert out.local_unit_data["prometheus_scrape_unit_name"] == f"{APP}/0"


def test_every_rule_of_the_files_goes_out_labelled_with_the_topology(ctx):
    relation = prometheus()
    after = joined(ctx, relation, leader=True)
    data = cos_schemas.validate(
        cos_schemas.PROMETHEUS_SCRAPE_APP, after.get_relation(relation.id).local_app_data
    )
    rules, uuid = data["alert_rules"], after.model.uuid

    written = {
        rule["alert"]: rule
        for group in yaml.safe_load(RULES_FILE.read_text())["groups"]
        for rule in group["rules"]
    }
    sent = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    assert set(sent) == set(written) == ALERTS
    topology = {
        "juju_model": MODEL,
        "juju_model_uuid": uuid,
        "juju_application": APP,
        "juju_charm": "locust-operator",
    }
    for name, rule in sent.items():
        # The topology as labels; the expression as written: Prometheus adds the matchers.
        assert rule["labels"] == {**written[name]["labels"], **topology}
        assert rule["expr"] == written[name]["expr"]
        assert rule["annotations"] == written[name]["annotations"]
        assert rule["for"] == written[name]["for"]
    # Group names carry the topology too (as a Prometheus name), so two applications' groups
    # never collide.
    identifier = f"{MODEL}_{uuid[:8]}_{APP}".replace("-", "_")
    assert sorted(group["name"] for group in rules["groups"]) == [
        f"{identifier}_locust_operator_rules",
        f"{identifier}_locust_tests_rules",
    ]


def test_a_unit_that_is_not_leader_publishes_its_address_only(ctx):
    relation = prometheus()
    out = joined(ctx, relation, leader=False).get_relation(relation.id)

    assert out.local_app_data == {}
    cos_schemas.validate_unit(cos_schemas.PROMETHEUS_SCRAPE_UNIT, out.local_unit_data)
    assert out.local_unit_data["prometheus_scrape_unit_name"] == f"{APP}/0"


def test_a_new_leader_publishes_on_every_existing_relation(ctx):
    first, second = prometheus(), prometheus(remote_app_name="prometheus-2")
    out = ctx.run(ctx.on.leader_elected(), state(leader=True, relations={first, second}))

    for relation in (first, second):
        cos_schemas.validate(
            cos_schemas.PROMETHEUS_SCRAPE_APP, out.get_relation(relation.id).local_app_data
        )


def test_an_upgrade_replaces_stale_rules(ctx):
    stale = prometheus(
        local_app_data={
            "scrape_metadata": "{}",
            "scrape_jobs": "[]",
            "alert_rules": '{"groups": []}',
        }
    )
    out = ctx.run(ctx.on.upgrade_charm(), state(leader=True, relations={stale}))

    data = cos_schemas.validate(
        cos_schemas.PROMETHEUS_SCRAPE_APP, out.get_relation(stale.id).local_app_data
    )
    assert {r["alert"] for g in data["alert_rules"]["groups"] for r in g["rules"]} == ALERTS


def test_a_broken_relation_is_left_alone(ctx):
    relation = prometheus(
        local_app_data={"scrape_jobs": "[]"},
        local_unit_data={"prometheus_scrape_unit_name": f"{APP}/0"},
    )
    out = ctx.run(ctx.on.relation_broken(relation), state(leader=True, relations={relation}))

    broken = out.get_relation(relation.id)
    assert broken.local_app_data == {"scrape_jobs": "[]"}
    assert broken.local_unit_data["prometheus_scrape_unit_name"] == f"{APP}/0"
