"""End-to-end tests of the charm on a real Juju controller and Kubernetes cluster (opt-in).

They need a bootstrapped Juju 3 controller on Kubernetes (for example Canonical Kubernetes or
MicroK8s), `kubectl` pointing at the same cluster, a packed charm and the reconciler image in a
registry the cluster can pull from:

    charmcraft pack && rockcraft pack
    # push the rock to a registry the cluster can pull from, e.g. MicroK8s' localhost:32000
    LOCUST_OPERATOR_JUJU_TESTS=1 \\
    LOCUST_OPERATOR_CHARM=./locust-operator_amd64.charm \\
    LOCUST_OPERATOR_IMAGE=localhost:32000/locust-operator:0.1.0 \\
        .venv/bin/pytest -m juju tests/integration/test_charm_juju.py

`pip install jubilant` first. Each module run creates a temporary model and destroys it afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.juju,
    pytest.mark.skipif(
        os.environ.get("LOCUST_OPERATOR_JUJU_TESTS") != "1",
        reason="needs Juju and Kubernetes: set LOCUST_OPERATOR_JUJU_TESTS=1",
    ),
    pytest.mark.timeout(1800),
]

APP = "locust-operator"
ROOT = Path(__file__).resolve().parents[2]
TEST_NAME = "smoke.test"


@pytest.fixture(scope="module")
def jubilant():
    return pytest.importorskip("jubilant")


@pytest.fixture(scope="module")
def charm() -> Path:
    if path := os.environ.get("LOCUST_OPERATOR_CHARM"):
        return Path(path).resolve()
    found = sorted(ROOT.glob("locust-operator_*.charm"))
    if not found:
        pytest.fail("no packed charm: run `charmcraft pack` or set LOCUST_OPERATOR_CHARM")
    return found[-1]


@pytest.fixture(scope="module")
def image() -> str:
    if not (image := os.environ.get("LOCUST_OPERATOR_IMAGE")):
        pytest.fail("set LOCUST_OPERATOR_IMAGE to the reconciler image the cluster can pull")
    return image


@pytest.fixture(scope="module")
def juju(jubilant) -> Iterator:
    with jubilant.temp_model() as juju:
        juju.wait_timeout = 15 * 60
        yield juju


def kubectl(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", *args], input=stdin, capture_output=True, text=True, check=True
    )
    return result.stdout


def unit_message(juju, app: str = APP) -> str:
    units = juju.status().apps[app].units
    return next(iter(units.values())).workload_status.message


def wait_for(condition, timeout: float = 300, every: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__name__}")
        time.sleep(every)


def test_deploy_with_trust_becomes_active(jubilant, juju, charm: Path, image: str):
    juju.deploy(charm, APP, resources={"reconciler-image": image}, trust=True)

    juju.wait(lambda status: jubilant.all_active(status, APP), error=jubilant.any_error)

    crd = json.loads(kubectl("get", "crd", "locusttests.locust.io", "-o", "json"))
    assert crd["metadata"]["labels"]["app.kubernetes.io/part-of"] == "locust-operator"
    kubectl("get", "clusterrole", f"{APP}-{juju.model}")
    kubectl("get", "clusterrolebinding", f"{APP}-{juju.model}")


def test_the_crd_converts_through_the_applications_service(juju):
    crd = json.loads(kubectl("get", "crd", "locusttests.locust.io", "-o", "json"))
    webhook = crd["spec"]["conversion"]["webhook"]["clientConfig"]
    assert webhook["service"] == {
        "name": APP,
        "namespace": juju.model,
        "port": 9443,
        "path": "/convert",
    }
    assert webhook["caBundle"]
    service = json.loads(kubectl("get", "service", APP, "-n", juju.model, "-o", "json"))
    assert {9443, 8080} <= {port["port"] for port in service["spec"]["ports"]}


def test_a_locusttest_gets_its_children(juju):
    manifest = f"""
apiVersion: locust.io/v1
kind: LocustTest
metadata:
  name: {TEST_NAME}
  namespace: {juju.model}
spec:
  image: locustio/locust:2.31.0
  masterCommandSeed: --locustfile /lotest/src/demo.py --host http://127.0.0.1 --run-time 1m
  workerCommandSeed: --locustfile /lotest/src/demo.py
  workerReplicas: 2
