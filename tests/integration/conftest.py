"""Fixtures that run `locust-operator run` as a separate process against the fake API server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig

from reconciler.crds import crd_text
from fakekube.server import FakeKube
from fakekube.sandbox import OperatorProcess


def wait_until(condition: Callable[[], object], timeout: float = 15.0, what: str = "") -> object:
    """Poll `condition` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)


@pytest.fixture
def cluster(fakekube: FakeKube) -> FakeKube:
    """The fake API server with the LocustTest CRD installed, as `locust-operator crd | kubectl
    apply -f -` installs it."""
    fakekube.apply_yaml(crd_text())
    return fakekube


@pytest.fixture
def kubeconfig(cluster: FakeKube, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def client(kubeconfig: Path) -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig), field_manager="tests")


OPERATOR_USER = "locust-operator"


@pytest.fixture
def start_operator(cluster: FakeKube, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators (each waits for /readyz); every one still running is stopped afterwards.

    The operators authenticate as their own user, so the request log tells their requests apart.
    """
    kubeconfig = cluster.write_kubeconfig(tmp_path / "operator-kubeconfig", user=OPERATOR_USER)
    started: list[OperatorProcess] = []

    def start(wait: bool = True, **env: str) -> OperatorProcess:
        operator = OperatorProcess(kubeconfig, tmp_path / f"operator-{len(started)}.log", env)
        started.append(operator)
        if wait:
            operator.wait_ready()
        return operator

    yield start
    for operator in started:
        operator.stop()
