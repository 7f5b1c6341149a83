"""The LocustTest CRD shipped with the reconciler (the one source for the CLI, the charm and the tests)."""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import yaml

CRD_NAME = "locusttests.locust.io"
GROUP = "locust.io"
PLURAL = "locusttests"
KIND = "LocustTest"
PART_OF_LABEL = ("app.kubernetes.io/part-of", "locust-operator")


def crd_text() -> str:
    """Return the CRD manifest as YAML text, exactly as shipped."""
    return resources.files(__package__).joinpath("locusttests.yaml").read_text(encoding="utf-8")


@cache
def _crd() -> dict[str, Any]:
    return yaml.safe_load(crd_text())


def crd_manifest() -> dict[str, Any]:
    """Return the CRD as a fresh dict (callers may change their copy)."""
    return copy.deepcopy(_crd())
