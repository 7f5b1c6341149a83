"""One fake cluster that runs pods for real, shared by the end-to-end tests of a module.

The fake API server (with its Job controller in auto mode and the local kubelet) runs in this
process; the operator runs as its own process, as in production; every Locust master and worker is
a process the kubelet started. Locust is never imported here.

A v1 master quits 60 s after its run (``--autoquit 60``, upstream's contract), so a full run takes
over a minute: the scenarios share one cluster and one operator and run side by side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig

from reconciler.crds import crd_manifest, crd_text
from tests.fakekube.fixtures import locust_processes
from tests.fakekube.kubelet import KubeletSettings, ProcessInfo
from tests.fakekube.server import FakeKube
from tests.integration.conftest import OPERATOR_USER, wait_until
from tests.sandbox import OperatorProcess, TargetServer

IMAGE = "locustio/locust:2.47.0"
SRC = "/lotest/src"
#: The newest LocustTest version the shipped CRD serves: the one users write.
API_VERSION = "locust.io/" + max(
    (v["name"] for v in crd_manifest()["spec"]["versions"] if v.get("served")),
    key=lambda name: int(name.lstrip("v")),
)


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

    def target(self, name: str, namespace: str) -> TargetServer:
        """An HTTP server for a test to load, reachable as the Service ``name``."""
        server = TargetServer()
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
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("e2e")
    kube = FakeKube(kubelet=KubeletSettings(root=root / "node")).start()
    operator = None
    try:
        kube.jobs.auto = True
        kube.apply_yaml(crd_text())
        operator = OperatorProcess(
            kube.write_kubeconfig(root / "operator-kubeconfig", user=OPERATOR_USER),
            root / "operator.log",
        )
        operator.wait_ready()
        client = Client(
            config=KubeConfig.from_file(kube.write_kubeconfig(root / "kubeconfig")),
            field_manager="e2e",
        )
        yield Cluster(kube, client, operator, root / "node")
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
) -> dict[str, Any]:
    """A LocustTest in ``API_VERSION``, with the operator's defaults for everything else (the
    master's ``--autoquit 60`` included)."""
    if API_VERSION == "locust.io/v1":
        spec = {
            "masterCommandSeed": master_seed,
            "workerCommandSeed": worker_seed,
            "workerReplicas": workers,
            "configMap": config_map,
        }
    else:
        spec = {
            "master": {"command": master_seed},
            "worker": {"command": worker_seed, "replicas": workers},
            "testFiles": {"configMapRef": config_map},
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": IMAGE, **spec},
    }


def locustfile(name: str, namespace: str, source: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"locustfile.py": source},
    }
