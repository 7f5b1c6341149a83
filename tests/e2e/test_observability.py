"""COS with real parts: a real Prometheus scrapes the operator through the charm's own scrape job.

The fake cluster runs a real Locust test on its local kubelet; the operator runs as in production
(with leader election, as the charm runs it). The Prometheus configuration is made from the
metrics-endpoint relation data an ops.testing run of the charm writes, the way the Prometheus
charm makes it: the job's `*` host becomes each unit's address (here 127.0.0.1) and the port the
operator's, and the targets carry the Juju topology as labels. The charm's alert rules are loaded
too. The dashboard's queries are checked against what the operator exports and against this
Prometheus.

The locusttest_* series come from the tests' statuses (their results), on the operator's /metrics.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from ops import testing
from prometheus_client.parser import text_string_to_metric_families

import charm_config
import metrics_endpoint
import workload
from charm import LocustOperatorCharm
from fakekube.fixtures import locust_processes
from fakekube.kubelet import KubeletSettings
from fakekube.sandbox import OperatorProcess, TargetServer
from fakekube.server import FakeKube
from reconciler.crds import crd_text
from tests import grafana
from tests.e2e.conftest import SRC, locustfile, locusttest
from tests.integration.conftest import OPERATOR_USER, grant_operator_role, wait_until
from tests.prometheus import PrometheusServer, binary

pytestmark = pytest.mark.timeout(300)

APP = "locust-operator"
MODEL = "load"
NAMESPACE = "team-a"
TEST = "load"
RUN_SECONDS = 120  # long enough for every test here to watch it run
# A short test with a threshold, whose verdict comes while the long one still runs (a test
# without thresholds has no verdict).
SHORT = "short"
THRESHOLDS = [{"metric": "failRatio", "max": 0.5}]
SCRAPE = "1s"
LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.2)

    @task
    def home(self):
        self.client.get("/")
"""
ELECTION = {
    "LEADER_ELECTION": "true",
    "LEASE_NAME": APP,
    "LEASE_NAMESPACE": "default",
    "POD_HEALTH_GRACE_SECONDS": "5",
    # How often the operator reads a running test's results (issue 12).
    "RESULTS_INTERVAL_SECONDS": "2",
}


def charm_relation_data() -> tuple[dict[str, str], dict[str, str]]:
    """The metrics-endpoint databags (application, unit) a leader unit of the charm writes."""
    ctx = testing.Context(LocustOperatorCharm, app_name=APP)
    relation = testing.Relation(
        metrics_endpoint.RELATION, interface="prometheus_scrape", remote_app_name="prometheus"
    )
    out = ctx.run(
        ctx.on.relation_joined(relation, remote_unit=0),
        testing.State(
            leader=True,
            relations={relation},
            containers={testing.Container(workload.CONTAINER, can_connect=False)},
            model=testing.Model(name=MODEL),
        ),
    )
    written = out.get_relation(relation.id)
    return dict(written.local_app_data), dict(written.local_unit_data)


def prometheus_config(
    app_data: dict[str, str], unit_data: dict[str, str], metrics_port: int, rules: Path
) -> dict[str, Any]:
    """What the Prometheus charm makes of the databags, with the unit at 127.0.0.1."""
    metadata = json.loads(app_data["scrape_metadata"])
    topology = {
        "juju_model": metadata["model"],
        "juju_model_uuid": metadata["model_uuid"],
        "juju_application": metadata["application"],
        "juju_charm": metadata["charm_name"],
        "juju_unit": unit_data["prometheus_scrape_unit_name"],
    }
    jobs = []
    for job in json.loads(app_data["scrape_jobs"]):
        static_configs = []
        for static in job["static_configs"]:
            targets = []
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                assert (host, int(port)) == ("*", charm_config.METRICS_PORT)
                targets.append(f"127.0.0.1:{metrics_port}")
            static_configs.append(
                {"targets": targets, "labels": {**topology, **static.get("labels", {})}}
            )
        jobs.append(
            {
                "job_name": "_".join(
                    ["juju", metadata["model"], metadata["application"], job["job_name"]]
                ),
                "metrics_path": job["metrics_path"],
                "scrape_interval": SCRAPE,
                "static_configs": static_configs,
            }
        )
    rules.write_text(yaml.safe_dump(json.loads(app_data["alert_rules"])))
    return {
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(rules)],
        "scrape_configs": jobs,
    }


