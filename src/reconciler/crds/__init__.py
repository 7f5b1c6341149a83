"""The LocustTest CRD shipped with the reconciler: the one source for the CLI, charm and tests."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

CRD_NAME = "locusttests.locust.io"
GROUP = "locust.io"
PLURAL = "locusttests"
KIND = "LocustTest"
PART_OF_LABEL = ("app.kubernetes.io/part-of", "locust-operator")
CONVERSION_PATH = "/convert"


@dataclass(frozen=True)
class ConversionWebhook:
    """Where the apiserver reaches the operator's /convert endpoint, and the CA that signed it."""

    service_name: str
    service_namespace: str
    port: int
    ca_bundle: bytes  # PEM
    path: str = CONVERSION_PATH

    def conversion(self) -> dict[str, Any]:
        """The CRD's `spec.conversion` for this webhook."""
        return {
            "strategy": "Webhook",
            "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {
                    "service": {
                        "name": self.service_name,
                        "namespace": self.service_namespace,
                        "port": self.port,
                        "path": self.path,
                    },
                    "caBundle": base64.b64encode(self.ca_bundle).decode("ascii"),
                },
            },
        }


def crd_text() -> str:
    """Return the CRD file as shipped: `crd_manifest()` without the explicit `None` conversion."""
    return resources.files(__package__).joinpath("locusttests.yaml").read_text(encoding="utf-8")


@cache
def _crd() -> dict[str, Any]:
    # The file shares schema parts between versions through YAML anchors. A JSON round trip gives
    # each version its own copy, so a caller changing one never changes the other, and dumps carry
    # no aliases.
    return json.loads(json.dumps(yaml.safe_load(crd_text())))


def version_schema(version: str) -> dict[str, Any]:
    """Return a fresh copy of one version's `openAPIV3Schema`."""
    entry = next(v for v in _crd()["spec"]["versions"] if v["name"] == version)
    return copy.deepcopy(entry["schema"]["openAPIV3Schema"])


def crd_manifest(webhook: ConversionWebhook | None = None) -> dict[str, Any]:
    """Return the CRD as a fresh dict (callers may change their copy).

    With a conversion webhook, the operator converts between the versions and all are served.
    Without one, only the storage version can be served safely: the apiserver's `None` strategy
    would only rewrite apiVersion, leaving one version's fields stored under another's schema.
    """
    crd = copy.deepcopy(_crd())
    if webhook is None:
        crd["spec"]["conversion"] = {"strategy": "None"}
    else:
        crd["spec"]["conversion"] = webhook.conversion()
        for version in crd["spec"]["versions"]:
            version["served"] = True
    return crd
