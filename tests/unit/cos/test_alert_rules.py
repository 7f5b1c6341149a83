"""The alert rules, checked by Prometheus' own promtool: valid, and firing exactly when due.

`alert_rules_test.yaml` holds the cases (`promtool test rules`): for each alert, series that must
fire it and series that must not. The rules are checked both as written and as the
metrics-endpoint relation sends them (with the Juju topology).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from cosl import JujuTopology

import metrics_endpoint
from tests.prometheus import promtool

HERE = Path(__file__).parent
CASES = HERE / "alert_rules_test.yaml"
RULE_FILES = sorted(metrics_endpoint.RULES_DIR.glob("*.rule"))
TOPOLOGY = JujuTopology(
    model="load",
    model_uuid="8d1b6e1f-3a43-4f4e-9a4b-0f7a6c1f2b3d",
    application="locust-operator",
    unit="locust-operator/0",
    charm_name="locust-operator",
)


def alert_names(rules: dict) -> set[str]:
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


def test_there_are_rule_files():
    assert [path.name for path in RULE_FILES] == ["locust_operator.rule"]


def test_promtool_accepts_every_rule_file():
    for path in RULE_FILES:
        result = promtool("check", "rules", str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_rules_as_the_relation_sends_them(tmp_path: Path):
    sent = metrics_endpoint.alert_rules(TOPOLOGY)
    path = tmp_path / "sent.rules"
    path.write_text(yaml.safe_dump(sent))

    result = promtool("check", "rules", str(path))

    assert result.returncode == 0, result.stdout + result.stderr
    written = set().union(*(alert_names(yaml.safe_load(p.read_text())) for p in RULE_FILES))
    assert alert_names(sent) == written


def test_each_alert_fires_when_it_should_and_only_then():
    result = promtool("test", "rules", CASES.name, cwd=HERE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not():
    cases = yaml.safe_load(CASES.read_text())
    assert cases["rule_files"] == [
        str(Path("../../../src/prometheus_alert_rules") / p.name) for p in RULE_FILES
    ]
    fired, silent = set(), set()
    for test in cases["tests"]:
        for check in test["alert_rule_test"]:
            (fired if check["exp_alerts"] else silent).add(check["alertname"])
    written = set().union(*(alert_names(yaml.safe_load(p.read_text())) for p in RULE_FILES))
    assert fired == written
    assert silent == written
