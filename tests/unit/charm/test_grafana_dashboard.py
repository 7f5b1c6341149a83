"""grafana-dashboard (grafana_dashboard): what Grafana reads in the databag."""

from __future__ import annotations

import json
import uuid

from cosl import DashboardPath40UID, LZMABase64
from ops import testing

import grafana_dashboard
from tests import grafana
from tests.unit.charm import cos_schemas
from tests.unit.charm.conftest import APP, MODEL, state


def grafana_relation(**kwargs) -> testing.Relation:
    kwargs.setdefault("remote_app_name", "grafana")
    return testing.Relation(grafana_dashboard.RELATION, interface="grafana_dashboard", **kwargs)


def published(out: testing.State, relation: testing.Relation) -> dict:
    data = out.get_relation(relation.id).local_app_data
    return cos_schemas.validate(cos_schemas.GRAFANA_DASHBOARD_APP, data)["dashboards"]


def test_leader_publishes_the_dashboard_as_the_specification_says(ctx):
    relation = grafana_relation()
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(leader=True, relations={relation})
    )

    dashboards = published(out, relation)
    uuid.UUID(dashboards["uuid"])
    (key,) = dashboards["templates"]
    assert key == "file:locust-operator"
    template = dashboards["templates"][key]
    assert template["charm"] == "locust-operator"
    assert template["inject_dropdowns"] is True
    assert template["juju_topology"] == {
        "model": MODEL,
        "model_uuid": out.model.uuid,
        "application": APP,
        "unit": f"{APP}/0",
    }


def test_the_content_is_the_dashboard_file_with_a_uid_unique_to_the_charm(ctx):
    relation = grafana_relation()
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(leader=True, relations={relation})
    )

    content = published(out, relation)["templates"]["file:locust-operator"]["content"]
    sent = json.loads(LZMABase64.decompress(content))
    written = grafana.load()
    expected_uid = DashboardPath40UID.generate(
        "locust-operator", "src/grafana_dashboards/locust-operator.json"
    )
    assert DashboardPath40UID.is_valid(sent["uid"]) and sent["uid"] == expected_uid
    assert sent["tags"] == [*written["tags"], "charm: locust-operator"]
    assert {k: v for k, v in sent.items() if k not in ("uid", "tags")} == {
        k: v for k, v in written.items() if k not in ("uid", "tags")
    }


def test_a_unit_that_is_not_leader_writes_nothing(ctx):
    relation = grafana_relation()
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(leader=False, relations={relation})
    )

    assert out.get_relation(relation.id).local_app_data == {}


def test_a_new_leader_publishes_again_so_grafana_hears_of_it(ctx):
    relation = grafana_relation()
    first = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0), state(leader=True, relations={relation})
    )
    before = published(first, relation)
    again = ctx.run(ctx.on.leader_elected(), first)

    after = published(again, relation)
    assert after["uuid"] != before["uuid"]
    assert after["templates"] == before["templates"]


def test_a_broken_relation_is_left_alone(ctx):
    relation = grafana_relation(local_app_data={"dashboards": "{}"})
    out = ctx.run(ctx.on.relation_broken(relation), state(leader=True, relations={relation}))

    assert out.get_relation(relation.id).local_app_data == {"dashboards": "{}"}
