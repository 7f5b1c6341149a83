"""The ConfigMap that keeps Locust's own HTML report after the test's pods are gone."""

from __future__ import annotations

import base64
import gzip

from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from ..api.types import TestSpec
from .labels import APP_LABEL, MANAGED_BY, TEST_NAME_LABEL, owner_reference

REPORT_KEY = "report.html.gz"
# What the API server accepts in one ConfigMap (data and binaryData together).
MAX_CONFIG_MAP_BYTES = 1024 * 1024


class ReportTooLarge(ValueError):
    """Even compressed, the report does not fit in a ConfigMap."""


def report_name(test_name: str) -> str:
    return f"{test_name}-report"


def build_report(spec: TestSpec, report_html: bytes) -> ConfigMap:
    """The report, gzip-compressed: raw, Locust's report is close to the ConfigMap limit already
    (its scripts come inline) and grows with the run."""
    compressed = gzip.compress(report_html, compresslevel=9, mtime=0)
    if len(compressed) > MAX_CONFIG_MAP_BYTES:
        raise ReportTooLarge(
            f"Locust's report is {len(compressed)} bytes compressed, over the "
            f"{MAX_CONFIG_MAP_BYTES} bytes a ConfigMap can hold"
        )
    owner = owner_reference(spec)
    return ConfigMap(
        metadata=ObjectMeta(
            name=report_name(spec.name),
            namespace=spec.namespace,
            labels={
                APP_LABEL: spec.name,
                TEST_NAME_LABEL: spec.name,
                MANAGED_BY[0]: MANAGED_BY[1],
            },
            ownerReferences=[owner] if owner else None,
        ),
        binaryData={REPORT_KEY: base64.b64encode(compressed).decode("ascii")},
    )
