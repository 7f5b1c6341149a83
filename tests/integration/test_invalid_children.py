"""A test whose children the API server would refuse gets none of them, and one reason why.

The CRD leaves the Kubernetes fields a test passes to its pods open, so the API server accepts
the LocustTest and would refuse only its Jobs. The operator checks those fields before it creates
anything: such a test gets no Service and no Jobs, `Ready=False` with reason `InvalidSpec` naming
the field, one Warning event, and no retries.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.conftest import OPERATOR_USER, wait_until
from tests.integration.objects import (
    children,
    conditions,
    create,
    events_for,
    locusttest,
    status,
    wait_for_children,
)

MASTER = "--locustfile /lotest/src/locustfile.py --users 10 --run-time 1m"
WORKER = "--locustfile /lotest/src/locustfile.py"

INVALID: dict[str, tuple[dict[str, Any], str]] = {
    "env-name-with-equals": (
        {"env": {"variables": [{"name": "A=B", "value": "x"}]}},
        "spec.env.variables[0].name: Invalid value: \"A=B\"",
    ),
    "env-name-empty": (
        {"env": {"variables": [{"name": "", "value": "x"}]}},
        "spec.env.variables[0].name: Required value",
    ),
    "volume-of-the-wrong-type": (
        {
            "volumes": [{"name": "data", "hostPath": 123}],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        },
        'spec.volumes[0].hostPath: Invalid value: "integer"',
    ),
    "limits-not-a-map": (
        {"worker": {"command": WORKER, "replicas": 1, "resources": {"limits": "x"}}},
        'spec.worker.resources.limits: Invalid value: "string"',
    ),
    "unparseable-quantity": (
        {"master": {"command": MASTER, "resources": {"limits": {"cpu": "lots"}}}},
        'spec.master.resources.limits.cpu: Invalid value: "lots"',
    ),
    "request-above-limit": (
        {
            "worker": {
                "command": WORKER,
                "replicas": 1,
                "resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}},
            }
        },
        'spec.worker.resources.requests: Invalid value: "2Gi": must be less than or equal to '
        "memory limit of 1Gi",
    ),
    "bad-label-key": (
        {"worker": {"command": WORKER, "replicas": 1, "labels": {"bad key": "x"}}},
        'spec.worker.labels: Invalid value: "bad key"',
    ),
}


def invalid_reason(client, name: str) -> str | None:
    found = status(client, name)
    if conditions(found).get("Ready") != ("False", "InvalidSpec"):
        return None
    return next(c["message"] for c in found["conditions"] if c["type"] == "Ready")


def test_a_test_whose_children_would_be_refused_gets_none(client, start_operator, cluster):
    operator = start_operator()
    for name, (spec, _) in INVALID.items():
        create(client, locusttest(name, workers=1, **spec))
    # A valid test created after them: once its children exist, the operator has been through
    # every invalid test, so nothing more will happen to them.
    create(client, locusttest("valid-after-them", workers=1))
    wait_for_children(client, "valid-after-them")

    for name, (_, expected) in INVALID.items():
        message = wait_until(lambda n=name: invalid_reason(client, n), what=f"{name} InvalidSpec")
        assert expected in message, name
        assert status(client, name)["phase"] == "Failed"
        assert children(client, name) == {}, name
        warnings = wait_until(
            lambda n=name: [e for e in events_for(client, n) if e.type == "Warning"],
            what=f"the Warning event of {name}",
        )
        assert [(e.reason, e.count) for e in warnings] == [("InvalidSpec", 1)], name
        assert expected in warnings[0].message
    creates = [
        r
        for r in cluster.requests
        if r.user == OPERATOR_USER and r.verb == "create" and r.resource in ("services", "jobs")
    ]
    assert len(creates) == 3  # the valid test's three children, nothing for the others
    assert "Reconcile of LocustTest" not in operator.log()  # no failed reconcile, no retry


@pytest.mark.parametrize("refused", ["jobs", "services"])
def test_a_child_the_api_server_refuses_leaves_nothing_behind(
    client, start_operator, cluster, refused
):
    """What the operator's own checks miss, the API server refuses: what was already created is
    removed, and the test says why."""
    start_operator()
    cluster.faults.add(
        verb="create",
        resource=refused,
        status=422,
        message='Job.batch "refused-master" is invalid: spec.template.spec.containers[0]: '
        "Invalid value: a rule the operator does not check",
        times=1,
    )
    create(client, locusttest("refused", workers=1))

    message = wait_until(lambda: invalid_reason(client, "refused"), what="InvalidSpec")
    assert "a rule the operator does not check" in message
    wait_until(lambda: children(client, "refused") == {}, what="no children left")
    warnings = wait_until(
        lambda: [e.reason for e in events_for(client, "refused") if e.type == "Warning"],
        what="the Warning event",
    )
    assert warnings == ["InvalidSpec"]
