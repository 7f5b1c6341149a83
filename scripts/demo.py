"""The demo: a fake cluster, the operator as a separate process, and the example LocustTest.

Starts the built-in fake Kubernetes API server, installs the CRD (as `locust-operator crd | kubectl
apply -f -` would), starts `locust-operator run` against it through an ordinary kubeconfig, applies
everything in examples/, waits for the test's Service and Jobs, prints what the operator created and
what it logged, then stops everything.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from lightkube import Client  # noqa: E402
from lightkube.codecs import load_all_yaml  # noqa: E402
from lightkube.config.kubeconfig import KubeConfig  # noqa: E402
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition  # noqa: E402
from lightkube.resources.batch_v1 import Job  # noqa: E402
from lightkube.resources.core_v1 import Service  # noqa: E402

from reconciler.crds import crd_text  # noqa: E402
from reconciler.informer import LocustTestV1  # noqa: E402
from tests.sandbox import FakeKubeProcess, OperatorProcess  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="locust-operator-demo-") as tmp:
        workdir = Path(tmp)
        print("Starting the fake Kubernetes API server ...")
        cluster = FakeKubeProcess(workdir)
        operator = None
        try:
            client = Client(config=KubeConfig.from_file(cluster.kubeconfig),
                            field_manager="demo")
            for crd in load_all_yaml(crd_text()):
                client.create(crd)
            _wait(lambda: _established(client), "the CRD to be established")
            print(f"  {cluster.url}  (CRD locusttests.locust.io installed)")

            print("Starting `locust-operator run` ...")
            operator = OperatorProcess(cluster.kubeconfig, workdir / "operator.log")
            seconds = operator.wait_ready()
            print(f"  ready in {seconds:.2f}s (/readyz on port {operator.health_port})")

            print("Applying examples/ ...")
            tests = []
            for path in sorted((ROOT / "examples").glob("*.yaml")):
                for obj in load_all_yaml(path.read_text(), create_resources_for_crds=True):
                    client.create(obj)
                    print(f"  {obj.kind.lower()}/{obj.metadata.name} created")
                    if obj.kind == "LocustTest":
                        tests.append(obj)
            for test in tests:
                _wait(lambda t=test: _children_exist(client, t), f"the children of {test.metadata.name}")
            print()
            for test in tests:
                _summary(client, test.metadata.name, test.metadata.namespace or "default")
        finally:
            code = operator.stop() if operator else None
            cluster.stop()
        print("Operator log:")
        for line in operator.log().splitlines():
            print(f"  {line}")
        print(f"\nOperator stopped with exit code {code} after SIGTERM; fake cluster stopped.")
        return 0 if code == 0 else 1


def _wait(condition, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _established(client: Client) -> bool:
    crd = client.get(CustomResourceDefinition, "locusttests.locust.io")
    conditions = (crd.status.conditions if crd.status else None) or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _children_exist(client: Client, test) -> bool:
    prefix = test.metadata.name.replace(".", "-")
    namespace = test.metadata.namespace or "default"
    names = {s.metadata.name for s in client.list(Service, namespace=namespace)}
    names |= {f"job/{j.metadata.name}" for j in client.list(Job, namespace=namespace)}
    return {f"{prefix}-master", f"job/{prefix}-master", f"job/{prefix}-worker"} <= names


def _age(created) -> str:
    seconds = int((datetime.now(timezone.utc) - created).total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()


def _summary(client: Client, name: str, namespace: str) -> None:
    test = client.get(LocustTestV1, name, namespace=namespace)
    spec = test.spec
    print(f"$ kubectl get lotest,svc,jobs -n {namespace}")
    _table([["LOCUSTTEST", "WORKERS", "IMAGE", "AGE"],
            [name, str(spec["workerReplicas"]), spec["image"],
             _age(test.metadata.creationTimestamp)]])
    prefix = name.replace(".", "-")
    service = client.get(Service, f"{prefix}-master", namespace=namespace)
    ports = ",".join(f"{p.port}/{p.protocol}" for p in service.spec.ports)
    _table([["SERVICE", "TYPE", "CLUSTER-IP", "PORTS", "OWNER"],
            [service.metadata.name, service.spec.type or "ClusterIP",
             service.spec.clusterIP or "-", ports, _owner(service)]])
    rows = [["JOB", "PARALLELISM", "COMPLETIONS", "BACKOFF-LIMIT", "OWNER"]]
    for role in ("master", "worker"):
        job = client.get(Job, f"{prefix}-{role}", namespace=namespace)
        rows.append([job.metadata.name, str(job.spec.parallelism),
                     str(job.spec.completions or "-"), str(job.spec.backoffLimit), _owner(job)])
    _table(rows)
    master = client.get(Job, f"{prefix}-master", namespace=namespace)
    container = master.spec.template.spec.containers[0]
    print(f"  master args: {' '.join(container.args)}")
    worker = client.get(Job, f"{prefix}-worker", namespace=namespace)
    print(f"  worker args: {' '.join(worker.spec.template.spec.containers[0].args)}")
    print()


def _owner(obj) -> str:
    owners = obj.metadata.ownerReferences or []
    return ", ".join(f"{o.kind}/{o.name}" for o in owners) or "-"


if __name__ == "__main__":
    sys.exit(main())
