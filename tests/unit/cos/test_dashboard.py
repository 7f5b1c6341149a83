"""The Grafana dashboard: a valid dashboard, with the variables and panels the issue asks for.

That every metric it reads is a series the operator really exports is checked against a running
operator, in tests/e2e/test_observability.py.
"""

from __future__ import annotations

import re

import pytest

from tests import grafana

DATASOURCE = {"type": "prometheus", "uid": "${prometheusds}"}
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}
# What the dashboard must show: each test's numbers and states, and the operator's health.
TEST_METRICS = {
    "locusttest_users",
    "locusttest_requests_per_second",
    "locusttest_response_time_seconds",
    "locusttest_requests_total",
    "locusttest_failures_total",
    "locusttest_verdict",
    "locusttest_phase",
}
OPERATOR_METRICS = {
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds_bucket",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_retries_total",
    "locust_operator_watch_restarts_total",
    "leader_election_master_status",
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return grafana.load()


def test_it_is_a_dashboard_grafana_loads(dashboard):
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["title"]
    assert isinstance(dashboard["panels"], list) and dashboard["panels"]
    assert isinstance(dashboard["templating"]["list"], list)
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}


def test_panel_ids_are_unique_and_panels_fit_the_grid(dashboard):
    ids = [panel["id"] for panel in grafana.panels(dashboard)]
    assert len(ids) == len(set(ids))
    assert all(isinstance(i, int) and i > 0 for i in ids)
    for panel in grafana.panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["w"] > 0 and grid["h"] > 0, panel["title"]


def test_the_datasource_is_a_variable_named_as_cos_expects(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    # COS' Grafana binds its Prometheus to a datasource variable of this name.
    assert variables["prometheusds"]["type"] == "datasource"
    assert variables["prometheusds"]["query"] == "prometheus"
    for panel in grafana.panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]


def test_namespace_and_test_are_template_variables(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("namespace", "test"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"] == DATASOURCE
        assert variables[name]["includeAll"] and variables[name]["multi"]
    assert variables["test"]["query"]["query"] == (
        'label_values(locusttest_phase{namespace=~"$namespace"}, name)'
    )


def test_the_variables_selectors_are_queries_too(dashboard):
    selectors = grafana.queries(dashboard)[-2:]
    assert selectors == ["locusttest_phase", 'locusttest_phase{namespace=~"$namespace"}']


def test_every_variable_a_query_uses_is_defined(dashboard):
    defined = {v["name"] for v in dashboard["templating"]["list"]} | BUILTIN_VARIABLES
    for expr in grafana.queries(dashboard):
        used = set(re.findall(r"\$\{?(\w+)", expr))
        assert used <= defined, expr


def test_per_test_panels_filter_on_the_chosen_namespace_and_test(dashboard):
    for panel in grafana.panels(dashboard):
        for target in panel.get("targets", []):
            if any(
                name.startswith("locusttest_") for name in grafana.metric_names(target["expr"])
            ):
                assert 'namespace=~"$namespace", name=~"$test"' in target["expr"], panel["title"]


def test_it_shows_each_tests_numbers_and_the_operators_health(dashboard):
    used = set().union(*(grafana.metric_names(e) for e in grafana.queries(dashboard)))
    assert used == TEST_METRICS | OPERATOR_METRICS
    titles = {panel["title"] for panel in grafana.panels(dashboard)}
    assert {
        "Users",
        "Requests per second",
        "Response time (p50, p95, p99)",
        "Failures per second",
        "Fail ratio",
        "Verdict",
        "Phase",
        "Reconciles per second",
        "Reconcile errors per second",
        "Work queue depth",
        "Watch restarts",
        "Lease holder",
    } <= titles
    quantiles = {
        q
        for panel in grafana.panels(dashboard)
        for t in panel.get("targets", [])
        for q in re.findall(r'quantile="([\d.]+)"', t["expr"])
        if "locusttest_response_time_seconds" in t["expr"]
    }
    assert quantiles == {"0.5", "0.95", "0.99"}


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('max by (namespace, name) (locusttest_phase{phase="Failed"}) == 1', {"locusttest_phase"}),
        (
            'histogram_quantile(0.99, sum by (le) (rate(x_bucket{a="b"}[$__rate_interval])))',
            {"x_bucket"},
        ),
        ("a / on (instance) group_left b unless c offset 5m", {"a", "b", "c"}),
        ('up{job=~"by|rate(x)"} > bool 0', {"up"}),
        ("sum without (instance) (rate(a_total[5m])) / 1e3", {"a_total"}),
    ],
)
def test_metric_names_are_found_in_promql(expr, names):
    assert grafana.metric_names(expr) == names
