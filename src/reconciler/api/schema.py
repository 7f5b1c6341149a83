"""Offline validation of a custom resource against its CRD's structural schema.

`locust-operator render` must reject exactly what the apiserver would reject, without a cluster, so
it checks the document against the same openAPIV3Schema that the CRD installs, and applies its
defaults. Messages follow the apiserver's wording (`spec.workerReplicas: Invalid value: 0: ...`) so
users see the same text offline and online. Only the keywords a structural schema may use are
handled.

Unknown fields are ignored rather than pruned: the parsers read only the fields they know, and the
Kubernetes-typed objects the CRD marks `x-kubernetes-preserve-unknown-fields` pass through whole.
The CRD's CEL rules (`x-kubernetes-validations`) are not evaluated here: `api/validation.py` holds
the same rules in Python.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}
_INT32 = (-(2**31), 2**31 - 1)


def _type_ok(value: Any, expected: str) -> bool:
    if isinstance(value, bool) and expected in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[expected])


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Fill in `default`s for absent properties, recursively, as the apiserver does on create."""
    if isinstance(value, dict):
        for key, prop in schema.get("properties", {}).items():
            if key not in value and "default" in prop:
                value[key] = copy.deepcopy(prop["default"])
            if key in value:
                apply_defaults(value[key], prop)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in set(value) - set(schema.get("properties", {})):
                apply_defaults(value[key], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])
    return value


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Return every violation of `schema` in `value`, each as `<field path>: <reason>`."""
    errors: list[str] = []
    expected = schema.get("type")
    if value is None:
        if not schema.get("nullable"):
            errors.append(
                f"{path}: Invalid value: null: {path} in body must be of type {expected}"
            )
        return errors
    if expected and not _type_ok(value, expected):
        got = type(value).__name__.replace("dict", "object").replace("list", "array")
        got = got.replace("str", "string").replace("bool", "boolean").replace("int", "integer")
        errors.append(f'{path}: Invalid value: "{got}": {path} in body must be of type {expected}')
        return errors
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        errors.append(f"{path}: Unsupported value: {_show(value)}: supported values: {allowed}")
    if expected in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if schema.get("format") == "int32":
            low = _INT32[0] if low is None else low
            high = _INT32[1] if high is None else high
        if low is not None and value < low:
            errors.append(
                f"{path}: Invalid value: {value}: {path} in body should be greater than or equal "
                f"to {low}"
            )
        if high is not None and value > high:
            errors.append(
                f"{path}: Invalid value: {value}: {path} in body should be less than or equal "
                f"to {high}"
            )
    if expected == "string":
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: Too long: may not be more than {schema['maxLength']} bytes")
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(
                f"{path}: Invalid value: {_show(value)}: {path} in body should be at least "
                f"{schema['minLength']} chars long"
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(
                f"{path}: Invalid value: {_show(value)}: {path} in body should match "
                f"'{schema['pattern']}'"
            )
    if expected == "array":
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(
                f"{path}: Too many: {len(value)}: must have at most {schema['maxItems']} items"
            )
        if schema.get("x-kubernetes-list-type") == "map":
            errors.extend(
                _duplicate_keys(value, schema.get("x-kubernetes-list-map-keys", []), path)
            )
        if isinstance(schema.get("items"), dict):
            for index, item in enumerate(value):
                errors.extend(validate(item, schema["items"], f"{path}[{index}]"))
    if expected == "object":
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{_join(path, key)}: Required value")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(
                f"{path}: Too many: {len(value)}: must have at most "
                f"{schema['maxProperties']} items"
            )
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors.extend(validate(item, properties[key], _join(path, key)))
            elif isinstance(extra, dict):
                errors.extend(validate(item, extra, _join(path, key)))
    return errors


def _duplicate_keys(items: list[Any], keys: list[str], path: str) -> list[str]:
    """A `listType: map` list holds one item per key: later items with a seen key repeat it."""
    seen: set[str] = set()
    errors = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            continue  # the item schema reports the type
        key = json.dumps({name: item.get(name) for name in keys}, separators=(",", ":"))
        if key in seen:
            errors.append(f"{path}[{index}]: Duplicate value: {key}")
        seen.add(key)
    return errors


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
