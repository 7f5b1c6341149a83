"""Kubernetes objects a test gives whole (a volume, an affinity, an env var...), as models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from lightkube.core.dictmixin import DictMixin

_Model = TypeVar("_Model", bound=DictMixin)


def from_test(model: type[_Model], data: Mapping[str, Any]) -> _Model:
    """`data`, a Kubernetes object from the test's spec, as the lightkube `model`."""
    return cast(_Model, model.from_dict(_plain(data)))


def _plain(value: Any) -> Any:
    # msgspec reads a Mapping other than a dict by attribute, where a read-only view's `items`
    # and `values` methods would hide the Kubernetes fields of the same names.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value