def exported_names(operator: OperatorProcess) -> set[str]:
    """The names of the series the operator's /metrics holds now."""
    status, text = operator.get("/metrics", port=operator.metrics_port)
    assert status == 200
    return {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def assert_exported(operator: OperatorProcess, wanted: set[str], timeout: float = 45) -> None:
    """Wait until the operator's /metrics holds a series of every name in `wanted`."""
    deadline = time.monotonic() + timeout
    while missing := wanted - exported_names(operator):
        if time.monotonic() > deadline:
            pytest.fail(f"no series in the operator's /metrics for {sorted(missing)}")
        time.sleep(0.5)


@dataclass
class Observed:
    kube: FakeKube
    operator: OperatorProcess
    target: TargetServer
    app_data: dict[str, str]
    unit_data: dict[str, str]
    root: Path


@dataclass
class Scraping:
    """The observed cluster, and a Prometheus scraping its operator."""

    observed: Observed
    prometheus: PrometheusServer
    job: str


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    app_data, unit_data = charm_relation_data()
    root = tmp_path_factory.mktemp("observability")
    kube = FakeKube(
        kubelet=KubeletSettings(root=root / "node", fail_unknown_images=True),
        authorization="RBAC",
    ).start()
    operator = target = None
    try:
        kube.jobs.auto = True
        kube.apply_yaml(crd_text())
        grant_operator_role(kube)
        operator = OperatorProcess(
            kube.write_kubeconfig(root / "operator-kubeconfig", user=OPERATOR_USER),
            root / "operator.log",
            ELECTION,
        )
        operator.wait_ready()
        wait_until(
            lambda: "this replica is now the leader" in operator.log(),
            timeout=30,
            what="the operator to lead",
        )
        # A lost watch (the stream ends, the new one is refused once), so that every operator
        # series the dashboard reads exists.
        rule = kube.faults.add(verb="watch", resource="locusttests", status=500, times=1)
        kube.expire_watches()
        wait_until(lambda: rule.spent, what="the operator to watch again")

        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        target = TargetServer()
        for obj in target.service_manifests("target", NAMESPACE):
            kube.create(obj)
        kube.create(locustfile("load-locustfile", NAMESPACE, LOCUSTFILE))
        # The first Service the operator creates is refused once (the reconcile is retried),
        # so that the error series exist too.
        kube.faults.add(verb="create", resource="services", status=500, times=1)
        for name, seconds in ((TEST, RUN_SECONDS), (SHORT, 5)):
            test = locusttest(
                name,
                NAMESPACE,
                master_seed=f"--locustfile {SRC}/locustfile.py --host http://target:8080 "
                f"--users 2 --spawn-rate 2 --run-time {seconds}s",
                workers=1,
                config_map="load-locustfile",
            )
            if name == SHORT:
                test["spec"]["thresholds"] = THRESHOLDS
            kube.create(test)
        yield Observed(kube, operator, target, app_data, unit_data, root)
    finally:
        if operator is not None:
            operator.stop()
        kube.stop()
        if target is not None:
            target.stop()
    assert locust_processes() == []


@pytest.fixture(scope="module")
def scraping(observed: Observed) -> Iterator[Scraping]:
    binary("prometheus")
    config = prometheus_config(
        observed.app_data,
        observed.unit_data,
        observed.operator.metrics_port,
        observed.root / "sent.rules",
    )
    prometheus = PrometheusServer(observed.root / "prometheus", config)
    try:
        prometheus.wait_ready()
        yield Scraping(observed, prometheus, config["scrape_configs"][0]["job_name"])
    finally:
        prometheus.stop()


def test_the_load_test_really_runs(observed: Observed):
    def phase() -> str:
        test = observed.kube.get("locust.io/v2", "LocustTest", TEST, NAMESPACE) or {}
        return (test.get("status") or {}).get("phase", "")

    wait_until(lambda: phase() == "Running", timeout=90, what="the LocustTest to run")
    wait_until(lambda: observed.target.total > 0, timeout=60, what="Locust to load the target")


def test_prometheus_scrapes_the_operator_through_the_charms_scrape_job(scraping: Scraping):
    observed = scraping.observed
    up = wait_until(
        lambda: scraping.prometheus.query(f'up{{job="{scraping.job}"}} == 1'),
        timeout=60,
        what="Prometheus to scrape the operator",
    )
    (series,) = up
    labels = series["metric"]
    metadata = json.loads(observed.app_data["scrape_metadata"])
    assert labels["instance"] == f"127.0.0.1:{observed.operator.metrics_port}"
    assert (labels["juju_model"], labels["juju_application"], labels["juju_unit"]) == (
        MODEL,
        APP,
        f"{APP}/0",
    )
    assert labels["juju_model_uuid"] == metadata["model_uuid"]
    (active,) = scraping.prometheus.api("targets")["activeTargets"]
    assert active["health"] == "up"
    assert active["scrapeUrl"] == f"http://127.0.0.1:{observed.operator.metrics_port}/metrics"
    # The operator's own numbers arrive: its reconciles of the running test.
    wait_until(
        lambda: scraping.prometheus.query(
            f'controller_runtime_reconcile_total{{job="{scraping.job}", result="success"}} > 0'
        ),
        timeout=60,
        what="reconciles in Prometheus",
    )


def test_prometheus_loads_and_evaluates_the_charms_alert_rules(scraping: Scraping):
    observed = scraping.observed

    def evaluated() -> list[dict[str, Any]]:
        groups = scraping.prometheus.api("rules", type="alert")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        never = "0001-01-01T00:00:00Z"
        return rules if rules and all(r["lastEvaluation"] != never for r in rules) else []

    rules = wait_until(evaluated, timeout=60, what="the alert rules to be evaluated")
    sent = json.loads(observed.app_data["alert_rules"])
    assert {r["name"] for r in rules} == {
        rule["alert"] for group in sent["groups"] for rule in group["rules"]
    }
    assert all(r["health"] == "ok" for r in rules), [
        (r["name"], r.get("lastError")) for r in rules
    ]
    # The operator is up and holds the Lease: neither operator alert is on its way.
    states = {r["name"]: r["state"] for r in rules}
    assert states["LocustOperatorDown"] == states["LocustOperatorNotReconciling"] == "inactive"


def test_prometheus_accepts_every_query_of_the_dashboard(scraping: Scraping):
    for expr in grafana.queries(grafana.load()):
        concrete = expr.replace("$__rate_interval", "1m")
        concrete = re.sub(r"\$\{?(namespace|test)\}?", ".*", concrete)
        scraping.prometheus.query(concrete)  # raises on what Prometheus refuses


def dashboard_names() -> set[str]:
    return set().union(*(grafana.metric_names(e) for e in grafana.queries(grafana.load())))


def test_the_dashboard_reads_only_series_the_operator_exports(observed: Observed):
    names = dashboard_names()
    assert_exported(observed.operator, {n for n in names if not n.startswith("locusttest_")})


def test_the_dashboard_reads_only_test_series_the_operator_exports(observed: Observed):
    names = dashboard_names()
    assert_exported(observed.operator, {n for n in names if n.startswith("locusttest_")})


def test_prometheus_sees_the_running_tests_requests_grow(scraping: Scraping):
    selector = f'job="{scraping.job}", namespace="{NAMESPACE}", name="{TEST}"'
    expr = f"locusttest_requests_total{{{selector}}}"

    def requests() -> float | None:
        result = scraping.prometheus.query(expr)
        return float(result[0]["value"][1]) if result else None

    first = wait_until(
        lambda: (value := requests()) and value > 0 and value,
        timeout=45,
        what=f"{expr} in Prometheus",
    )
    wait_until(lambda: (requests() or 0) > first, timeout=45, what=f"{expr} to grow")
