"""Structural-schema rules about object metadata, checked when a CRD is written.

Metadata is the apiserver's (ObjectMeta), not the CRD's: at a resource root (the schema root, or
an ``x-kubernetes-embedded-resource`` object) ``kind`` and ``apiVersion`` may only be declared as
strings and ``metadata`` only as an object, and at the schema root ``metadata`` may say nothing
but ``type: object`` and the schemas of ``name`` and ``generateName`` (typically a maxLength,
which bounds the cost of rules reading them). A description, a default, a rule or any other
property of ``metadata`` is refused.

Only these rules of ``ValidateStructural`` are applied; a schema failing them gets no CEL
checks, as in the apiserver.
"""

from __future__ import annotations

from typing import Any

from .errors import FieldError
from .schema import Schema

_ONLY_NAMES = (
    "must not specify anything other than name and generateName, but metadata is implicitly "
    "specified"
)


def metadata_errors(schema: Schema, path: str) -> list[FieldError]:
    """The metadata rules broken anywhere in ``schema`` (a version's openAPIV3Schema)."""
    errors: list[FieldError] = []
    _visit(schema, path, errors, root=True)
    return errors


def _visit(schema: Schema, path: str, errors: list[FieldError], *, root: bool) -> None:
    properties: dict[str, Any] = schema.get("properties") or {}
    if root or schema.get("x-kubernetes-embedded-resource"):
        for name in ("kind", "apiVersion"):
            if name in properties and properties[name].get("type") != "string":
                errors.append(
                    FieldError.invalid(
                        f"{path}.properties[{name}].type",
                        properties[name].get("type", ""),
                        "must be string",
                    )
                )
        if "metadata" in properties:
            errors += _metadata_errors(
                properties["metadata"], f"{path}.properties[metadata]", root
            )
    for name, sub in properties.items():
        _visit(sub, f"{path}.properties[{name}]", errors, root=False)
    if isinstance(items := schema.get("items"), dict):
        _visit(items, f"{path}.items", errors, root=False)
    if isinstance(additional := schema.get("additionalProperties"), dict):
        _visit(additional, f"{path}.additionalProperties", errors, root=False)


def _metadata_errors(metadata: Schema, path: str, root: bool) -> list[FieldError]:
    errors = []
    if metadata.get("type") != "object":
        errors.append(
            FieldError.invalid(f"{path}.type", metadata.get("type", ""), "must be object")
        )
    if not root:
        return errors
    rest = {k: v for k, v in metadata.items() if k != "type"}
    names = rest.pop("properties", None) or {}
    if set(names) - {"name", "generateName"} or rest:
        errors.append(FieldError.forbidden(path, _ONLY_NAMES))
    return errors
