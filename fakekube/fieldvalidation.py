"""Server-side field validation: the ``fieldValidation`` query parameter of writes.

Unknown fields (not in the kind's schema) and duplicate fields (a key twice in one JSON object)
are what the apiserver's strict decoding finds. ``Strict`` refuses the request with 400
BadRequest ``strict decoding error: unknown field "spec.foo", ...``; ``Warn`` (the default when
the parameter is absent) serves it and sends one ``Warning`` header per problem; ``Ignore`` says
nothing. Unknown fields never reach storage: built-in kinds drop them here, as decoding into Go
structs would, custom resources in their schema's pruning.

The order of the messages follows the apiserver's: for a built-in kind's body, the order the
fields come in (a field both unknown and duplicated counts once, as unknown); for a custom
resource, first every duplicate, then unknown ``metadata`` fields, then the other pruned fields
in sorted order. A patch reports the duplicates in the patch, then the unknown fields of the
patched object, visited in sorted key order as the apiserver re-encodes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .builtin_schemas import (
    V3_PREFIX,
    BuiltinSchemasUnavailable,
    builtin_definitions,
    definition_name,
)
from .discovery import DEFAULT_KUBERNETES_VERSION
from .errors import FieldError, GroupKind, StatusError
from .meta import OBJECT_META_FIELDS
from .resources import ResourceType

STRICT, WARN, IGNORE = "Strict", "Warn", "Ignore"
_DIRECTIVES = ("", IGNORE, STRICT, WARN)
_JSON_PATCH_FIELDS = frozenset({"op", "path", "value", "from"})
Schema = dict[str, Any]


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as written: its (key, value) pairs in order, duplicates included."""


def _pairs(raw: bytes) -> Any:
    try:
        return json.loads(raw, object_pairs_hook=_Pairs)
    except (ValueError, UnicodeDecodeError):
        return None  # not JSON (YAML, or broken): the normal decoder reports what it must


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


@dataclass
class FieldValidation:
    """One request's directive, and the warnings it collected."""

    directive: str = WARN
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: Any, options_kind: str) -> FieldValidation:
        """The ``fieldValidation`` parameter; a value it cannot be is refused like the
        apiserver refuses an invalid ``CreateOptions``/``UpdateOptions``/``PatchOptions``."""
        value = query.get("fieldValidation", "")
        if value not in _DIRECTIVES:
            raise StatusError.invalid(
                GroupKind("meta.k8s.io", options_kind),
                "",
                [FieldError.not_supported("fieldValidation", value, sorted(_DIRECTIVES))],
            )
        return cls(value or WARN)

    def report(self, problems: list[str], prefix: str = "") -> None:
        if not problems:
            return
        if self.directive == STRICT:
            raise StatusError.bad_request(f"{prefix}strict decoding error: {', '.join(problems)}")
        if self.directive == WARN:
            self.warnings.extend(problems)


