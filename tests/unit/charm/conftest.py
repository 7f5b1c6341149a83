"""Shared fixtures for the charm's state-transition tests (ops.testing)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx2
import ops
import pytest
from ops import testing

import charm_config
import webhook_tls
import workload
from charm import WEBHOOK_TLS_LABEL, LocustOperatorCharm
from fakekube.server import FakeKube
from webhook_tls import WebhookTLS

APP = "locust-operator"
MODEL = "load"  # the model's name is its Kubernetes namespace
VERSION = "0.1.0"
DNS_NAMES = webhook_tls.service_dns_names(APP, MODEL)
# The webhook certificate the leader issued in an earlier hook (made once: keys take a moment).
TLS = webhook_tls.ensure(None, DNS_NAMES, datetime.now(timezone.utc))


@pytest.fixture(autouse=True)
def no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reaches a real cluster: by default there is no kubeconfig at all.

    Tests that need the API use the `kube` fixture, which points KUBECONFIG at a fake server.
    """
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


@pytest.fixture
def ctx() -> testing.Context[LocustOperatorCharm]:
    return testing.Context(LocustOperatorCharm, app_name=APP)


def container(*, can_connect: bool = True, **kwargs) -> testing.Container:
    """The workload container, with `locust-operator version` answering."""
    kwargs.setdefault(
        "execs", {testing.Exec(list(workload.VERSION_COMMAND), stdout=f"{VERSION}\n")}
    )
    return testing.Container(workload.CONTAINER, can_connect=can_connect, **kwargs)


def running_container(
    env: dict[str, str], *, ready: bool = True, running: bool = True, **kwargs
) -> testing.Container:
    """A container with the reconciler's layer for `env` (as a previous hook left it).

    `running=False`: the service is stopped, as after a container restart.
    """
    status = ops.pebble.CheckStatus.UP if ready else ops.pebble.CheckStatus.DOWN
    service = ops.pebble.ServiceStatus.ACTIVE if running else ops.pebble.ServiceStatus.INACTIVE
    return container(
        layers={workload.LAYER: ops.pebble.Layer(workload.layer(env))},
        service_statuses={workload.SERVICE: service},
        check_infos={
            testing.CheckInfo(
                workload.READY_CHECK, level=ops.pebble.CheckLevel.READY, status=status
            ),
            testing.CheckInfo(workload.ALIVE_CHECK, level=ops.pebble.CheckLevel.ALIVE),
        },
        **kwargs,
    )


def tls_secret(tls: WebhookTLS = TLS, **kwargs) -> testing.Secret:
    """The application secret in which the leader keeps the webhook certificate."""
    return testing.Secret(tls.to_secret(), owner="app", label=WEBHOOK_TLS_LABEL, **kwargs)


def state(*, leader: bool = False, tls: WebhookTLS | None = TLS, **kwargs) -> testing.State:
    """The unit's state; `tls`: the webhook certificate the leader has issued (None: not yet)."""
    kwargs.setdefault("containers", {container()})
    secrets = set(kwargs.pop("secrets", ()))
    if tls is not None:
        secrets.add(tls_secret(tls))
    return testing.State(leader=leader, model=testing.Model(name=MODEL), secrets=secrets, **kwargs)


def webhook_secret(out: testing.State) -> testing.Secret:
    return next(s for s in out.secrets if s.label == WEBHOOK_TLS_LABEL)


def cert_dir(ctx: testing.Context) -> Path:
    """The webhook certificate directory in the simulated workload container's filesystem."""
    root = testing.Container(workload.CONTAINER).get_filesystem(ctx)
    return root / charm_config.WEBHOOK_CERT_DIR.lstrip("/")


def pushed_files(ctx: testing.Context) -> dict[str, str]:
    """The files in the webhook certificate directory, by name."""
    return {path.name: path.read_text() for path in sorted(cert_dir(ctx).glob("*"))}


def certificate_mounts(directory: Path, tls: WebhookTLS = TLS) -> dict[str, testing.Mount]:
    """Container mounts holding the certificate files as an earlier hook pushed them (the
    simulated filesystem is wiped between runs; mounts are not)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_text(tls.cert)
    (directory / "tls.key").write_text(tls.key)
    return {"webhook": testing.Mount(location=charm_config.WEBHOOK_CERT_DIR, source=directory)}


def default_env(**overrides: str) -> dict[str, str]:
    """The environment the charm gives the reconciler for the default config."""
    env = charm_config.operator_env(charm_config.CharmConfig(), None, app=APP, namespace=MODEL)
    env.update(overrides)
    return env


NAMESPACES = (MODEL, "staging")
CRD = ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "locusttests.locust.io")

LABELS = {
    "app.kubernetes.io/managed-by": "juju",
    "app.kubernetes.io/name": "locust-operator",
    "app.kubernetes.io/instance": f"{APP}-{MODEL}",
}

# (apiGroup, resource) -> verbs: exactly what the reconciler and the actions use.
EXPECTED_RULES = {
    ("locust.io", "locusttests"): {"get", "list", "watch"},
    ("locust.io", "locusttests/status"): {"patch"},
    ("locust.io", "locusttests/finalizers"): {"update"},
    ("", "services"): {"get", "list", "watch", "create", "delete"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "pods"): {"list", "watch", "delete"},
    ("", "pods/proxy"): {"get", "create"},
    ("", "configmaps"): {"get", "create"},
    ("", "events"): {"create", "patch", "list"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}


def established(crd: dict | None) -> dict | None:
    """The CRD once the API server has accepted its names, else None."""
    conditions = (crd or {}).get("status", {}).get("conditions", [])
    if {c["type"]: c["status"] for c in conditions}.get("Established") == "True":
        return crd
    return None


@pytest.fixture
def kube(fakekube: FakeKube, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """The fake API server, with the model's namespace and one more; the charm reaches it through
    KUBECONFIG, as lightkube does outside a pod. Its request log starts empty."""
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    for namespace in NAMESPACES:
        fakekube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    fakekube.clear_requests()
    return fakekube


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[httpx2.Request]:
    """Every HTTP request lightkube sends, with its query string (the fake's log has no query)."""
    requests: list[httpx2.Request] = []
    send = httpx2.Client.send

    def spy(self: httpx2.Client, request: httpx2.Request, **kwargs):
        requests.append(request)
        return send(self, request, **kwargs)

    monkeypatch.setattr(httpx2.Client, "send", spy)
    return requests
