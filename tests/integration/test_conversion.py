"""v1 and v2 side by side: the operator's conversion webhook, called by the API server over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml

from fakekube.sandbox import free_port
from fakekube.server import FakeKube
from reconciler.crds import ConversionWebhook, crd_manifest
from reconciler.api.types import LocustTestV1, LocustTestV2
from tests.certs import serving_certificate
from tests.integration.conftest import AS_ADMIN
from tests.integration.objects import (
    create,
    locusttest,
    locusttest_v1,
    status,
    wait_for_children,
)

SERVICE = ("model", "locust-operator")  # where the charm's Service would be
DEPRECATION = "locust.io/v1 LocustTest is deprecated, migrate to locust.io/v2"


@pytest.fixture
def webhook(cluster: FakeKube, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A serving certificate for the operator, and the CRD pointing the API server at it."""
    namespace, name = SERVICE
    certificate = serving_certificate(
        f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"
    )
    cert_dir = certificate.write(tmp_path / "webhook")
    port = free_port()
    cluster.service_resolver = lambda ns, svc, svc_port: ("127.0.0.1", port)
    crd = crd_manifest(ConversionWebhook(name, namespace, 443, certificate.ca_pem))
    cluster.apply_yaml(yaml.safe_dump(crd))
    yield {"ENABLE_WEBHOOKS": "true", "WEBHOOK_PORT": str(port), "WEBHOOK_CERT_DIR": str(cert_dir)}


def test_a_v1_test_is_stored_as_v2_and_reconciled(client, start_operator, webhook):
    start_operator(**webhook)
    create(client, locusttest_v1("legacy", workers=4))

    as_v2 = client.get(LocustTestV2, "legacy", namespace="default")
    assert as_v2.spec["worker"] == {
        "command": "--locustfile /lotest/src/locustfile.py",
        "replicas": 4,
    }
    assert as_v2.spec["master"]["autoquit"] == {"enabled": True, "timeout": 60}
    assert as_v2.spec["testFiles"]["configMapRef"] == "scripts"
    found = wait_for_children(client, "legacy")
    assert found["worker"].spec.parallelism == 4
    assert found["master"].metadata.ownerReferences[0].uid == as_v2.metadata.uid


def test_a_v2_test_reads_back_as_v1_with_its_status(client, start_operator, webhook):
    start_operator(**webhook)
    create(client, locusttest("modern", workers=2))
    wait_for_children(client, "modern")
    phase = status(client, "modern").get("phase")
    assert phase

    as_v1 = client.get(LocustTestV1, "modern", namespace="default")
    assert as_v1.spec["workerReplicas"] == 2
    assert as_v1.spec["masterCommandSeed"].startswith("--locustfile /lotest/src/locustfile.py")
    assert as_v1.spec["configMap"] == "scripts"
    assert as_v1.status["phase"] == phase


def test_v1_requests_carry_the_deprecation_warning(cluster, start_operator, webhook):
    start_operator(**webhook)
    response = httpx2.get(
        f"{cluster.url}/apis/locust.io/v1/namespaces/default/locusttests", headers=AS_ADMIN
    )
    assert response.status_code == 200
    assert DEPRECATION in response.headers.get("warning", "")
    modern = httpx2.get(
        f"{cluster.url}/apis/locust.io/v2/namespaces/default/locusttests", headers=AS_ADMIN
    )
    assert "warning" not in modern.headers


def test_without_the_webhook_only_v2_is_served(cluster):
    response = httpx2.get(
        f"{cluster.url}/apis/locust.io/v1/namespaces/default/locusttests", headers=AS_ADMIN
    )
    assert response.status_code == 404


def test_readiness_does_not_wait_for_the_tests_to_be_readable(cluster, start_operator, webhook):
    # After an upgrade, tests stored as v1 are read through this very webhook, which the apiserver
    # reaches only through ready pods: readiness must not depend on reading them.
    cluster.faults.add(verb="list", resource="locusttests", status=500)
    operator = start_operator(**webhook)  # waits for /readyz
    assert operator.get("/readyz") == (200, "ok\n")
    assert "Lost the watch of locusttests" in operator.log()
