"""The metadata of a test's children: labels, annotations and the owner reference."""

from __future__ import annotations

from lightkube.models.meta_v1 import ObjectMeta, OwnerReference

from ..api.naming import role_name
from ..api.types import Role, TestSpec
from ..config import OperatorConfig
from ..crds import KIND
from .otel import uses_metrics_exporter

APP_LABEL = "app"
TEST_NAME_LABEL = "performance-test-name"
POD_NAME_LABEL = "performance-test-pod-name"
MANAGED_BY = ("managed-by", "locust-k8s-operator")
# The Service selects on the pod name label and the operator finds its objects by managed-by, so a
# user's labels must not replace them.
PROTECTED_LABELS = frozenset({POD_NAME_LABEL, MANAGED_BY[0]})
# The test's metadata.generation that each child was built from: the controller compares it with
# the test's current generation to tell a spec changed after creation (SpecDrifted).
GENERATION_ANNOTATION = "locust.io/generation"


def operator_labels(spec: TestSpec, role: Role) -> dict[str, str]:
    """The labels the operator puts on a role's pods, Job (and, for the master, Service)."""
    return {
        APP_LABEL: spec.name,
        TEST_NAME_LABEL: spec.name,
        POD_NAME_LABEL: role_name(spec.name, role),
        MANAGED_BY[0]: MANAGED_BY[1],
    }


def pod_labels(spec: TestSpec, role: Role) -> dict[str, str]:
    """Operator labels, then the user's role labels, which may not replace the protected ones."""
    labels = operator_labels(spec, role)
    labels.update(
        (key, value)
        for key, value in spec.role(role).labels.items()
        if key not in PROTECTED_LABELS
    )
    return labels


def pod_annotations(spec: TestSpec, config: OperatorConfig, role: Role) -> dict[str, str]:
    """Prometheus scrape annotations where the exporter runs (the master pod), then the user's."""
    scraped = role == "master" and uses_metrics_exporter(spec)
    annotations = _prometheus_annotations(config) if scraped else {}
    annotations.update(spec.role(role).annotations)
    return annotations


def _prometheus_annotations(config: OperatorConfig) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": str(config.metrics_exporter.port),
    }


def owner_reference(spec: TestSpec) -> OwnerReference | None:
    """The controller reference to the test, or None offline, where the test has no uid yet."""
    if spec.uid is None:
        return None
    return OwnerReference(
        apiVersion=spec.api_version,
        kind=KIND,
        name=spec.name,
        uid=spec.uid,
        controller=True,
        blockOwnerDeletion=True,
    )


def object_metadata(spec: TestSpec, role: Role) -> ObjectMeta:
    """A child's own metadata: its name, the operator's labels, the generation it was built
    from, and the owner reference."""
    owner = owner_reference(spec)
    return ObjectMeta(
        name=role_name(spec.name, role),
        namespace=spec.namespace,
        labels=operator_labels(spec, role),
        annotations={GENERATION_ANNOTATION: str(spec.generation)},
        ownerReferences=[owner] if owner else None,
    )
