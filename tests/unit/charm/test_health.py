"""A failing or recovering Pebble check shows in the status at once, and the leader sets the
application's status."""

from __future__ import annotations

import ops
import pytest
from ops import testing

import workload
from tests.unit.charm.conftest import container, default_env, state

HEALTHY = testing.ActiveStatus("standby: the leader manages the CRD and RBAC")
WEDGED = testing.MaintenanceStatus(
    "reconciler not answering /healthz (reconciler-alive failed 3 times): Pebble is restarting it"
)


def with_checks(
    *,
    alive: ops.pebble.CheckStatus = ops.pebble.CheckStatus.UP,
    ready: ops.pebble.CheckStatus = ops.pebble.CheckStatus.UP,
    failures: int = 0,
) -> tuple[testing.Container, dict[str, testing.CheckInfo]]:
    """The running reconciler, its checks in the given states (`failures` for any that is down)."""
    checks = {
        name: testing.CheckInfo(
            name,
            level=level,
            status=status,
            failures=failures if status == ops.pebble.CheckStatus.DOWN else 0,
        )
        for name, level, status in (
            (workload.ALIVE_CHECK, ops.pebble.CheckLevel.ALIVE, alive),
            (workload.READY_CHECK, ops.pebble.CheckLevel.READY, ready),
        )
    }
    running = container(
        layers={workload.LAYER: ops.pebble.Layer(workload.layer(default_env()))},
        service_statuses={workload.SERVICE: ops.pebble.ServiceStatus.ACTIVE},
        check_infos=set(checks.values()),
    )
    return running, checks


def test_a_wedged_reconciler_shows_as_soon_as_its_liveness_check_fails(ctx):
    running, checks = with_checks(alive=ops.pebble.CheckStatus.DOWN, failures=3)

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.ALIVE_CHECK]),
        state(containers={running}),
    )

    assert out.unit_status == WEDGED


def test_a_recovered_check_shows_at_once(ctx):
    running, checks = with_checks()

    out = ctx.run(
        ctx.on.pebble_check_recovered(running, checks[workload.ALIVE_CHECK]),
        state(containers={running}, unit_status=WEDGED),
    )

    assert out.unit_status == HEALTHY


def test_a_failing_readiness_check_says_how_often_it_failed(ctx):
    running, checks = with_checks(ready=ops.pebble.CheckStatus.DOWN, failures=3)

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.READY_CHECK]),
        state(containers={running}),
    )

    assert out.unit_status == testing.WaitingStatus(
        "waiting for the reconciler to be ready (reconciler-ready failed 3 times)"
    )


def test_liveness_outranks_readiness(ctx):
    running, checks = with_checks(
        alive=ops.pebble.CheckStatus.DOWN, ready=ops.pebble.CheckStatus.DOWN, failures=3
    )

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.ALIVE_CHECK]),
        state(containers={running}),
    )

    assert out.unit_status == WEDGED


def test_the_application_is_active_when_the_leader_is(ctx):
    running, checks = with_checks()

    out = ctx.run(
        ctx.on.pebble_check_recovered(running, checks[workload.READY_CHECK]),
        state(leader=True, containers={running}),
    )

    assert out.unit_status == testing.ActiveStatus()
    assert out.app_status == testing.ActiveStatus()


def test_a_single_units_wedged_reconciler_is_the_applications_problem(ctx):
    running, checks = with_checks(alive=ops.pebble.CheckStatus.DOWN, failures=3)

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.ALIVE_CHECK]),
        state(leader=True, containers={running}, planned_units=1),
    )

    assert out.app_status == WEDGED


def test_with_other_units_the_leaders_wedged_reconciler_shows_on_its_unit_only(ctx):
    # Another unit's reconciler takes over the Lease: the application still works.
    running, checks = with_checks(alive=ops.pebble.CheckStatus.DOWN, failures=3)

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.ALIVE_CHECK]),
        state(leader=True, containers={running}, planned_units=3),
    )

    assert out.unit_status == WEDGED
    assert out.app_status == testing.ActiveStatus()


@pytest.mark.parametrize("planned_units", [1, 3])
def test_invalid_options_block_the_application(ctx, planned_units: int):
    running, checks = with_checks()

    out = ctx.run(
        ctx.on.pebble_check_recovered(running, checks[workload.READY_CHECK]),
        state(
            leader=True,
            containers={running},
            planned_units=planned_units,
            config={"pod-cpu-limit": "lots"},
        ),
    )

    blocked = testing.BlockedStatus(
        'invalid config: pod-cpu-limit="lots": not a valid Kubernetes quantity '
        "(e.g. 500m, 1, 256Mi, 1Gi)"
    )
    assert out.app_status == blocked
    assert out.unit_status == blocked


def test_a_unit_that_is_not_leader_leaves_the_application_status_alone(ctx):
    running, checks = with_checks(alive=ops.pebble.CheckStatus.DOWN, failures=3)

    out = ctx.run(
        ctx.on.pebble_check_failed(running, checks[workload.ALIVE_CHECK]),
        state(containers={running}, app_status=testing.ActiveStatus()),
    )

    assert out.app_status == testing.ActiveStatus()
    assert out.unit_status == WEDGED
