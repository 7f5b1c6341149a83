"""The peer relation: what the leader tells every unit of the application.

Today one thing: a reason every unit's reconciler must stay stopped (another deployment owns
the cluster's LocustTest CRD), since only the leader talks to the cluster objects.
"""

from __future__ import annotations

import ops

RELATION = "peers"
STOPPED_BECAUSE = "reconciler-stopped-because"


def stop_reason(model: ops.Model) -> str:
    """Why the leader wants every reconciler stopped, or "" (also before the relation exists)."""
    relation = model.get_relation(RELATION)
    return relation.data[model.app].get(STOPPED_BECAUSE, "") if relation else ""


def set_stop_reason(model: ops.Model, reason: str) -> None:
    """Leader only: tell the units (an empty reason lets them run again)."""
    relation = model.get_relation(RELATION)
    if relation is not None and relation.data[model.app].get(STOPPED_BECAUSE, "") != reason:
        relation.data[model.app][STOPPED_BECAUSE] = reason
