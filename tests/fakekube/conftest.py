"""Fixtures for the fake API server's own tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.generic_resource import create_namespaced_resource

from fakekube import FakeKube

CRD_FILE = Path(__file__).with_name("widgets_crd.yaml")
Widget = create_namespaced_resource("example.com", "v1", "Widget", "widgets")


@pytest.fixture
def http(fakekube: FakeKube) -> Iterator[httpx.Client]:
    """Raw HTTP to the server, for what a typed client would hide (status codes, headers, streams)."""
    with httpx.Client(base_url=fakekube.url, timeout=10) as client:
        yield client


@pytest.fixture
def client(kubeconfig: Path) -> Iterator[Client]:
    """lightkube, configured from the kubeconfig file as any user would."""
    kube = Client(config=KubeConfig.from_file(kubeconfig), field_manager="tests")
    yield kube
    kube.close()


@pytest.fixture
def widgets(fakekube: FakeKube) -> dict[str, Any]:
    """The test CRD (a LocustTest-like schema), installed."""
    return fakekube.apply_yaml(CRD_FILE.read_text())[0]


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"image": "locustio/locust:2.31", "replicas": 2, **spec},
    }


def configmap(name: str, namespace: str = "default", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}


def job(name: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox:1.36"}],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": template, **spec},
    }


def load_yaml(text: str) -> Any:
    return yaml.safe_load(text)
