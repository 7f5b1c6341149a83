"""LocustTests for the integration tests, and what they read back from the API server."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from lightkube import ApiError, Client
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event, Service

from reconciler.crds import crd_manifest
from reconciler.api.types import LocustTestV1, LocustTestV2
from fakekube.server import FakeKube
from tests.integration.conftest import wait_until

IMAGE = "locustio/locust:2.47.0"


def locusttest(
    name: str = "team.perftest", namespace: str = "default", workers: int = 3, **spec: Any
) -> dict[str, Any]:
    """A v2 LocustTest, as users write them now."""
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": IMAGE,
            "master": {
                "command": "--locustfile /lotest/src/locustfile.py --users 10 --run-time 1m"
            },
            "worker": {"command": "--locustfile /lotest/src/locustfile.py", "replicas": workers},
            "testFiles": {"configMapRef": "scripts"},
            **spec,
        },
    }


def locusttest_v1(
    name: str = "team.perftest", namespace: str = "default", workers: int = 3
) -> dict[str, Any]:
    """The same test in the deprecated v1 API."""
    return {
        "apiVersion": "locust.io/v1",
        "kind": "LocustTest",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": IMAGE,
            "masterCommandSeed": "--locustfile /lotest/src/locustfile.py --users 10 --run-time 1m",
            "workerCommandSeed": "--locustfile /lotest/src/locustfile.py",
            "workerReplicas": workers,
            "configMap": "scripts",
        },
    }


def create_bypassing_validation(cluster: FakeKube, doc: dict[str, Any]) -> None:
    """Create a test the CRD's CEL rules would reject, as one stored before those rules existed.

    CEL rules apply to writes, not to what is already stored: after an upgrade of the CRD an old
    object can break a rule, and only the reconciler is left to notice.
    """
    current = crd_manifest()
    cluster.apply_yaml(yaml.safe_dump(_without_cel(copy.deepcopy(current))))
    cluster.create(copy.deepcopy(doc))
    cluster.apply_yaml(yaml.safe_dump(current))


def _without_cel(node: Any) -> Any:
    if isinstance(node, dict):
        node.pop("x-kubernetes-validations", None)
        for value in node.values():
            _without_cel(value)
    elif isinstance(node, list):
        for value in node:
            _without_cel(value)
    return node


def create(client: Client, doc: dict[str, Any]):
    resource = LocustTestV1 if doc["apiVersion"].endswith("/v1") else LocustTestV2
    return client.create(resource.from_dict(copy.deepcopy(doc)))


def get(client: Client, name: str, namespace: str = "default"):
    return client.get(LocustTestV2, name, namespace=namespace)


def status(client: Client, name: str, namespace: str = "default") -> dict[str, Any]:
    return get(client, name, namespace).to_dict().get("status") or {}


def conditions(current: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in current.get("conditions") or ()}


def wait_for_phase(client: Client, name: str, phase: str, timeout: float = 15) -> dict[str, Any]:
    return wait_until(
        lambda: (s := status(client, name)).get("phase") == phase and s,
        timeout=timeout,
        what=f"{name} to reach {phase}",
    )


def children(client: Client, name: str, namespace: str = "default") -> dict[str, Any]:
    prefix = name.replace(".", "-")
    found = {}
    for key, resource, child in (
        ("service", Service, f"{prefix}-master"),
        ("master", Job, f"{prefix}-master"),
        ("worker", Job, f"{prefix}-worker"),
    ):
        try:
            found[key] = client.get(resource, child, namespace=namespace)
        except ApiError as error:
            if error.status.code != 404:
                raise
    return found


def wait_for_children(client: Client, name: str, namespace: str = "default") -> dict[str, Any]:
    return wait_until(
        lambda: (c := children(client, name, namespace)) and len(c) == 3 and c,
        what=f"the children of {namespace}/{name}",
    )


def events_for(client: Client, name: str, namespace: str = "default") -> list:
    return [
        e
        for e in client.list(Event, namespace=namespace)
        if e.involvedObject.name == name and e.involvedObject.kind == "LocustTest"
    ]


def reasons(client: Client, name: str, namespace: str = "default") -> list[str]:
    return [e.reason for e in events_for(client, name, namespace)]
