"""`juju run locust-operator/0 run-test wait=true` as a CI gate, from the charm's own action code,
against the operator and real Locust on the local kubelet: a met threshold gives `Passed` and an
action that succeeds, a breached one `Failed` and an action that fails with the breach.

Both actions run side by side, each in a process of its own (tests/e2e/charm_action.py): each
waits for its test to end, which is Locust's default 60 s --autoquit after the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fakekube.sandbox import _child_env
from tests.e2e.conftest import FAST_AND_SLOW_LOCUSTFILE, Cluster
from tests.unit.charm.conftest import MODEL

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
ACTION_TIMEOUT_SECONDS = 180
GATES = {
    "gate-pass": "failRatio<0.01,p95Ms<5000@GET /fast",
    "gate-fail": "failRatio<0.01,p95Ms<50@GET /slow",  # /slow answers after 150 ms
}


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    return {"RESULTS_INTERVAL_SECONDS": "1"}


def start_action(kubeconfig: Path, action: str, params: dict[str, Any]) -> subprocess.Popen:
    # The charm's own modules and its libraries, as the unit tests import them.
    path = os.pathsep.join(str(ROOT / p) for p in ("src", "lib", "."))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.charm_action", action, json.dumps(params)],
        cwd=ROOT,
        env=_child_env({"KUBECONFIG": str(kubeconfig), "PYTHONPATH": path}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def outcome(process: subprocess.Popen) -> dict[str, Any]:
    out, err = process.communicate(timeout=ACTION_TIMEOUT_SECONDS + 30)
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


@pytest.fixture(scope="module")
def gates(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Each gate's run-test wait=true, started together: its results, logs and failure."""
    cluster.namespace(MODEL)
    target = cluster.target("target", MODEL, delays={"/slow": 0.15})
    kubeconfig = cluster.kube.write_kubeconfig(tmp_path_factory.mktemp("charm") / "kubeconfig")
    running = {
        name: start_action(
            kubeconfig,
            "run-test",
            {
                "name": name,
                "locustfile": FAST_AND_SLOW_LOCUSTFILE,
                "host": "http://target:8080",
                "users": 4,
                "spawn-rate": 4,
                "run-time": "6s",
                "thresholds": thresholds,
                "wait": True,
                "timeout": ACTION_TIMEOUT_SECONDS,
            },
        )
        for name, thresholds in GATES.items()
    }
    try:
        yield {name: outcome(process) for name, process in running.items()}
    finally:
        for process in running.values():
            process.kill()
        target.stop()


def test_a_met_threshold_passes_the_gate(cluster: Cluster, gates: dict):
    gate = gates["gate-pass"]
    assert gate["failure"] is None, gate
    results = gate["results"]
    assert (results["phase"], results["verdict"]) == ("Succeeded", "Passed")
    assert results["results"]["requests"] > 0
    assert results["thresholds"]["threshold-1"]["met"] is True
    assert results["thresholds"]["threshold-1"]["value"] < 5000
    logs = gate["logs"]
    assert logs[0] == f"Created LocustTest gate-pass in namespace {MODEL}; waiting for it to end"
    # Progress while it ran (how many lines depends on the timing), then the end.
    assert any(line.startswith("phase Running") for line in logs[1:-1]), logs
    assert logs[-1].startswith("phase Succeeded") and logs[-1].endswith("verdict Passed")
    # What the action made, as the operator and kubectl see it.
    status = cluster.test_status(MODEL, "gate-pass")
    assert status["verdict"] == "Passed" and status["results"]["final"] is True
    config_map = cluster.kube.get("v1", "ConfigMap", "gate-pass-locustfile", MODEL)
    assert config_map["data"] == {"locustfile.py": FAST_AND_SLOW_LOCUSTFILE}


def test_a_breached_threshold_fails_the_gate_with_the_breach(cluster: Cluster, gates: dict):
    gate = gates["gate-fail"]
    status = cluster.test_status(MODEL, "gate-fail")
    p95 = next(e["p95Ms"] for e in status["results"]["entries"] if e["name"] == "/slow")
    assert gate["failure"] == f"verdict Failed: p95Ms {p95:g} > 50 on GET /slow"
    results = gate["results"]
    assert (results["phase"], results["verdict"]) == ("Succeeded", "Failed")
    assert results["thresholds"]["threshold-0"]["met"] is True
    assert results["thresholds"]["threshold-1"]["met"] is False
    assert gate["logs"][-1].endswith("verdict Failed")


def test_test_results_names_the_report_the_operator_kept(cluster: Cluster, gates: dict, tmp_path):
    kubeconfig = cluster.kube.write_kubeconfig(tmp_path / "kubeconfig")
    shown = outcome(start_action(kubeconfig, "test-results", {"name": "gate-fail"}))
    assert shown["failure"] is None, shown
    assert shown["results"]["verdict"] == "Failed"
    assert shown["results"]["report-config-map"] == "gate-fail-report"
    assert cluster.kube.get("v1", "ConfigMap", "gate-fail-report", MODEL) is not None
