"""The operator refuses a Kubernetes too old for its Jobs, in one line, before doing anything."""

from __future__ import annotations

from tests.integration.conftest import OPERATOR_USER


def test_a_cluster_older_than_1_29_stops_the_operator(start_operator, cluster):
    cluster.kubernetes_version = "1.28.5"
    operator = start_operator(wait=False)
    assert operator.proc.wait(20) == 2
    errors = [line for line in operator.log().splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert errors[0].endswith(
        "Kubernetes v1.28.5-fakekube is too old: the operator needs 1.29 or later (its metrics "
        "exporter runs as a native sidecar)"
    )
    # Nothing was watched or written before the check.
    assert [r.path for r in cluster.requests if r.user == OPERATOR_USER] == ["/version"]


def test_1_29_is_enough(start_operator, cluster):
    cluster.kubernetes_version = "1.29.0"
    operator = start_operator()
    assert "Kubernetes v1.29.0-fakekube" in operator.log()
