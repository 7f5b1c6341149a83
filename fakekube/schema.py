"""OpenAPI v3 structural schemas as the apiextensions apiserver applies them to custom resources.

Three passes, in the apiserver's order: prune unknown fields (and nulls on non-nullable fields),
apply ``default`` values, then validate. Error messages follow kube-openapi's wording, converted
to field errors the way ``kubeOpenAPIResultToFieldErrors`` does.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from .errors import FieldError, go_repr

Schema = dict[str, Any]

# What the apiserver keeps at the root of every custom resource, whatever the schema says.
_ROOT_KEEP = ("apiVersion", "kind", "metadata")


def _preserves_unknown(schema: Schema) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


def _is_object(schema: Schema) -> bool:
    return (
        schema.get("type") == "object"
        or "properties" in schema
        or "additionalProperties" in schema
    )


def prune(value: Any, schema: Schema, *, root: bool = False) -> Any:
    """Drop fields the schema does not declare, and nulls the schema does not allow. In place."""
    if isinstance(value, dict) and (root or _is_object(schema)):
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        embedded = root or schema.get("x-kubernetes-embedded-resource")
        for key in list(value):
            if embedded and key in _ROOT_KEEP:
                continue
            sub = properties.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                if not (_preserves_unknown(schema) or additional is True):
                    del value[key]
                continue
            if value[key] is None and not sub.get("nullable"):
                del value[key]
                continue
            prune(value[key], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            prune(item, schema["items"])
    return value


def apply_defaults(value: Any, schema: Schema) -> Any:
    """Fill ``default`` values for absent fields of objects that are present. In place."""
    if isinstance(value, dict):
        properties: dict[str, Schema] = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                apply_defaults(value[key], sub)
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            for key in value:
                if key not in properties:
                    apply_defaults(value[key], additional)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, type_name: str) -> bool:
    if type_name == "integer,string":  # x-kubernetes-int-or-string
        return isinstance(value, str) or _has_type(value, "integer")
    actual = _json_type(value)
    if type_name == "number":
        return actual in ("integer", "number")
    if type_name == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == type_name


def _datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text or " " in text


def _date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _byte(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True


def _ip(version: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        try:
            return ipaddress.ip_address(text).version == version
        except ValueError:
            return False

    return check


_HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9]([-a-zA-Z0-9]{0,62})(\.[a-zA-Z0-9]([-a-zA-Z0-9]{0,62}))*$")

# The string formats the apiserver checks; any other format name is accepted unchecked.
_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _datetime,
    "datetime": _datetime,
    "date": _date,
    "uuid": _uuid,
    "byte": _byte,
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "hostname": lambda s: len(s) <= 253 and bool(_HOSTNAME_RE.match(s)),
}


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def validate(value: Any, schema: Schema, path: str = "") -> list[FieldError]:
    """Check ``value`` against ``schema``; ``path`` is the field path of ``value`` (empty at root)."""
    errors: list[FieldError] = []
    _validate(value, schema, path, errors)
    return errors


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _validate(value: Any, schema: Schema, path: str, errors: list[FieldError]) -> None:
    name = path or "."
    if value is None:
        if schema.get("nullable") or not schema.get("type"):
            return
        type_name = schema["type"]
        errors.append(
            FieldError.type_invalid(
                path, "null", f'{name} in body must be of type {type_name}: "null"'
            )
        )
        return

    expected = "integer,string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
    if expected and not _has_type(value, expected):
        actual = _json_type(value)
        detail = f'{name} in body must be of type {expected}: "{actual}"'
        errors.append(FieldError.type_invalid(path, actual, detail))
        return

    if "enum" in schema and value not in schema["enum"]:
        supported = [v if isinstance(v, str) else _json_literal(v) for v in schema["enum"]]
        errors.append(FieldError.not_supported(path, value, supported))

    if isinstance(value, dict):
        _validate_object(value, schema, path, errors)
    elif isinstance(value, list):
        _validate_array(value, schema, path, errors)
    elif isinstance(value, str):
        _validate_string(value, schema, path, errors)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _validate_number(value, schema, path, errors)


def _json_literal(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _validate_object(
    value: dict[str, Any], schema: Schema, path: str, errors: list[FieldError]
) -> None:
    for required in schema.get("required") or ():
        if required not in value:
            errors.append(FieldError.required(_child(path, required)))
    properties: dict[str, Schema] = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    for key, item in value.items():
        sub = properties.get(key)
        if sub is None and isinstance(additional, dict):
            sub = additional
        if sub is not None and not (path == "" and key in _ROOT_KEEP and key not in properties):
            _validate(item, sub, _child(path, key), errors)
    name = path or "."
    if (low := schema.get("minProperties")) is not None and len(value) < low:
        errors.append(
            FieldError.invalid(
                path, len(value), f"{name} in body should have at least {low} properties"
            )
        )
    if (high := schema.get("maxProperties")) is not None and len(value) > high:
        errors.append(FieldError.too_many(path, len(value), high))


def _validate_array(value: list[Any], schema: Schema, path: str, errors: list[FieldError]) -> None:
    name = path or "."
    if (low := schema.get("minItems")) is not None and len(value) < low:
        errors.append(
            FieldError.invalid(
                path, len(value), f"{name} in body should have at least {low} items"
            )
        )
    if (high := schema.get("maxItems")) is not None and len(value) > high:
        errors.append(FieldError.too_many(path, len(value), high))
    if schema.get("uniqueItems") or schema.get("x-kubernetes-list-type") == "set":
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                errors.append(FieldError("FieldValueDuplicate", f"{path}[{index}]", item))
            seen.append(item)
    items = schema.get("items")
    if isinstance(items, dict):
        for index, item in enumerate(value):
            _validate(item, items, f"{path}[{index}]", errors)


def _validate_string(value: str, schema: Schema, path: str, errors: list[FieldError]) -> None:
    name = path or "."
    if (low := schema.get("minLength")) is not None and len(value) < low:
        errors.append(
            FieldError.invalid(path, value, f"{name} in body should be at least {low} chars long")
        )
    if (high := schema.get("maxLength")) is not None and len(value) > high:
        errors.append(FieldError.too_long(path, high))
    if (pattern := schema.get("pattern")) and not _regex(pattern).search(value):
        errors.append(FieldError.invalid(path, value, f"{name} in body should match '{pattern}'"))
    check = _STRING_FORMATS.get(schema.get("format", ""))
    if check and not check(value):
        errors.append(
            FieldError.type_invalid(
                path, value, f'{name} in body must be of type {schema["format"]}: "{value}"'
            )
        )


def _validate_number(value: float, schema: Schema, path: str, errors: list[FieldError]) -> None:
    name = path or "."
    if (low := schema.get("minimum")) is not None:
        exclusive = schema.get("exclusiveMinimum")
        if value < low or (exclusive and value == low):
            relation = "greater than" if exclusive else "greater than or equal to"
            errors.append(
                FieldError.invalid(
                    path, value, f"{name} in body should be {relation} {go_repr(low)}"
                )
            )
    if (high := schema.get("maximum")) is not None:
        exclusive = schema.get("exclusiveMaximum")
        if value > high or (exclusive and value == high):
            relation = "less than" if exclusive else "less than or equal to"
            errors.append(
                FieldError.invalid(
                    path, value, f"{name} in body should be {relation} {go_repr(high)}"
                )
            )
    if (factor := schema.get("multipleOf")) and (value / factor) != int(value / factor):
        errors.append(
            FieldError.invalid(
                path, value, f"{name} in body should be a multiple of {go_repr(factor)}"
            )
        )
    fmt = schema.get("format")
    if fmt in ("int32", "int64") and isinstance(value, int):
        bits = 31 if fmt == "int32" else 63
        if not -(2**bits) <= value < 2**bits:
            errors.append(
                FieldError.type_invalid(path, value, f"{name} in body must be of type {fmt}")
            )


def sub_schema(schema: Schema, path: tuple[str, ...]) -> Schema | None:
    """The schema of the field at ``path`` (list items are entered transparently)."""
    current: Schema | None = schema
    for key in path:
        while current is not None and current.get("type") == "array":
            current = current.get("items")
        if current is None:
            return None
        properties = current.get("properties") or {}
        additional = current.get("additionalProperties")
        current = properties.get(key) or (additional if isinstance(additional, dict) else None)
    return current


def list_merge_key(schema: Schema, path: tuple[str, ...]) -> tuple[str, str | None]:
    """How server-side apply merges the list at ``path``: ("map", key), ("set", None) or ("atomic", None)."""
    node = sub_schema(schema, path)
    if node is None:
        return ("atomic", None)
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "map" and node.get("x-kubernetes-list-map-keys"):
        return ("map", node["x-kubernetes-list-map-keys"][0])
    if list_type == "set":
        return ("set", None)
    return ("atomic", None)
