"""Reading the access reviews kubectl sends as ``application/vnd.kubernetes.protobuf``.

client-go's typed clients send built-in kinds as protobuf: ``kubectl auth can-i`` and ``kubectl
auth whoami`` post their reviews that way (and accept JSON back). The fake reads protobuf for
those kinds only, into the JSON shape the rest of the server works with. The envelope is
Kubernetes' ``k8s\\x00`` magic and a ``runtime.Unknown``; field numbers are those of
``k8s.io/api/authorization/v1`` and ``authentication/v1`` ``generated.proto``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from .errors import StatusError

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# message -> field number -> (JSON name, type): "string", "bool", a message name, or
# "map:<value type>"; a trailing "[]" marks a repeated field.
_SCHEMAS: dict[str, dict[int, tuple[str, str]]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta"), 2: ("raw", "bytes")},
    "TypeMeta": {1: ("apiVersion", "string"), 2: ("kind", "string")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "Time"),
        9: ("deletionTimestamp", "Time"),
        10: ("deletionGracePeriodSeconds", "int"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "opaque[]"),
        14: ("finalizers", "string[]"),
        17: ("managedFields", "opaque[]"),
    },
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "ResourceAttributes": {
        1: ("namespace", "string"),
        2: ("verb", "string"),
        3: ("group", "string"),
        4: ("version", "string"),
        5: ("resource", "string"),
        6: ("subresource", "string"),
        7: ("name", "string"),
        8: ("fieldSelector", "SelectorAttributes"),
        9: ("labelSelector", "SelectorAttributes"),
    },
    "SelectorAttributes": {1: ("rawSelector", "string"), 2: ("requirements", "opaque[]")},
    "NonResourceAttributes": {1: ("path", "string"), 2: ("verb", "string")},
    "SelfSubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
    },
    "SubjectAccessReviewSpec": {
        1: ("resourceAttributes", "ResourceAttributes"),
        2: ("nonResourceAttributes", "NonResourceAttributes"),
        3: ("user", "string"),
        4: ("groups", "string[]"),
        5: ("extra", "map:ExtraValue"),
        6: ("uid", "string"),
    },
    "ExtraValue": {1: ("items", "string[]")},
    "SelfSubjectRulesReviewSpec": {1: ("namespace", "string")},
    "SelfSubjectAccessReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectAccessReviewSpec"),
    },
    "SubjectAccessReview": {1: ("metadata", "ObjectMeta"), 2: ("spec", "SubjectAccessReviewSpec")},
    "SelfSubjectRulesReview": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "SelfSubjectRulesReviewSpec"),
    },
    "SelfSubjectReview": {1: ("metadata", "ObjectMeta")},
}
_SCHEMAS["LocalSubjectAccessReview"] = _SCHEMAS["SubjectAccessReview"]
#: The kinds whose protobuf the fake reads.
KINDS = frozenset(
    {
        "SelfSubjectAccessReview",
        "SubjectAccessReview",
        "LocalSubjectAccessReview",
        "SelfSubjectRulesReview",
        "SelfSubjectReview",
    }
)


class _Malformed(ValueError):
    pass


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _wire_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: an int for varints, bytes for length-delimited fields."""
    fields: list[tuple[int, int | bytes]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, at = _varint(data, at)
            fields.append((number, value))
        elif wire_type == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise _Malformed("truncated field")
            fields.append((number, data[at : at + length]))
            at += length
        elif wire_type in (1, 5):
            at += 8 if wire_type == 1 else 4  # fixed-width: no field here uses them
        else:
            raise _Malformed(f"unsupported wire type {wire_type}")
    return fields


def _scalar(kind: str, value: int | bytes) -> Any:
    if kind == "string":
        if not isinstance(value, bytes):
            raise _Malformed("expected a string")
        return value.decode()
    if kind in ("bytes", "opaque"):
        return value
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return value if isinstance(value, int) else 0
    return _message(kind, value)


def _message(name: str, data: int | bytes) -> dict[str, Any]:
    if not isinstance(data, bytes):
        raise _Malformed(f"expected a {name} message")
    schema, decoded = _SCHEMAS[name], {}
    for number, value in _wire_fields(data):
        if number not in schema:
            continue
        field, kind = schema[number]
        if kind.startswith("map:"):
            entry = {n: v for n, v in _wire_fields(value if isinstance(value, bytes) else b"")}
            key = _scalar("string", entry.get(1, b""))
            decoded.setdefault(field, {})[key] = _scalar(kind[4:], entry.get(2, b""))
        elif kind.endswith("[]"):
            decoded.setdefault(field, []).append(_scalar(kind[:-2], value))
        else:
            decoded[field] = _scalar(kind, value)
    return decoded


def _time(value: dict[str, Any] | None) -> str | None:
    # A zero metav1.Time travels as an empty message: null in JSON.
    if not value or not value.get("seconds"):
        return None
    stamp = datetime.fromtimestamp(value["seconds"], timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def _extra_items(spec: dict[str, Any]) -> None:
    if "extra" in spec:
        spec["extra"] = {k: v.get("items", []) for k, v in spec["extra"].items()}


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded review as its JSON object; 400 for anything else or malformed."""
    if not body.startswith(_MAGIC):
        raise StatusError.bad_request("provided object is not protobuf encoded")
    try:
        unknown = _message("Unknown", body[len(_MAGIC) :])
        type_meta = unknown.get("typeMeta") or {}
        kind = type_meta.get("kind", "")
        if kind not in KINDS:
            raise StatusError.bad_request(
                f"fakekube reads protobuf for access reviews only, not {kind or 'this object'}"
            )
        obj = _message(kind, unknown.get("raw", b""))
    except _Malformed as error:
        raise StatusError.bad_request(f"error decoding request body: {error}") from None
    meta = obj.get("metadata") or {}
    for stamp in ("creationTimestamp", "deletionTimestamp"):
        if stamp in meta:
            meta[stamp] = _time(meta[stamp])
    for opaque in ("ownerReferences", "managedFields"):
        if opaque in meta:
            meta[opaque] = [{} for _ in meta[opaque]]
    spec = obj.get("spec") or {}
    _extra_items(spec)
    return {"apiVersion": type_meta.get("apiVersion", ""), "kind": kind, **obj, "metadata": meta}
