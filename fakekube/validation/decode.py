"""Decoding a request body into a built-in type, as the apiserver's JSON decoder does it.

kube-apiserver unmarshals a body into the Go struct of its kind (``sigs.k8s.io/json``, a copy of
``encoding/json``) before anything else happens: a value of the wrong JSON type is refused with
``json: cannot unmarshal number into Go struct field Volume.spec.template.spec.volumes.hostPath of
type v1.HostPathVolumeSource``, fields the struct lacks are dropped, and quantities, times and
base64 byte strings are parsed and re-serialized in canonical form. The Go types come from
Kubernetes' published OpenAPI schemas (the ``kubernetes-validate`` package ships them per
release); the few named Go types that a schema does not name (``v1.ResourceList``,
``v1.RestartPolicy`` ...) are listed here.

``decode`` returns the object as the apiserver would store it, or raises ``DecodeError`` with the
message of the first error Go reports: type errors are remembered and decoding goes on (the first
one wins), while errors from a type's own ``UnmarshalJSON`` (quantities, times, int-or-string)
stop decoding at once and take precedence.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any

from . import quantity

# The release whose schemas the fake decodes with (it serves Kubernetes 1.33).
SCHEMA_RELEASE = "v1.33.0-local"

_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
_MICRO_TIME = "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
# Types whose UnmarshalJSON keeps any JSON value.
_ANY_VALUE = frozenset(
    {
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
    }
)

# Named Go types of fields whose schema only says "string" or "object": (struct, field) -> type.
_NAMED_TYPES = {
    ("ResourceRequirements", "limits"): "v1.ResourceList",
    ("ResourceRequirements", "requests"): "v1.ResourceList",
    ("PodSpec", "overhead"): "v1.ResourceList",
    ("PodSpec", "restartPolicy"): "v1.RestartPolicy",
    ("PodSpec", "dnsPolicy"): "v1.DNSPolicy",
    ("PodSpec", "preemptionPolicy"): "v1.PreemptionPolicy",
    ("Container", "imagePullPolicy"): "v1.PullPolicy",
    ("Container", "terminationMessagePolicy"): "v1.TerminationMessagePolicy",
    ("Container", "restartPolicy"): "v1.ContainerRestartPolicy",
    ("ContainerPort", "protocol"): "v1.Protocol",
    ("ServicePort", "protocol"): "v1.Protocol",
    ("ServiceSpec", "type"): "v1.ServiceType",
    ("ServiceSpec", "sessionAffinity"): "v1.ServiceAffinity",
    ("ServiceSpec", "externalTrafficPolicy"): "v1.ServiceExternalTrafficPolicy",
    ("ServiceSpec", "internalTrafficPolicy"): "v1.ServiceInternalTrafficPolicy",
    ("ServiceSpec", "ipFamilyPolicy"): "v1.IPFamilyPolicy",
    ("Toleration", "operator"): "v1.TolerationOperator",
    ("Toleration", "effect"): "v1.TaintEffect",
    ("Secret", "type"): "v1.SecretType",
    ("HostPathVolumeSource", "type"): "v1.HostPathType",
    ("SeccompProfile", "type"): "v1.SeccompProfileType",
    ("SecurityContext", "procMount"): "v1.ProcMountType",
    ("JobSpec", "completionMode"): "v1.CompletionMode",
    ("JobSpec", "podReplacementPolicy"): "v1.PodReplacementPolicy",
    ("ObjectMeta", "uid"): "types.UID",
    ("OwnerReference", "uid"): "types.UID",
    ("ObjectReference", "uid"): "types.UID",
    ("LeaseSpec", "strategy"): "v1.CoordinatedLeaseStrategy",
}
_NAMED_ITEM_TYPES = {
    ("ServiceSpec", "ipFamilies"): "v1.IPFamily",
    ("Capabilities", "add"): "v1.Capability",
    ("Capabilities", "drop"): "v1.Capability",
    ("NamespaceSpec", "finalizers"): "v1.FinalizerName",
}

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


class DecodeError(ValueError):
    """A body that does not decode into the Go type; ``str()`` is Go's message."""


class _Stop(Exception):
    """An error returned (not merely remembered) by the decoder: decoding stops."""

    def __init__(self, message: str):
        self.message = message


@dataclass
class _Context:
    """Go's ``errorContext``: the innermost struct and the JSON field names from the root."""

    struct: str = ""
    fields: tuple[str, ...] = ()

    def describe(self, value: str, go_type: str) -> str:
        if self.struct or self.fields:
            where = f"{self.struct}.{'.'.join(self.fields)}"
            return f"json: cannot unmarshal {value} into Go struct field {where} of type {go_type}"
        return f"json: cannot unmarshal {value} into Go value of type {go_type}"