class FieldChecker:
    """Finds unknown and duplicate fields, and drops unknown fields of built-in kinds."""

    def __init__(self, minor: int | None = None):
        own_minor = int(DEFAULT_KUBERNETES_VERSION.split(".")[1])
        self._minor = own_minor if minor is None else minor

    def _definitions(self) -> dict[str, Schema]:
        try:
            return builtin_definitions(self._minor)
        except BuiltinSchemasUnavailable:
            return {}

    def _builtin_schema(self, rt: ResourceType) -> Schema | None:
        definitions = self._definitions()
        if not definitions:
            return None  # no schema package: built-in kinds go unchecked
        name = definition_name(self._minor, rt.group, rt.version, rt.kind)
        return definitions.get(name) if name else None

    def _resolve(self, schema: Schema) -> Schema:
        ref = schema.get("$ref")
        while isinstance(ref, str) and ref.startswith(V3_PREFIX):
            schema = self._definitions().get(ref[len(V3_PREFIX) :], {})
            ref = schema.get("$ref")
        return schema

    # What a request body holds.

    def body_problems(self, rt: ResourceType, raw: bytes, decoded: Any) -> list[str]:
        """Problems of a POST or PUT body, in the apiserver's order."""
        written = _pairs(raw)
        if rt.is_custom:
            return self._duplicates(written) + self.unknown_fields(rt, decoded)
        schema = self._builtin_schema(rt)
        if schema is None:
            return []
        problems: list[str] = []
        self._typed_problems(written if written is not None else decoded, schema, "", problems)
        return problems

    def patch_duplicates(self, raw: bytes) -> list[str]:
        """Duplicate fields in a merge or strategic merge patch."""
        return self._duplicates(_pairs(raw))

    def json_patch_problems(self, raw: bytes) -> list[str]:
        """Unknown and duplicate fields of JSON patch operations themselves."""
        written = _pairs(raw)
        problems: list[str] = []
        if not isinstance(written, list) or isinstance(written, _Pairs):
            return problems
        for index, operation in enumerate(written):
            if not isinstance(operation, _Pairs):
                continue
            seen: set[str] = set()
            for key, _ in operation:
                if key not in _JSON_PATCH_FIELDS:
                    problems.append(f'json patch unknown field "[{index}].{key}"')
                elif key in seen:
                    problems.append(f'json patch duplicate field "[{index}].{key}"')
                seen.add(key)
        return problems

    def unknown_fields(self, rt: ResourceType, obj: Any) -> list[str]:
        """Unknown fields of a whole object, as the apiserver finds them after a patch."""
        if rt.is_custom:
            schema = getattr(rt.strategy, "schema", None) or {}
            meta: list[str] = []
            pruned: list[str] = []
            embedded: list[str] = []
            _pruned_paths(obj, schema, "", meta, pruned, embedded, root=True)
            return [f'unknown field "{p}"' for p in (*meta, *sorted(pruned), *embedded)]
        schema = self._builtin_schema(rt)
        if schema is None:
            return []
        problems: list[str] = []
        self._typed_problems(obj, schema, "", problems)
        return problems

    def drop_unknown(self, rt: ResourceType, obj: Any) -> None:
        """Remove a built-in object's unknown fields, in place (custom resources are pruned by
        their schema when decoded)."""
        schema = None if rt.is_custom else self._builtin_schema(rt)
        if schema is not None:
            self._drop(obj, schema)

    @staticmethod
    def _duplicates(written: Any, path: str = "") -> list[str]:
        found: list[str] = []
        stack = [(written, path)]
        # Depth first, in the order the fields are written.
        while stack:
            node, where = stack.pop()
            if isinstance(node, _Pairs):
                seen: set[str] = set()
                children = []
                for key, value in node:
                    child = _child(where, key)
                    if key in seen:
                        found.append(f'duplicate field "{child}"')
                    seen.add(key)
                    children.append((value, child))
                stack.extend(reversed(children))
            elif isinstance(node, list):
                stack.extend(reversed([(v, f"{where}[{i}]") for i, v in enumerate(node)]))
        return found

    def _typed_problems(self, node: Any, schema: Schema, path: str, out: list[str]) -> None:
        """Strict decoding into a built-in type, in document order."""
        schema = self._resolve(schema)
        if isinstance(node, (_Pairs, dict)):
            pairs = list(node) if isinstance(node, _Pairs) else sorted(node.items())
            properties = schema.get("properties")
            additional = schema.get("additionalProperties")
            if properties is None and not isinstance(additional, dict):
                return  # raw JSON (RawExtension, FieldsV1 ...): anything goes
            seen: set[str] = set()
            unknown: set[str] = set()
            for key, value in pairs:
                child = _child(path, key)
                if properties is not None and key in properties:
                    sub = properties[key]
                elif isinstance(additional, dict):
                    sub = additional
                else:
                    if key not in unknown:
                        out.append(f'unknown field "{child}"')
                    unknown.add(key)
                    continue
                if key in seen:
                    out.append(f'duplicate field "{child}"')
                seen.add(key)
                self._typed_problems(value, sub, child, out)
        elif isinstance(node, list) and isinstance(schema.get("items"), dict):
            for index, item in enumerate(node):
                self._typed_problems(item, schema["items"], f"{path}[{index}]", out)

    def _drop(self, node: Any, schema: Schema) -> None:
        schema = self._resolve(schema)
        if isinstance(node, dict):
            properties = schema.get("properties")
            additional = schema.get("additionalProperties")
            for key in list(node):
                if properties is not None and key in properties:
                    self._drop(node[key], properties[key])
                elif isinstance(additional, dict):
                    self._drop(node[key], additional)
                elif properties is not None:
                    del node[key]
        elif isinstance(node, list) and isinstance(schema.get("items"), dict):
            for item in node:
                self._drop(item, schema["items"])


def _pruned_paths(
    node: Any,
    schema: Schema,
    path: str,
    meta: list[str],
    pruned: list[str],
    embedded: list[str],
    *,
    root: bool = False,
) -> None:
    """The fields ``schema.prune`` would drop from a custom resource, by path."""
    if isinstance(node, dict) and (
        root or schema.get("type") == "object" or "properties" in schema
    ):
        properties: dict[str, Schema] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        is_embedded = root or schema.get("x-kubernetes-embedded-resource")
        keeps_unknown = schema.get("x-kubernetes-preserve-unknown-fields") or additional is True
        for key, value in node.items():
            child = _child(path, key)
            if is_embedded and key in ("apiVersion", "kind"):
                continue
            if is_embedded and key == "metadata" and isinstance(value, dict):
                target = meta if root else embedded
                target.extend(_child(child, k) for k in value if k not in OBJECT_META_FIELDS)
                continue
            sub = properties.get(key)
            if sub is None and isinstance(additional, dict):
                sub = additional
            if sub is None:
                if not keeps_unknown:
                    pruned.append(child)
                continue
            _pruned_paths(value, sub, child, meta, pruned, embedded)
    elif isinstance(node, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(node):
            _pruned_paths(item, schema["items"], f"{path}[{index}]", meta, pruned, embedded)
