"""logging (loki_push_api): the reconciler's logs go to every related Loki through Pebble."""

from __future__ import annotations

import dataclasses
import json

import pytest
from ops import testing

import log_forwarding
import workload
from charm import LocustOperatorCharm
from tests.unit.charm import cos_schemas
from tests.unit.charm.conftest import APP, MODEL, container, default_env, running_container, state

URLS = {
    0: "http://loki-0.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push",
    1: "http://loki-1.loki-endpoints.cos.svc.cluster.local:3100/loki/api/v1/push",
}


def loki(urls: dict[int, str] = URLS, **kwargs) -> testing.Relation:
    kwargs.setdefault("remote_app_name", "loki")
    return testing.Relation(
        log_forwarding.RELATION,
        interface="loki_push_api",
        remote_units_data={n: {"endpoint": json.dumps({"url": url})} for n, url in urls.items()},
        **kwargs,
    )


def targets(out: testing.State) -> dict[str, dict]:
    plan = out.get_container(workload.CONTAINER).plan
    return {name: target.to_dict() for name, target in plan.log_targets.items()}


def topology_labels(out: testing.State) -> dict[str, str]:
    return {
        "juju_model": MODEL,
        "juju_model_uuid": out.model.uuid,
        "juju_application": APP,
        "juju_unit": f"{APP}/0",
        "juju_charm": "locust-operator",
    }


def forwarding(url: str, out: testing.State) -> dict:
    return {
        "override": "replace",
        "type": "loki",
        "location": url,
        "services": [workload.SERVICE],
        "labels": topology_labels(out),
    }


def disabled(url: str) -> dict:
    return {"override": "replace", "type": "loki", "location": url, "services": ["-all"]}


def changed(ctx, relation: testing.Relation, *, leader: bool = True) -> testing.State:
    return ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        state(leader=leader, relations={relation}, containers={running_container(default_env())}),
    )


def test_each_loki_unit_gets_a_log_target_of_the_reconciler_labelled_with_the_topology(ctx):
    out = changed(ctx, loki())

    assert targets(out) == {
        "logging-loki/0": forwarding(URLS[0], out),
        "logging-loki/1": forwarding(URLS[1], out),
    }
    # The service was left running as it was: log targets need no replan.
    assert out.get_container(workload.CONTAINER).service_statuses[workload.SERVICE].value == (
        "active"
    )


def test_the_leader_gives_loki_the_topology_and_no_alert_rules(ctx):
    relation = loki()
    out = changed(ctx, relation)

    data = cos_schemas.validate(
        cos_schemas.LOKI_PUSH_API_APP, out.get_relation(relation.id).local_app_data
    )
    assert data["alert_rules"] == {}
    assert data["metadata"] == {
        "model": MODEL,
        "model_uuid": out.model.uuid,
        "application": APP,
        "unit": f"{APP}/0",
        "charm_name": "locust-operator",
    }


def test_a_unit_that_is_not_leader_forwards_its_logs_but_writes_no_app_data(ctx):
    relation = loki()
    out = changed(ctx, relation, leader=False)

    assert out.get_relation(relation.id).local_app_data == {}
    assert set(targets(out)) == {"logging-loki/0", "logging-loki/1"}


def test_when_the_relation_goes_its_targets_forward_nothing(ctx):
    relation = loki()
    before = changed(ctx, relation)

    out = ctx.run(ctx.on.relation_broken(before.get_relation(relation.id)), before)

    assert targets(out) == {
        "logging-loki/0": disabled(URLS[0]),
        "logging-loki/1": disabled(URLS[1]),
    }
    # And they stay so once Juju has removed the relation.
    later = ctx.run(ctx.on.update_status(), dataclasses.replace(out, relations=set()))
    assert targets(later) == targets(out)


def test_a_departed_loki_unit_loses_its_target_and_the_other_keeps_its(ctx):
    relation = loki()
    before = changed(ctx, relation)
    left = loki({0: URLS[0]}, id=relation.id)
    still = before.get_relation(relation.id)
    assert left.id == still.id

    out = ctx.run(
        ctx.on.relation_departed(left, remote_unit=0, departing_unit=1),
        dataclasses.replace(before, relations={left}),
    )

    assert targets(out) == {
        "logging-loki/0": forwarding(URLS[0], out),
        "logging-loki/1": disabled(URLS[1]),
    }


def test_lokis_sharing_one_url_get_one_target(ctx):
    out = changed(ctx, loki({0: URLS[0], 1: URLS[0]}))

    assert list(targets(out)) == ["logging-loki/0"]


def test_an_endpoint_that_is_not_json_is_ignored(ctx, caplog: pytest.LogCaptureFixture):
    relation = testing.Relation(
        log_forwarding.RELATION,
        interface="loki_push_api",
        remote_app_name="loki",
        remote_units_data={
            0: {"endpoint": "http://loki:3100"},
            1: {"endpoint": json.dumps({"url": URLS[1]})},
        },
    )
    out = changed(ctx, relation)

    assert list(targets(out)) == ["logging-loki/1"]
    assert "Ignoring loki/0's Loki endpoint" in caplog.text


def test_targets_wait_for_the_reconciler_and_come_with_its_first_layer(ctx):
    relation = loki()
    waiting = ctx.run(
        ctx.on.relation_changed(relation, remote_unit=0),
        state(leader=True, relations={relation}, containers={container(can_connect=False)}),
    )
    assert targets(waiting) == {}

    up = container()
    out = ctx.run(ctx.on.pebble_ready(up), dataclasses.replace(waiting, containers={up}))

    assert set(targets(out)) == {"logging-loki/0", "logging-loki/1"}
    assert workload.SERVICE in out.get_container(workload.CONTAINER).plan.services


def test_without_a_logging_relation_there_is_no_log_target(ctx):
    out = ctx.run(ctx.on.update_status(), state(containers={running_container(default_env())}))

    assert targets(out) == {}


def test_juju_older_than_3_4_forwards_nothing(caplog: pytest.LogCaptureFixture):
    ctx = testing.Context(LocustOperatorCharm, app_name=APP, juju_version="3.3.6")
    out = changed(ctx, loki())

    assert targets(out) == {}
    assert "Juju 3.3.6 cannot forward logs to Loki" in caplog.text
