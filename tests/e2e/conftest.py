"""One fake cluster that runs pods for real, shared by the end-to-end tests of a module.

The fake API server (with its Job controller in auto mode and the local kubelet) runs in this
process; the operator runs as its own process, as in production; every Locust master and worker is
a process the kubelet started. Locust is never imported here. The fake enforces RBAC: the operator
runs as the application's ServiceAccount under the charm's ClusterRole, as in production.

The scenarios share one cluster and one operator and run side by side. Their masters quit
``AUTOQUIT_SECONDS`` after their run (a v2 field; upstream's default is 60 s), long enough to read
the final numbers while the master still serves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig

from fakekube.fixtures import locust_processes
from fakekube.kubelet import KubeletSettings, ProcessInfo
from fakekube.sandbox import OperatorProcess, TargetServer
from fakekube.server import FakeKube
from reconciler.crds import crd_text
from tests.integration.conftest import OPERATOR_USER, grant_operator_role, refused, wait_until

IMAGE = "locustio/locust:2.47.0"
SRC = "/lotest/src"
API_VERSION = "locust.io/v2"
AUTOQUIT_SECONDS = 15
#: Pods get this long to start before their health counts (the operator's default is 120 s).
POD_HEALTH_GRACE_SECONDS = 5
#: Users of a target with a fast and a slow endpoint (`Cluster.target(delays={"/slow": ...})`).
FAST_AND_SLOW_LOCUSTFILE = """\
from locust import HttpUser, constant, task


class Visitor(HttpUser):
    wait_time = constant(0.1)

    @task(3)
    def fast(self):
        self.client.get("/fast")

    @task
    def slow(self):
        self.client.get("/slow")
"""


@dataclass
class Cluster:
    kube: FakeKube
    client: Client
    operator: OperatorProcess
    node: Path

    def apply(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            self.kube.create(obj)

    def namespace(self, name: str) -> None:
        self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def target(
        self, name: str, namespace: str, delays: dict[str, float] | None = None
    ) -> TargetServer:
        """An HTTP server for a test to load, reachable as the Service ``name``."""
        server = TargetServer(delays=delays)
        self.apply(*server.service_manifests(name, namespace))
        return server

    def job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.get("batch/v1", "Job", name, namespace)

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        return self.kube.list("v1", "Pod", namespace, labels={"job-name": job})

    def processes(self, namespace: str, prefix: str) -> list[ProcessInfo]:
        return [
            p
            for p in self.kube.kubelet.processes()
            if p.namespace == namespace and p.pod.startswith(prefix)
        ]

    def test_status(self, namespace: str, name: str) -> dict[str, Any]:
        test = self.kube.get(API_VERSION, "LocustTest", name, namespace) or {}
        return test.get("status") or {}

    def wait_for_phase(self, namespace: str, name: str, phase: str,
                       timeout: float = 60) -> dict[str, Any]:
        return wait_until(
            lambda: (s := self.test_status(namespace, name)).get("phase") == phase and s,
            timeout=timeout, what=f"LocustTest {namespace}/{name} to reach {phase}")

    def event_reasons(self, namespace: str, name: str) -> list[str]:
        return [e["reason"] for e in self.kube.list("v1", "Event", namespace)
                if e["involvedObject"]["name"] == name
                and e["involvedObject"]["kind"] == "LocustTest"]

    def wait_for_condition(self, namespace: str, job: str, timeout: float = 150) -> dict[str, Any]:
        """Wait until the Job is finished; returns its Complete or Failed condition."""

        def finished() -> dict[str, Any] | None:
            found = self.job(namespace, job)
            conditions = ((found or {}).get("status") or {}).get("conditions") or []
            return next((c for c in conditions if c["type"] in ("Complete", "Failed")), None)

        return wait_until(finished, timeout=timeout, what=f"Job {namespace}/{job} to finish")

    def running_master_ip(self, namespace: str, test: str, timeout: float = 60) -> str:
        def running() -> str | None:
            pods = self.pods(namespace, f"{test}-master")
            return next(
                (p["status"]["podIP"] for p in pods if p["status"].get("phase") == "Running"),
                None,
            )

        return wait_until(running, timeout=timeout, what=f"the master of {namespace}/{test}")


@pytest.fixture(scope="module")
def operator_env() -> dict[str, str]:
    """Settings of the operator beyond the module's defaults; a module may override it."""
    return {}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, operator_env: dict[str, str]
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("e2e")
    kube = FakeKube(
        kubelet=KubeletSettings(root=root / "node", fail_unknown_images=True),
        authorization="RBAC",
    ).start()
    operator = None
    try:
        kube.jobs.auto = True
        kube.apply_yaml(crd_text())
        grant_operator_role(kube)
        operator = OperatorProcess(
            kube.write_kubeconfig(root / "operator-kubeconfig", user=OPERATOR_USER),
            root / "operator.log",
            {"POD_HEALTH_GRACE_SECONDS": str(POD_HEALTH_GRACE_SECONDS), **operator_env},
        )
        operator.wait_ready()
        client = Client(
            config=KubeConfig.from_file(kube.write_kubeconfig(root / "kubeconfig")),
            field_manager="e2e",
        )
        yield Cluster(kube, client, operator, root / "node")
        operator.stop()
        # A rule the ClusterRole lacks must not pass unnoticed where the operator tolerates a 403.
        assert refused(kube) == [], "the ClusterRole does not grant what the operator asked for"
        assert "forbidden" not in operator.log().lower(), operator.log()
    finally:
        if operator is not None:
            operator.stop()
        kube.stop()
    # Stopping the cluster stops its kubelet, which must leave no Locust process behind.
    assert locust_processes() == []


def locusttest(
    name: str,
    namespace: str,
    *,
    master_seed: str,
    workers: int,
    config_map: str,
    worker_seed: str = f"--locustfile {SRC}/locustfile.py",
    image: str = IMAGE,
) -> dict[str, Any]:
    """A v2 LocustTest, with the operator's defaults for everything but the autoquit window."""
    spec = {
        "master": {"command": master_seed,
                   "autoquit": {"enabled": True, "timeout": AUTOQUIT_SECONDS}},
        "worker": {"command": worker_seed, "replicas": workers},
        "testFiles": {"configMapRef": config_map},
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": image, **spec},
    }


def locustfile(name: str, namespace: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"locustfile.py": source},
    }
