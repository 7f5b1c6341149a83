"""The built-in kinds' OpenAPI definitions, read at run time from an installed package.

``kubernetes-validate`` ships Kubernetes' own schemas for each minor version, rewritten as JSON
Schema (optional fields typed ``[T, "null"]``, references under ``#/$defs/``, ``apiVersion`` and
``kind`` pinned with an ``enum``). ``builtin_definitions`` turns them back into the OpenAPI v3 form
the API server publishes under ``components.schemas``, keyed by the same definition names
(``io.k8s.api.core.v1.ConfigMap`` ...). Nothing here is copied into the repository: a missing
package only disables what needs it (OpenAPI documents, strict field validation of built-ins).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

Schema = dict[str, Any]

PACKAGE = "kubernetes_validate"
V3_PREFIX = "#/components/schemas/"
_PACKAGE_PREFIX = "#/$defs/"
GVK_EXTENSION = "x-kubernetes-group-version-kind"
# Keywords whose values are data, not schemas: never rewritten.
_LITERAL_KEYWORDS = frozenset(
    {"enum", "default", "example", "required", GVK_EXTENSION, "x-kubernetes-list-map-keys"}
)
# The two scalar types kubernetes-validate spells as oneOf: IntOrString and Quantity.
_INT_OR_STRING = frozenset({"integer", "string"})


class BuiltinSchemasUnavailable(RuntimeError):
    """The schema package is not installed, or has no schemas at all."""


def _schema_folder(minor: int) -> Traversable:
    try:
        root = resources.files(PACKAGE) / "kubernetes-json-schema"
    except ModuleNotFoundError as error:
        raise BuiltinSchemasUnavailable(
            f"the {PACKAGE} package is not installed: no built-in OpenAPI schemas"
        ) from error
    folders: dict[int, Traversable] = {}
    for entry in root.iterdir():
        name = entry.name  # e.g. v1.33.0-local; the -strict variants forbid additional fields
        if name.startswith("v1.") and name.endswith("-local"):
            folders[int(name.split(".")[1])] = entry
    if not folders:
        raise BuiltinSchemasUnavailable(f"{PACKAGE} ships no schemas")
    # The served version's own schemas, else the newest older ones, else the oldest there are.
    older = [m for m in folders if m <= minor]
    return folders[max(older) if older else min(folders)]


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: Schema = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = V3_PREFIX + value.removeprefix(_PACKAGE_PREFIX)
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            out[key] = types[0] if len(types) == 1 else types
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: _convert(sub) for name, sub in value.items()}
        elif key in _LITERAL_KEYWORDS:
            out[key] = value
        else:
            out[key] = _convert(value)
    one_of = out.get("oneOf")
    if isinstance(one_of, list) and {s.get("type") for s in one_of} == _INT_OR_STRING:
        out["format"] = "int-or-string"
    return out


def _unpin_type_meta(definition: Schema) -> None:
    """Drop the ``enum`` kubernetes-validate puts on apiVersion and kind: the API server's
    schemas describe those fields without pinning them."""
    for field in ("apiVersion", "kind"):
        prop = (definition.get("properties") or {}).get(field)
        if isinstance(prop, dict):
            prop.pop("enum", None)


@lru_cache(maxsize=4)
def builtin_definitions(minor: int) -> dict[str, Schema]:
    """Every built-in definition for Kubernetes 1.<minor> (or the nearest version shipped)."""
    folder = _schema_folder(minor)
    raw = json.loads((folder / "_definitions.json").read_text())
    definitions = {name: _convert(schema) for name, schema in raw["$defs"].items()}
    for definition in definitions.values():
        if definition.get(GVK_EXTENSION):
            _unpin_type_meta(definition)
    return definitions


@lru_cache(maxsize=4)
def _names_by_gvk(minor: int) -> dict[tuple[str, str, str], str]:
    index = {}
    for name, definition in builtin_definitions(minor).items():
        for gvk in definition.get(GVK_EXTENSION) or ():
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def definition_name(minor: int, group: str, version: str, kind: str) -> str | None:
    """The definition that carries this group/version/kind, as the API server names it."""
    return _names_by_gvk(minor).get((group, version, kind))


def referenced_names(schema: Any) -> set[str]:
    """Names of the definitions ``schema`` refers to directly."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(V3_PREFIX):
                found.add(ref[len(V3_PREFIX) :])
            stack.extend(v for k, v in node.items() if k not in _LITERAL_KEYWORDS)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def closure(definitions: dict[str, Schema], roots: set[str]) -> dict[str, Schema]:
    """``roots`` and every definition they reach through references."""
    selected: dict[str, Schema] = {}
    pending = [name for name in roots if name in definitions]
    while pending:
        name = pending.pop()
        if name in selected:
            continue
        selected[name] = definitions[name]
        pending.extend(n for n in referenced_names(definitions[name]) if n in definitions)
    return selected
