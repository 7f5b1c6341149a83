"""The two-version Gadget CRD of ``gadgets_crd.yaml`` and objects of each version, for the tests
of versions, conversion webhooks and CEL rules."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

GADGETS_CRD = Path(__file__).with_name("gadgets_crd.yaml")
V1 = "/apis/example.com/v1/namespaces/default/gadgets"
V2 = "/apis/example.com/v2/namespaces/default/gadgets"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def gadgets_crd(**changes: Any) -> dict[str, Any]:
    """The CRD, with ``spec`` keys replaced by ``changes``."""
    crd = yaml.safe_load(GADGETS_CRD.read_text())
    crd["spec"].update(changes)
    return crd


def version(crd: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in crd["spec"]["versions"] if v["name"] == name)


def spec_schema(crd: dict[str, Any], name: str) -> dict[str, Any]:
    return version(crd, name)["schema"]["openAPIV3Schema"]["properties"]["spec"]


def same_shape_crd() -> dict[str, Any]:
    """Gadgets whose v2 keeps v1's fields (strategy None only renames apiVersion), with its own
    rules: replicas up to 500 and no default, plus a v2-only ``tier`` defaulting to gold."""
    crd = gadgets_crd()
    v2_spec = copy.deepcopy(spec_schema(crd, "v1"))
    v2_spec["properties"]["replicas"] = {"type": "integer", "minimum": 1, "maximum": 500}
    v2_spec["properties"]["tier"] = {"type": "string", "default": "gold"}
    version(crd, "v2")["schema"]["openAPIV3Schema"]["properties"]["spec"] = v2_spec
    return crd


def gadget_v1(name: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "image": "locustio/locust:2.31",
            "command": "locust -f a.py",
            "replicas": replicas,
        }
        | spec,
    }


def gadget_v2(name: str, replicas: int = 2, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v2",
        "kind": "Gadget",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "image": "locustio/locust:2.31",
            "workers": {"command": "locust -f a.py", "replicas": replicas},
        }
        | spec,
    }
