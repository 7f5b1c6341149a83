"""CEL types of a CRD's structural schema, with Kubernetes' size estimates.

What ``SchemaDeclType`` in k8s.io/apiserver's CEL support derives from a schema node: its CEL type
and, for cost estimation, the largest size a value there can have (``max_elements``: characters of
a string, items of a list, entries of a map) and the fewest bytes it takes in JSON
(``min_size``). A size the schema does not bound (no maxLength, maxItems or maxProperties) is
whatever fits in one request of ``MAX_REQUEST_BYTES``. The same class also stands for the CEL
types of values an expression builds (literals, function results), which carry no sizes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Schema = dict[str, Any]

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # celconfig.MaxRequestSizeBytes
_MAX_DURATION_JSON = 32
_MAX_DATETIME_JSON = 32
_MIN_DURATION_JSON = 3
_DATE_JSON = 12
_MIN_DATETIME_JSON = 21
_MIN_STRING = 2  # ""
_MIN_BOOL = 4  # true
_MIN_NUMBER = 1  # 0


@dataclass(frozen=True, eq=False)
class DeclType:
    # bool, int, uint, double, string, bytes, null, timestamp, duration, type, dyn, list, map,
    # object (a schema object: a CEL struct)
    kind: str
    elem: DeclType | None = None  # of a list; the values of a map
    key: DeclType | None = None  # of a map
    fields: dict[str, DeclType] = field(default_factory=dict)  # of an object, by CEL name
    max_elements: int = 0
    min_size: int = 0

    def __repr__(self) -> str:
        if self.kind == "list":
            return f"list({self.elem!r})"
        if self.kind == "map":
            return f"map({self.key!r}, {self.elem!r})"
        return self.kind

    def same_as(self, other: DeclType) -> bool:
        """Type equality, ignoring sizes (objects are equal only to themselves)."""
        if self.kind != other.kind:
            return False
        if self.kind == "object":
            return self is other
        pairs = ((self.elem, other.elem), (self.key, other.key))
        return all(a is b or (a is not None and b is not None and a.same_as(b)) for a, b in pairs)


BOOL = DeclType("bool", min_size=_MIN_BOOL)
INT = DeclType("int", min_size=_MIN_NUMBER)
UINT = DeclType("uint", min_size=_MIN_NUMBER)
DOUBLE = DeclType("double", min_size=_MIN_NUMBER)
STRING = DeclType("string", min_size=_MIN_STRING)
BYTES = DeclType("bytes", min_size=_MIN_STRING)
NULL = DeclType("null", min_size=4)
TIMESTAMP = DeclType("timestamp")
DURATION = DeclType("duration")
TYPE = DeclType("type")
DYN = DeclType("dyn", min_size=1)
SCALAR_KINDS = frozenset({"bool", "int", "uint", "double", "timestamp", "duration"})


def list_of(elem: DeclType, max_items: int = 0) -> DeclType:
    return DeclType("list", elem=elem, max_elements=max_items, min_size=2)


def map_of(key: DeclType, value: DeclType, max_properties: int = 0) -> DeclType:
    return DeclType("map", elem=value, key=key, max_elements=max_properties, min_size=2)


_RESERVED = frozenset(
    {
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)
_ESCAPES = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def escape(name: str) -> str | None:
    """The CEL field name of a property, or None where CEL cannot name it (``cel.Escape``)."""
    if not name or name[0].isdigit():
        return None
    if name in _RESERVED:
        return f"__{name}__"
    if not re.fullmatch(r"[a-zA-Z0-9_./-]+", name):
        return None
    return re.sub(r"__|[./-]", lambda m: _ESCAPES[m.group(0)], name)


def _with_type_and_object_meta(schema: Schema) -> Schema:
    """At a resource root, rules may read apiVersion, kind, metadata.name and
    metadata.generateName whatever the schema says; unless the schema declares all of them as
    strings, they are typed as unbounded strings."""
    props = schema.get("properties") or {}
    meta = props.get("metadata") or {}
    meta_props = meta.get("properties") or {}
    if (
        (props.get("kind") or {}).get("type") == "string"
        and (props.get("apiVersion") or {}).get("type") == "string"
        and meta.get("type") == "object"
        and (meta_props.get("name") or {}).get("type") == "string"
        and (meta_props.get("generateName") or {}).get("type") == "string"
    ):
        return schema
    string = {"type": "string"}
    metadata = {"type": "object", "properties": {"name": string, "generateName": string}}
    return {
        **schema,
        "properties": {**props, "kind": string, "apiVersion": string, "metadata": metadata},
    }


def _string_length(schema: Schema) -> int:
    if (max_length := schema.get("maxLength")) is not None:
        # maxLength counts code points; sizes count bytes, up to 4 a code point.
        return max(max_length, 0) * 4
    if schema.get("enum") and not schema.get("x-kubernetes-int-or-string"):
        return max((len(v) for v in schema["enum"] if isinstance(v, str)), default=0)
    return MAX_REQUEST_BYTES - 2  # less the quotes


def schema_decl_type(schema: Schema, resource_root: bool = False) -> DeclType | None:
    """The CEL type of values at ``schema``; None for values rules cannot see."""
    if schema.get("x-kubernetes-int-or-string"):
        return DeclType("dyn", max_elements=_string_length(schema), min_size=1)
    if resource_root:
        schema = _with_type_and_object_meta(schema)
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, dict):
            return None
        elem = schema_decl_type(items, bool(items.get("x-kubernetes-embedded-resource")))
        if elem is None:
            return None
        max_items = schema.get("maxItems")
        if max_items is None:
            max_items = (MAX_REQUEST_BYTES - 2) // (elem.min_size + 1)
        return list_of(elem, max(max_items, 0))
    if kind == "object":
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            value = schema_decl_type(
                additional, bool(additional.get("x-kubernetes-embedded-resource"))
            )
            if value is None:
                return None
            max_properties = schema.get("maxProperties")
            if max_properties is None:
                # a key of at least 2 bytes with its quotes, a colon, a comma
                max_properties = (MAX_REQUEST_BYTES - 2) // (value.min_size + 6)
            return map_of(STRING, value, max(max_properties, 0))
        return _object_type(schema)
    if kind == "string":
        return _string_type(schema)
    return {"boolean": BOOL, "number": DOUBLE, "integer": INT}.get(kind or "")


def _object_type(schema: Schema) -> DeclType:
    required = set(schema.get("required") or ())
    fields: dict[str, DeclType] = {}
    min_size = 2  # {}
    for name, prop in (schema.get("properties") or {}).items():
        field_type = schema_decl_type(prop, bool(prop.get("x-kubernetes-embedded-resource")))
        if field_type is None:
            continue
        if (cel_name := escape(name)) is not None:
            fields[cel_name] = field_type
        # Only required fields without a default must be in every serialized object.
        if name in required and prop.get("default") is None:
            min_size += len(name) + field_type.min_size + 4
    return DeclType("object", fields=fields, min_size=min_size)


def _string_type(schema: Schema) -> DeclType:
    string_format = schema.get("format")
    if string_format == "byte":
        max_length = schema.get("maxLength")
        length = MAX_REQUEST_BYTES - 2 if max_length is None else max(max_length, 0)
        return DeclType("bytes", max_elements=length, min_size=_MIN_STRING)
    if string_format == "duration":
        return DeclType("duration", max_elements=_MAX_DURATION_JSON, min_size=_MIN_DURATION_JSON)
    if string_format == "date":
        return DeclType("timestamp", max_elements=_DATE_JSON, min_size=_DATE_JSON)
    if string_format == "date-time":
        return DeclType("timestamp", max_elements=_MAX_DATETIME_JSON, min_size=_MIN_DATETIME_JSON)
    return DeclType("string", max_elements=_string_length(schema), min_size=_MIN_STRING)


def max_cardinality(min_size: int) -> int:
    """How often a value of ``min_size`` bytes could repeat in one request, with a comma each:
    the bound on how often a rule under unbounded lists or maps runs."""
    return MAX_REQUEST_BYTES // (min_size + 1)