@dataclass
class _Decoder:
    definitions: dict[str, Any]
    saved: str | None = None
    unknown: list[str] = field(default_factory=list)

    def save(self, message: str) -> None:
        if self.saved is None:
            self.saved = message


@cache
def _definitions() -> dict[str, Any]:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_RELEASE
    return json.loads((root / "_definitions.json").read_text())["$defs"]


@cache
def _roots() -> dict[tuple[str, str, str], str]:
    found = {}
    for name, schema in _definitions().items():
        for gvk in schema.get("x-kubernetes-group-version-kind") or ():
            found[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return found


def has_schema(group: str, version: str, kind: str) -> bool:
    return (group, version, kind) in _roots()


def decode(group: str, version: str, kind: str, body: dict[str, Any]) -> tuple[Any, list[str]]:
    """The body as the Go type round-trips it, and the unknown fields Go dropped (their paths)."""
    definitions = _definitions()
    name = _roots()[(group, version, kind)]
    decoder = _Decoder(definitions)
    try:
        decoded = _value(decoder, {"$ref": name}, body, _Context(), "")
    except _Stop as stop:
        raise DecodeError(stop.message) from None
    if decoder.saved is not None:
        raise DecodeError(decoder.saved)
    return decoded, decoder.unknown


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_literal(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def _go_type(decoder: _Decoder, schema: dict[str, Any], named: str | None = None) -> str:
    if named:
        return named
    ref = schema.get("$ref")
    if ref:
        parts = ref.rsplit("/", 1)[-1].split(".")
        return f"{parts[-2]}.{parts[-1]}"
    types = schema.get("type")
    kind = types[0] if isinstance(types, list) else types
    if kind == "array":
        return "[]" + _go_type(decoder, schema.get("items") or {})
    if kind == "object":
        return "map[string]" + _go_type(decoder, schema.get("additionalProperties") or {})
    if kind == "integer":
        return "int64" if schema.get("format") == "int64" else "int32"
    if kind == "number":
        return "float64"
    if kind == "boolean":
        return "bool"
    if kind == "string":
        return "[]uint8" if schema.get("format") == "byte" else "string"
    return "interface {}"


def _value(
    decoder: _Decoder,
    schema: dict[str, Any],
    value: Any,
    context: _Context,
    strict_path: str,
    named: str | None = None,
    item_named: str | None = None,
) -> Any:
    if value is None:
        return None
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name == _QUANTITY:
            return _quantity(value)
        if name == _INT_OR_STRING:
            return _int_or_string(value, context)
        if name in (_TIME, _MICRO_TIME):
            return _time(value, context, micro=name == _MICRO_TIME)
        if name in _ANY_VALUE:
            return value
        return _struct(decoder, name, value, context, strict_path)
    types = schema.get("type")
    kind = types[0] if isinstance(types, list) else types

    def mismatch(description: str | None = None) -> None:
        go_type = _go_type(decoder, schema, named)
        decoder.save(context.describe(description or _json_kind(value), go_type))

    if kind == "array":
        if not isinstance(value, list):
            mismatch()
            return None
        items = schema.get("items") or {}
        return [
            _value(decoder, items, item, context, f"{strict_path}[{index}]", item_named)
            for index, item in enumerate(value)
        ]
    if kind == "object":
        if not isinstance(value, dict):
            mismatch()
            return None
        element = schema.get("additionalProperties")
        if not isinstance(element, dict):
            return value
        return {
            key: _value(decoder, element, item, context, _join(strict_path, key))
            for key, item in value.items()
        }
    if kind == "string":
        if not isinstance(value, str):
            mismatch()
            return None
        if schema.get("format") == "byte":
            return _base64(decoder, value)
        return value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            mismatch()
            return None
        bits = 64 if schema.get("format") == "int64" else 32
        if not isinstance(value, int) or not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            mismatch(f"number {_number_literal(value)}")
            return None
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            mismatch()
            return None
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            mismatch()
            return None
        return value
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _struct(decoder: _Decoder, name: str, value: Any, context: _Context, strict_path: str) -> Any:
    schema = decoder.definitions[name]
    struct = name.rsplit(".", 1)[-1]
    if not isinstance(value, dict):
        decoder.save(context.describe(_json_kind(value), _go_type(decoder, {"$ref": name})))
        return None
    properties = schema.get("properties") or {}
    decoded: dict[str, Any] = {}
    for key, item in value.items():
        prop = properties.get(key)
        if prop is None:
            decoder.unknown.append(_join(strict_path, key))
            continue
        inner = _Context(struct, (*context.fields, key))
        result = _value(
            decoder,
            prop,
            item,
            inner,
            _join(strict_path, key),
            _NAMED_TYPES.get((struct, key)),
            _NAMED_ITEM_TYPES.get((struct, key)),
        )
        if result is not None or item is None:
            decoded[key] = result
    return decoded


def _quantity(value: Any) -> Any:
    try:
        return str(quantity.parse_json_value(value))
    except quantity.QuantityError as error:
        raise _Stop(str(error)) from None


def _int_or_string(value: Any, context: _Context) -> Any:
    """``IntOrString.UnmarshalJSON``: a string, or else what decodes into an int32."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Stop(context.describe(_json_kind(value), "int32"))
    if not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise _Stop(context.describe(f"number {_number_literal(value)}", "int32"))
    return value


def _base64(decoder: _Decoder, value: str) -> str:
    # Go's decoder skips newlines inside base64 text.
    try:
        base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        decoder.save(f"illegal base64 data at input byte {_corrupt_offset(value)}")
    return value


_BASE64_ALPHABET = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\r\n"
)


def _corrupt_offset(value: str) -> int:
    """Where ``base64.CorruptInputError`` points: the first byte outside the alphabet, else the
    start of the incomplete last quantum (an approximation for misplaced padding)."""
    for index, char in enumerate(value):
        if char not in _BASE64_ALPHABET and char != "=":
            return index
    return len(value) - len(value) % 4


# metav1.Time and MicroTime: RFC 3339 strings, stored in UTC (seconds, or microseconds).

_LAYOUT_ELEMENTS = (
    ("2006", r"\d{4}"),
    ("-", "-"),
    ("01", r"\d{2}"),
    ("-", "-"),
    ("02", r"\d{2}"),
    ("T", "T"),
    ("15", r"\d{1,2}"),
    (":", ":"),
    ("04", r"\d{2}"),
    (":", ":"),
    ("05", r"\d{2}"),
)
_FRACTION = re.compile(r"[.,]\d+")
_ZONE = re.compile(r"Z|[+-]\d{2}:\d{2}")


def _time(value: Any, context: _Context, *, micro: bool) -> Any:
    if not isinstance(value, str):
        raise _Stop(context.describe(_json_kind(value), "string"))
    layout = RFC3339_MICRO if micro else RFC3339
    parsed = parse_go_time(value, layout)
    utc = parsed.astimezone(timezone.utc)
    if micro:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_error(value: str, layout: str, value_elem: str, layout_elem: str) -> _Stop:
    return _Stop(
        f"parsing time {json.dumps(value)} as {json.dumps(layout)}: cannot parse "
        f"{json.dumps(value_elem)} as {json.dumps(layout_elem)}"
    )


def parse_go_time(value: str, layout: str) -> datetime:
    """``time.Parse`` for the RFC 3339 layouts, with Go's error messages."""
    rest = value
    numbers: list[int] = []
    for element, pattern in _LAYOUT_ELEMENTS:
        match = re.match(pattern, rest)
        if match is None:
            raise _parse_error(value, layout, rest, element)
        if element not in "-T:":
            numbers.append(int(match.group()))
        rest = rest[match.end() :]
    year, month, day, hour, minute, second = numbers
    for name, number, low, high in (
        ("month", month, 1, 12),
        ("hour", hour, 0, 23),
        ("minute", minute, 0, 59),
        ("second", second, 0, 59),
    ):
        if not low <= number <= high:
            raise _Stop(f"parsing time {json.dumps(value)}: {name} out of range")
    micros = 0
    if layout == RFC3339_MICRO:
        if len(rest) < 7 or not re.fullmatch(r"\.\d{6}", rest[:7]):
            raise _parse_error(value, layout, rest, ".000000")
        micros = int(rest[1:7])
        rest = rest[7:]
    elif fraction := _FRACTION.match(rest):
        digits = fraction.group()[1:]
        micros = int((digits + "000000")[:6])
        rest = rest[fraction.end() :]
    zone = _ZONE.match(rest)
    if zone is None:
        raise _parse_error(value, layout, rest, "Z07:00")
    if rest[zone.end() :]:
        raise _Stop(
            f"parsing time {json.dumps(value)}: extra text: {json.dumps(rest[zone.end() :])}"
        )
    offset = timedelta(0)
    if zone.group() != "Z":
        sign = 1 if zone.group()[0] == "+" else -1
        offset = sign * timedelta(hours=int(zone.group()[1:3]), minutes=int(zone.group()[4:6]))
    try:
        return datetime(year, month, day, hour, minute, second, micros, timezone(offset))
    except ValueError:
        raise _Stop(f"parsing time {json.dumps(value)}: day out of range") from None
