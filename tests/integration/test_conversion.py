"""v1 and v2 side by side: the operator's conversion webhook, called by the API server (HTTPS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import yaml
from lightkube.types import PatchType

from fakekube.sandbox import free_port
from fakekube.server import FakeKube
from reconciler.api.types import LocustTestV1, LocustTestV2
from reconciler.crds import ConversionWebhook, crd_manifest
from tests.certs import serving_certificate
from tests.integration.conftest import AS_ADMIN, wait_until
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
    # The status is written after the children: wait for it rather than race it.
    phase = wait_until(lambda: status(client, "modern").get("phase"), what="a phase")

    as_v1 = client.get(LocustTestV1, "modern", namespace="default")
    assert as_v1.spec["workerReplicas"] == 2
    assert as_v1.spec["masterCommandSeed"].startswith("--locustfile /lotest/src/locustfile.py")
    assert as_v1.spec["configMap"] == "scripts"
    assert as_v1.status["phase"] == phase


def full_locusttest(name: str) -> dict:
    """A v2 test using what v1 cannot say."""
    return locusttest(
        name,
        workers=2,
        master={
            "command": "--locustfile /tests/locustfile.py --users 10 --run-time 1m",
            "autostart": False,
            "autoquit": {"enabled": True, "timeout": 15},
            "extraArgs": ["--headless"],
            "resources": {"limits": {"cpu": "1", "memory": "512Mi"}},
            "labels": {"tier": "master"},
        },
        worker={
            "command": "--locustfile /tests/locustfile.py",
            "replicas": 2,
            "extraArgs": ["--processes", "2"],
            "resources": {"requests": {"cpu": "100m"}},
        },
        testFiles={"configMapRef": "scripts", "srcMountPath": "/tests"},
        scheduling={
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "pool", "operator": "In", "values": ["load", "spare"]},
                                    {"key": "spot", "operator": "DoesNotExist"},
                                ]
                            }
                        ]
                    }
                }
            },
            "tolerations": [
                {
                    "key": "dedicated",
                    "operator": "Equal",
                    "value": "locust",
                    "effect": "NoExecute",
                    "tolerationSeconds": 60,
                }
            ],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "runtimeClassName": "",
        },
        env={"variables": [{"name": "TARGET", "value": "http://app"}]},
        volumes=[{"name": "results", "emptyDir": {}}],
        volumeMounts=[{"name": "results", "mountPath": "/results", "target": "master"}],
        security={"containerSecurityContext": {"allowPrivilegeEscalation": False}},
        observability={"openTelemetry": {"enabled": True, "endpoint": "otel:4317"}},
    )


def test_a_label_patch_through_v1_keeps_the_stored_v2_spec(client, start_operator, webhook):
    start_operator(**webhook)
    create(client, full_locusttest("full"))
    before = client.get(LocustTestV2, "full", namespace="default")

    client.patch(
        LocustTestV1,
        "full",
        {"metadata": {"labels": {"team": "perf"}}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )

    after = client.get(LocustTestV2, "full", namespace="default")
    assert after.spec == before.spec
    assert after.spec["master"]["autostart"] is False
    assert after.spec["master"]["autoquit"] == {"enabled": True, "timeout": 15}
    assert after.metadata.labels == {"team": "perf"}
    assert after.metadata.annotations is None
    assert after.metadata.generation == before.metadata.generation
    as_v1 = client.get(LocustTestV1, "full", namespace="default")
    assert as_v1.metadata.labels == {"team": "perf"}
    assert as_v1.spec["workerReplicas"] == 2


def test_a_replica_patch_through_v1_changes_only_the_replicas(client, start_operator, webhook):
    start_operator(**webhook)
    create(client, full_locusttest("scaled"))
    before = client.get(LocustTestV2, "scaled", namespace="default")

    client.patch(
        LocustTestV1,
        "scaled",
        {"spec": {"workerReplicas": 5}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )

    after = client.get(LocustTestV2, "scaled", namespace="default")
    assert after.spec == {**before.spec, "worker": {**before.spec["worker"], "replicas": 5}}


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
