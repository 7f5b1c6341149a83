"""The `logging` relation (interface `loki_push_api`, requirer side): the reconciler's logs.

Each Loki unit gives its push URL in its unit databag (`endpoint`, a JSON object with `url`); the
leader gives Loki this application's topology (`metadata`) and its LogQL alert rules
(`alert_rules`: none) in the application databag. Pebble forwards the reconciler's output to each
Loki through a log target named after the Loki unit and labelled with the Juju topology (Juju 3.4
and later run a Pebble that forwards logs). Pebble cannot delete a log target, so one whose Loki
has gone is replaced by a target that forwards nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import ops
from cosl import JujuTopology

import workload

logger = logging.getLogger(__name__)

RELATION = "logging"
LAYER = "reconciler-logging"
# Log targets are named after the Loki unit they send to, under this prefix.
TARGET_PREFIX = f"{RELATION}-"
# A disabled target's services: `-all` takes every service out of it.
NO_SERVICES = ["-all"]
MIN_JUJU = "3.4"


def endpoints(relations: list[ops.Relation]) -> dict[str, str]:
    """Log target name -> push URL, one per Loki unit that gave a valid URL (each URL once)."""
    found: dict[str, str] = {}
    for relation in relations:
        for unit in sorted(relation.units, key=lambda u: u.name):
            raw = relation.data[unit].get("endpoint")
            if not raw:
                continue
            try:
                url = json.loads(raw)["url"]
            except (ValueError, TypeError, KeyError):
                logger.warning(
                    "Ignoring %s's Loki endpoint, not a JSON object with a url", unit.name
                )
                continue
            if isinstance(url, str) and url and url not in found.values():
                found[f"{TARGET_PREFIX}{unit.name}"] = url
    return found


def labels(topology: JujuTopology) -> dict[str, str]:
    """The Juju topology as Loki labels (juju_model, juju_model_uuid, juju_application,
    juju_unit, juju_charm), so logs are found the way COS finds every charm's."""
    topology_dict = topology.as_dict(remapped_keys={"charm_name": "charm"})
    return {f"juju_{key}": value for key, value in topology_dict.items() if value}


def layer(
    active: Mapping[str, str],
    planned: Mapping[str, ops.pebble.LogTarget],
    target_labels: Mapping[str, str],
) -> ops.pebble.LayerDict | None:
    """The log targets that make the plan forward to exactly the `active` Lokis, or None when the
    plan already does (`planned`: the plan's current log targets)."""
    targets: dict[str, ops.pebble.LogTargetDict] = {
        name: {
            "override": "replace",
            "type": "loki",
            "location": url,
            "services": [workload.SERVICE],
            "labels": dict(target_labels),
        }
        for name, url in active.items()
    }
    for name, target in planned.items():
        if (
            name.startswith(TARGET_PREFIX)
            and name not in active
            and target.services != NO_SERVICES
        ):
            targets[name] = {
                "override": "replace",
                "type": "loki",
                "location": target.location,
                "services": list(NO_SERVICES),
            }
    if all(name in planned and _same(planned[name], target) for name, target in targets.items()):
        return None
    return {"summary": "Forwards the reconciler's logs to Loki", "log-targets": targets}


def _same(planned: ops.pebble.LogTarget, wanted: ops.pebble.LogTargetDict) -> bool:
    """Whether the plan's target already is `wanted` (however the plan shows `override`)."""
    return (planned.type, planned.location, planned.services, planned.labels) == (
        wanted.get("type"),
        wanted.get("location"),
        wanted.get("services"),
        wanted.get("labels", {}),
    )


class LogForwarding(ops.Object):
    """Keeps the reconciler's log targets in step with the related Lokis."""

    def __init__(self, charm: ops.CharmBase, container: ops.Container):
        super().__init__(charm, RELATION)
        self._charm = charm
        self._container = container
        framework = charm.framework
        events = charm.on[RELATION]
        for event in (events.relation_joined, events.relation_changed, events.relation_departed):
            framework.observe(event, self._on_relation_event)
        framework.observe(events.relation_broken, self._on_relation_broken)
        framework.observe(charm.on.leader_elected, self._on_refresh)
        framework.observe(charm.on.upgrade_charm, self._on_refresh)

    def _on_relation_event(self, event: ops.RelationEvent) -> None:
        self._publish(event.relation)
        self.update()

    def _on_relation_broken(self, event: ops.RelationBrokenEvent) -> None:
        # The broken relation is no longer in model.relations: its targets get disabled.
        self.update()

    def _on_refresh(self, event: ops.EventBase) -> None:
        for relation in self.model.relations[RELATION]:
            self._publish(relation)

    def _publish(self, relation: ops.Relation) -> None:
        if not self._charm.unit.is_leader():
            return
        topology = JujuTopology.from_charm(self._charm)
        relation.data[self._charm.app].update(
            {"metadata": json.dumps(topology.as_dict()), "alert_rules": json.dumps({})}
        )

    def update(self) -> None:
        """Point the reconciler's log targets at the related Lokis, once Pebble runs it (a target
        naming a service the plan lacks is refused); the charm calls this after every replan."""
        active = endpoints(self.model.relations[RELATION])
        if active and self.model.juju_version < MIN_JUJU:
            logger.warning(
                "Juju %s cannot forward logs to Loki: Juju %s or later can",
                self.model.juju_version,
                MIN_JUJU,
            )
            return
        try:
            if not self._container.can_connect():
                return
            plan = self._container.get_plan()
            if workload.SERVICE not in plan.services:
                return
            topology = JujuTopology.from_charm(self._charm)
            new_layer = layer(active, plan.log_targets, labels(topology))
            if new_layer is None:
                return
            # No replan: Pebble applies log targets as soon as the plan changes.
            self._container.add_layer(LAYER, new_layer, combine=True)
        except (ops.pebble.ConnectionError, ops.pebble.APIError) as error:
            logger.info("Could not update the reconciler's log targets: %s", error)
            return
        logger.info("Reconciler logs now go to: %s", ", ".join(active.values()) or "nowhere")
