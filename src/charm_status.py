"""What `juju status` says of a unit and of the application, from what the charm knows.

A unit's status names everything that keeps it from working, the most serious first (ops keeps
the highest priority: blocked, then maintenance, then waiting). The application's status, set by
the leader, says whether the application as a whole works: the options and the cluster objects
are the application's, so their problems are shown there; one unit's reconciler is shown there
only when it is the only unit, since otherwise another unit's reconciler can hold the Lease and
do the work. Otherwise the application is active, and a unit in trouble shows on its own line.
"""

from __future__ import annotations

from dataclasses import dataclass

import ops

import workload
from workload import State


@dataclass(frozen=True, kw_only=True)
class Facts:
    """What the statuses are computed from, read once per hook."""

    leader: bool
    config_problem: str = ""  # the invalid options' status message
    cluster_problem: str = ""  # the leader's last failure to apply the CRD and RBAC
    cluster_problem_blocking: bool = True
    stop_reason: str = ""  # why every reconciler of the application stays stopped
    waiting_for_certificate: bool = False  # a non-leader the leader gave no certificate yet
    workload: State = State.READY
    check_failures: int = 0  # of the check that fails, if the workload is not alive or ready
    planned_units: int = 1
    # The leader's note on tests related applications asked for and it refused (or "").
    load_test_note: str = ""


def workload_status(state: State, failures: int = 0) -> ops.StatusBase | None:
    """The reconciler's own status, None when it is ready."""
    if state is State.NOT_CONNECTED:
        return ops.WaitingStatus("waiting for the reconciler container")
    if state is State.NOT_RUNNING:
        return ops.WaitingStatus("waiting for the reconciler service to start")
    if state is State.NOT_ALIVE:
        # Wedged: Pebble restarts it on its own; the status says so until the check recovers.
        return ops.MaintenanceStatus(
            f"reconciler not answering /healthz ({workload.ALIVE_CHECK} failed {failures} "
            "times): Pebble is restarting it"
        )
    if state is State.NOT_READY:
        detail = f" ({workload.READY_CHECK} failed {failures} times)" if failures else ""
        return ops.WaitingStatus(f"waiting for the reconciler to be ready{detail}")
    return None


def _app_wide(facts: Facts) -> list[ops.StatusBase]:
    statuses: list[ops.StatusBase] = []
    if facts.config_problem:
        statuses.append(ops.BlockedStatus(facts.config_problem))
    if facts.stop_reason:
        statuses.append(ops.BlockedStatus(facts.stop_reason))
    if facts.leader and facts.cluster_problem:
        kind = ops.BlockedStatus if facts.cluster_problem_blocking else ops.WaitingStatus
        statuses.append(kind(facts.cluster_problem))
    return statuses


def unit_statuses(facts: Facts) -> list[ops.StatusBase]:
    statuses = _app_wide(facts)
    if facts.waiting_for_certificate:
        statuses.append(ops.WaitingStatus("waiting for the leader's webhook certificate"))
    own = workload_status(facts.workload, facts.check_failures)
    if own is not None:
        statuses.append(own)
    if facts.leader:
        statuses.append(ops.ActiveStatus(facts.load_test_note))
    else:
        # Which unit's reconciler works is up to the Lease; this one does not manage the cluster
        # objects, and takes over the Lease if the working one stops.
        statuses.append(ops.ActiveStatus("standby: the leader manages the CRD and RBAC"))
    return statuses


def app_statuses(facts: Facts) -> list[ops.StatusBase]:
    statuses = _app_wide(facts)
    own = workload_status(facts.workload, facts.check_failures)
    if own is not None and facts.planned_units <= 1:
        statuses.append(own)
    statuses.append(ops.ActiveStatus(facts.load_test_note))
    return statuses
