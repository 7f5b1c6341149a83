"""The master Service: workers reach the master through it; Prometheus scrapes the exporter."""

from __future__ import annotations

from lightkube.models.core_v1 import ServicePort, ServiceSpec
from lightkube.resources.core_v1 import Service

from ..api.naming import child_names
from ..api.types import TestSpec
from ..config import OperatorConfig
from .constants import MASTER_PORT, MASTER_SECONDARY_PORT
from .labels import POD_NAME_LABEL, object_metadata
from .otel import uses_metrics_exporter


def build_service(spec: TestSpec, config: OperatorConfig) -> Service:
    """The web UI (8089) is deliberately not exposed, as upstream."""
    ports = [
        ServicePort(name=f"port{MASTER_PORT}", port=MASTER_PORT, protocol="TCP"),
        ServicePort(
            name=f"port{MASTER_SECONDARY_PORT}", port=MASTER_SECONDARY_PORT, protocol="TCP"
        ),
    ]
    if uses_metrics_exporter(spec):
        ports.append(
            ServicePort(
                name="prometheus-metrics", port=config.metrics_exporter.port, protocol="TCP"
            )
        )
    return Service(
        metadata=object_metadata(spec, "master"),
        spec=ServiceSpec(selector={POD_NAME_LABEL: child_names(spec.name).service}, ports=ports),
    )
