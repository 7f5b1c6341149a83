"""The `metrics-endpoint` relation (interface `prometheus_scrape`, provider side).

What goes into the databags is the interface's specification: the leader writes, in the
application databag, `scrape_metadata` (the Juju topology), `scrape_jobs` (one job for the
reconciler's metrics port on every unit: the `*` host stands for each unit's address) and
`alert_rules` (the rule groups of `prometheus_alert_rules/`, each rule labelled with the
topology); every unit writes its own address and name in its unit databag. Prometheus injects the
topology into the rules' expressions itself, so the expressions go out as written.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import ops
from cosl import JujuTopology
from cosl.rules import Rules

from charm_config import METRICS_PORT

logger = logging.getLogger(__name__)

RELATION = "metrics-endpoint"
RULES_DIR = Path(__file__).parent / "prometheus_alert_rules"
METRICS_PATH = "/metrics"
# A fixed name, as the specification asks: Prometheus prefixes it with the topology.
JOB_NAME = "reconciler"


def scrape_jobs(port: int = METRICS_PORT) -> list[dict[str, Any]]:
    """The one scrape job: the reconciler's /metrics on every unit."""
    return [
        {
            "job_name": JOB_NAME,
            "metrics_path": METRICS_PATH,
            "static_configs": [{"targets": [f"*:{port}"]}],
        }
    ]


def alert_rules(topology: JujuTopology, rules_dir: Path = RULES_DIR) -> dict[str, Any]:
    """The rule groups of `rules_dir`, their names and labels carrying the topology."""
    rules = Rules(query_type="promql", topology=topology)
    rules.add_path(rules_dir)
    return rules.as_dict()


def app_data(topology: JujuTopology) -> dict[str, str]:
    """The application databag (leader only)."""
    return {
        "scrape_metadata": json.dumps(topology.as_dict()),
        "scrape_jobs": json.dumps(scrape_jobs()),
        "alert_rules": json.dumps(alert_rules(topology), sort_keys=True),
    }


def unit_data(unit_name: str, address: str) -> dict[str, str]:
    """A unit's databag: where Prometheus reaches this unit, and under which name."""
    return {"prometheus_scrape_unit_address": address, "prometheus_scrape_unit_name": unit_name}


class MetricsEndpoint(ops.Object):
    """Publishes the scrape jobs, the alert rules and this unit's address to Prometheus.

    The content never depends on other hooks' state: it is written when a Prometheus joins, and
    again on every relation when this unit becomes leader or the charm is upgraded (new rules).
    """

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
        # In a Kubernetes pod the FQDN is the unit's stable name under the application's
        # headless Service; the pod's IP would change with every restart.
        unit = self._charm.unit
        relation.data[unit].update(unit_data(unit.name, socket.getfqdn()))
        if unit.is_leader():
            relation.data[self._charm.app].update(app_data(JujuTopology.from_charm(self._charm)))
            logger.info("Published the scrape job and alert rules on %s", relation.name)
