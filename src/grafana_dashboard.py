"""The `grafana-dashboard` relation (interface `grafana_dashboard`, provider side).

The leader writes one key in the application databag, `dashboards`: a JSON object with the
dashboards under `templates`, keyed `file:<file stem>`, each with the charm's name, the dashboard
LZMA-compressed and base64-encoded under `content`, the unit's Juju topology, and
`inject_dropdowns` (Grafana adds the topology variables and filters to every query); plus a fresh
`uuid`, so that Grafana hears of every write. As the COS charms do, each dashboard's uid is derived
from the charm's name and the file's path (unique across charms, stable across revisions), and it
is tagged with the charm's name.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import ops
from cosl import DashboardPath40UID, JujuTopology, LZMABase64

logger = logging.getLogger(__name__)

RELATION = "grafana-dashboard"
DASHBOARDS_DIR = Path(__file__).parent / "grafana_dashboards"


def load(charm_name: str, directory: Path = DASHBOARDS_DIR) -> dict[str, dict[str, Any]]:
    """Every `*.json` dashboard of `directory`, with the uid and tag the relation gives it."""
    dashboards = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = json.loads(path.read_text())
        dashboard["uid"] = DashboardPath40UID.generate(
            charm_name, f"src/{directory.name}/{path.name}"
        )
        tag = f"charm: {charm_name}"
        if tag not in dashboard.setdefault("tags", []):
            dashboard["tags"].append(tag)
        dashboards[path.stem] = dashboard
    return dashboards


def app_data(topology: JujuTopology, charm_name: str) -> dict[str, str]:
    """The application databag (leader only)."""
    juju_topology = topology.as_dict(excluded_keys=["charm_name"])
    templates = {
        f"file:{stem}": {
            "charm": charm_name,
            "content": LZMABase64.compress(json.dumps(dashboard)),
            "juju_topology": dict(juju_topology),
            "inject_dropdowns": True,
        }
        for stem, dashboard in load(charm_name).items()
    }
    return {"dashboards": json.dumps({"templates": templates, "uuid": str(uuid.uuid4())})}


class GrafanaDashboard(ops.Object):
    """Gives Grafana the charm's dashboards: when Grafana joins, and on every relation again
    when this unit becomes leader or the charm is upgraded (new dashboards)."""

    def __init__(self, charm: ops.CharmBase):
        super().__init__(charm, RELATION)
        self._charm = charm
        framework = charm.framework
        framework.observe(charm.on[RELATION].relation_joined, self._on_joined)
        framework.observe(charm.on.leader_elected, self._on_refresh)
        framework.observe(charm.on.upgrade_charm, self._on_refresh)

    def _on_joined(self, event: ops.RelationJoinedEvent) -> None:
        self._publish(event.relation)

    def _on_refresh(self, event: ops.EventBase) -> None:
        for relation in self.model.relations[RELATION]:
            self._publish(relation)

    def _publish(self, relation: ops.Relation) -> None:
        if not self._charm.unit.is_leader():
            return
        topology = JujuTopology.from_charm(self._charm)
        relation.data[self._charm.app].update(app_data(topology, self._charm.meta.name))
        logger.info("Published the Grafana dashboards on %s", relation.name)
