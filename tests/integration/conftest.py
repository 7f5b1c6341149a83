"""Fixtures that run `locust-operator run` as a separate process against the fake API server.

The fake enforces RBAC (and owner-reference permissions, as OpenShift does): the operator runs as
the application's ServiceAccount, bound to the ClusterRole the charm renders, so a rule the role
lacks fails the test that needs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig

from fakekube import service_account_user
from fakekube.sandbox import OperatorProcess
from fakekube.server import TOKEN, FakeKube
from reconciler.crds import crd_text

RBAC_TEMPLATE = Path(__file__).resolve().parents[2] / "src" / "templates" / "rbac.yaml.j2"
# As Juju deploys the charm: the model is the namespace, the ServiceAccount is named after the
# application.
APP = "locust-operator"
MODEL = "model"
OPERATOR_USER = service_account_user(MODEL, APP)
#: Raw HTTP as the cluster administrator (the default kubeconfig's user).
AS_ADMIN = {"Authorization": f"Bearer {TOKEN}"}


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


def operator_rbac(watch_namespaces: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The RBAC the charm renders for the application: a ClusterRole and its binding, or, with
    `watch_namespaces`, Roles there and one for the Lease in the model's namespace."""
    text = jinja2.Template(RBAC_TEMPLATE.read_text(), undefined=jinja2.StrictUndefined).render(
        name=f"{APP}-{MODEL}",
        labels={},
        service_account=APP,
        namespace=MODEL,
        namespaces=list(watch_namespaces),
    )
    return [doc for doc in yaml.safe_load_all(text) if doc]


def grant_operator_role(kube: FakeKube, watch_namespaces: tuple[str, ...] = ()) -> None:
    """The application's namespace and ServiceAccount, bound to the charm's rules."""
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": MODEL}})
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": APP, "namespace": MODEL},
        }
    )
    for obj in operator_rbac(watch_namespaces):
        kube.create(obj)


def refused(kube: FakeKube, user: str = OPERATOR_USER) -> list[str]:
    """Requests of `user` the server refused as unauthorized (403), as "verb resource path"."""
    return [
        f"{r.verb} {r.resource} {r.path}"
        for r in kube.requests
        if r.user == user and r.status_code == 403
    ]


@pytest.fixture
def fakekube() -> Iterator[FakeKube]:
    with FakeKube(authorization="RBAC") as server:
        yield server


@pytest.fixture
def cluster(fakekube: FakeKube) -> FakeKube:
    """The fake API server with the LocustTest CRD installed, as `locust-operator crd | kubectl
    apply -f -` installs it, and the charm's RBAC for the operator's ServiceAccount."""
    fakekube.apply_yaml(crd_text())
    grant_operator_role(fakekube)
    return fakekube


@pytest.fixture
def kubeconfig(cluster: FakeKube, tmp_path: Path) -> Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def client(kubeconfig: Path) -> Client:
    return Client(config=KubeConfig.from_file(kubeconfig), field_manager="tests")


@pytest.fixture
def start_operator(cluster: FakeKube, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """Start operators (each waits for /readyz); every one still running is stopped afterwards.

    The operators authenticate as the application's ServiceAccount (so the request log tells
    their requests apart). Afterwards the test fails if the server refused any of their
    requests, or an operator logged a refusal: some tolerate a 403 and carry on, which must not
    hide a rule missing from the ClusterRole.
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
    assert refused(cluster) == [], "the ClusterRole does not grant what the operator asked for"
    for operator in started:
        assert "forbidden" not in operator.log().lower(), operator.log()