"""
    kubectl("apply", "-f", "-", stdin=manifest)

    def children_exist() -> bool:
        names = kubectl("get", "service,job", "-n", juju.model, "-o", "name").split()
        return {
            "service/smoke-test-master",
            "job.batch/smoke-test-master",
            "job.batch/smoke-test-worker",
        } <= set(names)

    wait_for(children_exist)


def test_a_v1_test_reads_back_as_v2_and_as_v1(juju):
    def read(version: str) -> dict:
        resource = f"locusttests.{version}.locust.io"
        return json.loads(kubectl("get", resource, TEST_NAME, "-n", juju.model, "-o", "json"))

    as_v2, as_v1 = read("v2"), read("v1")

    assert as_v2["spec"]["worker"]["replicas"] == 2
    assert as_v2["spec"]["master"]["command"].startswith("--locustfile /lotest/src/demo.py")
    assert as_v1["spec"]["workerReplicas"] == 2


def test_the_test_gets_a_status(juju):
    def has_phase() -> bool:
        test = kubectl(
            "get", "locusttests.v2.locust.io", TEST_NAME, "-n", juju.model, "-o", "json"
        )
        return json.loads(test).get("status", {}).get("phase") in {
            "Running",
            "Succeeded",
            "Failed",
        }

    wait_for(has_phase)


def test_list_tests_shows_the_test(juju):
    task = juju.run(f"{APP}/0", "list-tests", {"namespace": juju.model})

    assert task.results["count"] == "1"
    test = task.results["tests"]["test-0"]
    assert test["name"] == TEST_NAME
    assert test["service"]["state"] == "present"
    assert test["phase"] in {"Running", "Succeeded", "Failed"}
    assert test["workers"].endswith("/2")


def test_describe_test_shows_the_arguments(juju):
    task = juju.run(f"{APP}/0", "describe-test", {"name": TEST_NAME})

    assert "--expect-workers=2" in task.results["spec"]["master-args"]
    assert "--master-host=smoke-test-master" in task.results["spec"]["worker-args"]
    assert task.results["expected-workers"] == "2"
    assert task.results["conditions"]["ready"]["reason"] in {"ResourcesCreated", "ResourcesFailed"}


# A locustfile that loads the operator's own metrics endpoint (the application's Service), so
# the run-test tests need no target of their own.
METRICS_LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Scraper(HttpUser):
    wait_time = constant(0.5)

    @task
    def metrics(self):
        self.client.get("/metrics")
"""


def run_test_params(juju, name: str, thresholds: str) -> dict:
    return {
        "name": name,
        "locustfile": METRICS_LOCUSTFILE,
        "host": f"http://{APP}.{juju.model}.svc:8080",
        "users": 2,
        "spawn-rate": 2,
        "run-time": "20s",
        "thresholds": thresholds,
        "wait": True,
        "timeout": 900,
    }


def test_run_test_wait_passes_when_the_thresholds_hold(juju):
    task = juju.run(f"{APP}/0", "run-test", run_test_params(juju, "gate-ok", "failRatio<0.5"))

    assert task.results["verdict"] == "Passed"
    assert int(task.results["results"]["requests"]) > 0
    assert any(line.startswith("phase Running") for line in task.log)


def test_run_test_wait_fails_on_a_breached_threshold(jubilant, juju):
    with pytest.raises(jubilant.TaskError) as failed:
        juju.run(f"{APP}/0", "run-test", run_test_params(juju, "gate-breached", "requests<1"))

    assert failed.value.task.message.startswith("verdict Failed: requests ")
    task = juju.run(f"{APP}/0", "test-results", {"name": "gate-breached", "format": "json"})
    assert json.loads(task.results["results"])["verdict"] == "Failed"
    juju.run(f"{APP}/0", "stop-test", {"name": "gate-breached", "delete": True})


def test_invalid_config_blocks_naming_the_option(jubilant, juju):
    juju.config(APP, {"pod-cpu-limit": "lots"})

    juju.wait(lambda status: jubilant.all_blocked(status, APP))
    assert unit_message(juju).startswith('invalid config: pod-cpu-limit="lots"')

    juju.config(APP, reset=["pod-cpu-limit"])
    juju.wait(lambda status: jubilant.all_active(status, APP))


def test_scale_to_zero_and_back_keeps_the_crd_and_the_tests(jubilant, juju):
    juju.cli("scale-application", APP, "0")
    juju.wait(lambda status: not status.apps[APP].units, timeout=600)

    kubectl("get", "crd", "locusttests.locust.io")
    kubectl("get", "locusttest", TEST_NAME, "-n", juju.model)

    juju.cli("scale-application", APP, "1")
    juju.wait(lambda status: jubilant.all_active(status, APP), error=jubilant.any_error)
    kubectl("get", "locusttest", TEST_NAME, "-n", juju.model)


def test_deploy_without_trust_asks_for_it(jubilant, juju, charm: Path, image: str):
    app = "locust-untrusted"
    juju.deploy(charm, app, resources={"reconciler-image": image}, trust=False)

    juju.wait(lambda status: jubilant.all_blocked(status, app), timeout=600)
    assert unit_message(juju, app) == (
        f"missing cluster permissions; run: juju trust {app} --scope=cluster"
    )
    juju.remove_application(app, destroy_storage=True, force=True)
