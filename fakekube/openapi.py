"""OpenAPI documents, built from what the server serves at the moment they are asked for.

``/openapi/v3`` is an index of group-versions, each pointing at ``/openapi/v3/<api/v1 |
apis/group/version>?hash=<etag>``; each of those is an OpenAPI 3.0 document with the paths of that
group-version and the definitions they reach. ``/openapi/v2`` is one Swagger 2.0 document for
everything. The built-in kinds' definitions come from ``builtin_schemas``; a custom resource's
from its CRD's ``openAPIV3Schema`` for that version, completed as the apiextensions builder
completes it (``apiVersion``, ``kind``, ``metadata`` and ``x-kubernetes-group-version-kind``), so
documents change as CRDs come, change and go.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from .builtin_schemas import (
    GVK_EXTENSION,
    V3_PREFIX,
    BuiltinSchemasUnavailable,
    builtin_definitions,
    closure,
    definition_name,
    referenced_names,
)
from .openapi_paths import (
    PARAMETER_DESCRIPTIONS,
    PARAMETER_TYPES,
    QUERY_PARAMETERS,
    Route,
    operation_id_and_tag,
    resource_routes,
)
from .resources import ResourceRegistry, ResourceType

Schema = dict[str, Any]

V2_PREFIX = "#/definitions/"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
OBJECT_META, LIST_META = META + "ObjectMeta", META + "ListMeta"
STATUS, DELETE_OPTIONS, PATCH = META + "Status", META + "DeleteOptions", META + "Patch"
# Where the descriptions of apiVersion, kind and metadata are borrowed from, as the
# apiextensions builder takes them from TypeMeta and PartialObjectMetadata.
_TYPE_META_SAMPLE = "io.k8s.api.core.v1.ConfigMap"
_LIST_META_SAMPLE = "io.k8s.api.core.v1.ConfigMapList"
SECURITY_SCHEMES = {
    "BearerToken": {
        "type": "apiKey",
        "description": "Bearer Token authentication",
        "name": "authorization",
        "in": "header",
    }
}
JSON = "application/json"
BODY_TYPES = (JSON, "application/yaml")
STATUS_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}
SUCCESS_CODES = {
    "post": ("200", "201", "202"),
    "put": ("200", "201"),
    "patch": ("200", "201"),
    "delete": ("200", "202"),
}


@dataclass(frozen=True)
class Document:
    body: bytes
    #: SHA-512 of the body in upper-case hex: kube-openapi's ETag, and the ``hash`` query.
    etag: str


def as_document(content: Any) -> Document:
    body = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return Document(body, hashlib.sha512(body).hexdigest().upper())


def group_version_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def rest_friendly_name(group: str, version: str, kind: str) -> str:
    """``util.ToRESTFriendlyName("group/version/kind")``: the group's domain reversed."""
    group = ".".join(reversed(group.split("."))) if "." in group else group
    return ".".join(part for part in (group, version, kind) if part)


def _unfold_int_or_string(node: Any) -> None:
    """``Structural.Unfold``: x-kubernetes-int-or-string becomes an explicit anyOf."""
    if isinstance(node, list):
        for item in node:
            _unfold_int_or_string(item)
        return
    if not isinstance(node, dict):
        return
    if node.get("x-kubernetes-int-or-string"):
        either = [{"type": "integer"}, {"type": "string"}]
        if "anyOf" not in node:
            node["anyOf"] = either
        elif node["anyOf"] != either:
            node["allOf"] = [{"anyOf": either}, *node.get("allOf", [])]
    for key, value in node.items():
        if key == "properties":
            for sub in value.values():
                _unfold_int_or_string(sub)
        elif key in ("items", "additionalProperties", "allOf", "anyOf", "oneOf", "not"):
            _unfold_int_or_string(value)


class OpenApiPublisher:
    """Builds and caches the documents; a group-version's document is rebuilt only when the
    resource types it serves change (a CRD written or deleted)."""

    def __init__(self, registry: ResourceRegistry, minor: int, version: str):
        self._registry = registry
        self._minor = minor
        self._version = version
        self._v3: dict[str, tuple[tuple[ResourceType, ...], Document]] = {}
        self._v2: tuple[tuple[ResourceType, ...], Document] | None = None

    # What is served.

    def _group_versions(self) -> dict[str, tuple[ResourceType, ...]]:
        served = {}
        for group, versions in self._registry.groups().items():
            for version in versions:
                types = self._registry.in_group_version(group, version)
                served[group_version_key(group, version)] = tuple(
                    sorted(types, key=lambda rt: rt.plural)
                )
        return dict(sorted(served.items()))

    def _definitions(self) -> dict[str, Schema]:
        try:
            return builtin_definitions(self._minor)
        except BuiltinSchemasUnavailable:
            return {}

    # Documents.

    def v3_index(self) -> Document:
        paths = {
            key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={document.etag}"}
            for key, document in self._v3_documents().items()
        }
        return as_document({"paths": paths})

    def v3_document(self, key: str) -> Document | None:
        return self._v3_documents().get(key)

    def _v3_documents(self) -> dict[str, Document]:
        documents = {}
        for key, types in self._group_versions().items():
            cached = self._v3.get(key)
            if cached is None or cached[0] != types:
                cached = (types, as_document(self._build_v3(types)))
                self._v3[key] = cached
            documents[key] = cached[1]
        for gone in set(self._v3) - set(documents):
            del self._v3[gone]
        return documents

    def v2_document(self) -> Document:
        types = tuple(rt for group in self._group_versions().values() for rt in group)
        if self._v2 is None or self._v2[0] != types:
            self._v2 = (types, as_document(self._build_v2(types)))
        return self._v2[1]

    # Definitions of kinds.

    def _kind_definitions(self, rt: ResourceType) -> tuple[str, str, dict[str, Schema]] | None:
        """The definition names of ``rt``'s kind and list kind, and the definitions that are
        not built in (a custom resource's); None for a built-in kind the package lacks."""
        if rt.is_custom:
            return self._custom_definitions(rt)
        if not self._definitions():
            return None  # no schema package: built-in kinds go unpublished
        kind = definition_name(self._minor, rt.group, rt.version, rt.kind)
        listing = definition_name(self._minor, rt.group, rt.version, rt.list_kind)
        if kind is None or listing is None:
            return None
        return kind, listing, {}

    def _custom_definitions(self, rt: ResourceType) -> tuple[str, str, dict[str, Schema]]:
        definitions = self._definitions()
        schema = copy.deepcopy(getattr(rt.strategy, "schema", None) or {}) or {"type": "object"}
        _unfold_int_or_string(schema)
        sample = definitions.get(_TYPE_META_SAMPLE, {}).get("properties", {})
        list_sample = definitions.get(_LIST_META_SAMPLE, {}).get("properties", {})
        properties = schema.setdefault("properties", {})
        for field in ("apiVersion", "kind"):
            if field in sample:
                properties[field] = copy.deepcopy(sample[field])
        properties["metadata"] = {"$ref": V3_PREFIX + OBJECT_META}
        if description := sample.get("metadata", {}).get("description"):
            properties["metadata"]["description"] = description
        self._add_embedded_properties(schema, sample)
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        schema[GVK_EXTENSION] = [gvk]
        kind_name = rest_friendly_name(rt.group, rt.version, rt.kind)
        list_name = rest_friendly_name(rt.group, rt.version, rt.list_kind)
        list_schema: Schema = {
            "description": f"{rt.list_kind} is a list of {rt.kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                "items": {
                    "description": f"List of {rt.plural}. More info: "
                    "https://git.k8s.io/community/contributors/devel/sig-architecture/"
                    "api-conventions.md",
                    "type": "array",
                    "items": {"$ref": V3_PREFIX + kind_name},
                },
                "metadata": {"$ref": V3_PREFIX + LIST_META},
                **{f: copy.deepcopy(sample[f]) for f in ("apiVersion", "kind") if f in sample},
            },
            GVK_EXTENSION: [{**gvk, "kind": rt.list_kind}],
        }
        if description := list_sample.get("metadata", {}).get("description"):
            list_schema["properties"]["metadata"]["description"] = description
        return kind_name, list_name, {kind_name: schema, list_name: list_schema}

    def _add_embedded_properties(self, node: Any, sample: dict[str, Schema]) -> None:
        """Nested objects marked x-kubernetes-embedded-resource get apiVersion, kind and
        metadata, and require the first two (``addEmbeddedProperties``)."""
        if not isinstance(node, dict):
            return
        for sub in (node.get("properties") or {}).values():
            self._add_embedded_properties(sub, sample)
        for key in ("items", "additionalProperties"):
            self._add_embedded_properties(node.get(key), sample)
        if node.get("x-kubernetes-embedded-resource"):
            properties = node.setdefault("properties", {})
            for field in ("apiVersion", "kind"):
                if field in sample:
                    properties[field] = copy.deepcopy(sample[field])
            properties["metadata"] = {"$ref": V3_PREFIX + OBJECT_META}
            required = node.setdefault("required", [])
            for field in ("kind", "apiVersion"):
                if field not in required:
                    required.append(field)

    # Paths.

    def _routes(
        self, types: tuple[ResourceType, ...]
    ) -> tuple[list[tuple[ResourceType, Route, dict[str, str]]], dict[str, Schema]]:
        """Every route of ``types`` with the schema names its bodies use, and the definitions
        (custom and built-in) the document needs."""
        definitions = self._definitions()
        routes = []
        custom: dict[str, Schema] = {}
        roots = {STATUS, DELETE_OPTIONS, PATCH}
        for rt in types:
            kinds = self._kind_definitions(rt)
            if kinds is None:
                continue
            kind_name, list_name, own = kinds
            custom.update(own)
            roots |= {kind_name, list_name}
            for schema in own.values():
                roots |= referenced_names(schema)
            names = {"kind": kind_name, "list": list_name, "status": STATUS}
            names |= {"patch": PATCH, "delete": DELETE_OPTIONS}
            routes.extend((rt, route, names) for route in resource_routes(rt))
        selected = closure({**definitions, **custom}, roots)
        return routes, selected

    @staticmethod
    def _patch_types(rt: ResourceType) -> list[str]:
        types = ["application/apply-patch+yaml", "application/json-patch+json"]
        types.append("application/merge-patch+json")
        if rt.strategy.supports_strategic_merge:
            types.append("application/strategic-merge-patch+json")
        return types

    @staticmethod
    def _gvk(rt: ResourceType) -> dict[str, str]:
        return {"group": rt.group, "version": rt.version, "kind": rt.kind}

    @staticmethod
    def _path_parameters(path: str) -> list[str]:
        return [name for name in ("name", "namespace") if f"{{{name}}}" in path]

    def _build_v3(self, types: tuple[ResourceType, ...]) -> dict[str, Any]:
        routes, schemas = self._routes(types)
        paths: dict[str, dict[str, Any]] = {}
        for rt, route, names in routes:
            item = paths.setdefault(route.path, {"parameters": self._v3_path_parameters(route)})
            item[route.method] = self._v3_operation(rt, route, names)
        custom = any(rt.is_custom for rt in types)
        return {
            "openapi": "3.0.0",
            "info": {
                "title": "Kubernetes CRD Swagger" if custom else "Kubernetes",
                "version": "v0.1.0" if custom else self._version,
            },
            "paths": paths,
            "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
            "security": [{"BearerToken": []}],
        }

    def _v3_path_parameters(self, route: Route) -> list[dict[str, Any]]:
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": PARAMETER_DESCRIPTIONS[name],
                "schema": {"type": "string", "uniqueItems": True},
            }
            for name in self._path_parameters(route.path)
        ]
        parameters.append(
            {
                "name": "pretty",
                "in": "query",
                "description": PARAMETER_DESCRIPTIONS["pretty"],
                "schema": {"type": "string", "uniqueItems": True},
            }
        )
        return parameters

    def _v3_operation(self, rt: ResourceType, route: Route, names: dict[str, str]) -> Schema:
        operation_id, tag = operation_id_and_tag(route.operation, route.path)
        response = (
            {"type": "string"}
            if route.response == "text"
            else {"$ref": V3_PREFIX + names[route.response]}
        )
        content_types = ("text/plain",) if route.response == "text" else (JSON,)
        responses: dict[str, Any] = {
            code: {
                "description": STATUS_TEXT[code],
                "content": {t: {"schema": response} for t in content_types},
            }
            for code in SUCCESS_CODES.get(route.method, ("200",))
        }
        responses["401"] = {"description": "Unauthorized"}
        operation: Schema = {
            "description": route.description,
            "operationId": operation_id,
            "tags": [tag],
            "responses": responses,
            "x-kubernetes-action": route.action,
            GVK_EXTENSION: self._gvk(rt),
        }
        if parameters := QUERY_PARAMETERS[route.parameters]:
            operation["parameters"] = [
                {
                    "name": name,
                    "in": "query",
                    "description": PARAMETER_DESCRIPTIONS[name],
                    "schema": {"type": PARAMETER_TYPES.get(name, "string"), "uniqueItems": True},
                }
                for name in parameters
            ]
        if route.body:
            body_types = self._patch_types(rt) if route.body == "patch" else BODY_TYPES
            schema = {"$ref": V3_PREFIX + names[route.body]}
            operation["requestBody"] = {
                "content": {t: {"schema": schema} for t in body_types},
                "required": route.body != "delete",
            }
        return operation

    # Swagger 2.0.

    def _build_v2(self, types: tuple[ResourceType, ...]) -> dict[str, Any]:
        routes, schemas = self._routes(types)
        paths: dict[str, dict[str, Any]] = {}
        for rt, route, names in routes:
            item = paths.setdefault(route.path, {"parameters": self._v2_path_parameters(route)})
            item[route.method] = self._v2_operation(rt, route, names)
        definitions = {
            name: _to_v2(schema, custom=name not in self._definitions())
            for name, schema in schemas.items()
        }
        return {
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": self._version},
            "paths": _v2_refs(paths),
            "definitions": _v2_refs(definitions),
            "securityDefinitions": SECURITY_SCHEMES,
            "security": [{"BearerToken": []}],
        }

    def _v2_path_parameters(self, route: Route) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "type": "string",
                "uniqueItems": True,
                "description": PARAMETER_DESCRIPTIONS[name],
            }
            for name in self._path_parameters(route.path)
        ]
        parameters.append(
            {
                "name": "pretty",
                "in": "query",
                "type": "string",
                "uniqueItems": True,
                "description": PARAMETER_DESCRIPTIONS["pretty"],
            }
        )
        return parameters

    def _v2_operation(self, rt: ResourceType, route: Route, names: dict[str, str]) -> Schema:
        operation_id, tag = operation_id_and_tag(route.operation, route.path)
        response = (
            {"type": "string"}
            if route.response == "text"
            else {"$ref": V3_PREFIX + names[route.response]}
        )
        responses: dict[str, Any] = {
            code: {"description": STATUS_TEXT[code], "schema": response}
            for code in SUCCESS_CODES.get(route.method, ("200",))
        }
        responses["401"] = {"description": "Unauthorized"}
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "query",
                "type": PARAMETER_TYPES.get(name, "string"),
                "uniqueItems": True,
                "description": PARAMETER_DESCRIPTIONS[name],
            }
            for name in QUERY_PARAMETERS[route.parameters]
        ]
        if route.body:
            parameters.append(
                {
                    "name": "body",
                    "in": "body",
                    "required": route.body != "delete",
                    "schema": {"$ref": V3_PREFIX + names[route.body]},
                }
            )
        operation: Schema = {
            "description": route.description,
            "operationId": operation_id,
            "tags": [tag],
            "consumes": self._patch_types(rt) if route.body == "patch" else list(BODY_TYPES),
            "produces": ["text/plain"] if route.response == "text" else [JSON],
            "schemes": ["https"],
            "responses": responses,
            "x-kubernetes-action": route.action,
            GVK_EXTENSION: self._gvk(rt),
        }
        if parameters:
            operation["parameters"] = parameters
        return operation


def _v2_refs(node: Any) -> Any:
    if isinstance(node, list):
        return [_v2_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str) and value.startswith(V3_PREFIX):
            out[key] = V2_PREFIX + value[len(V3_PREFIX) :]
        elif key in ("enum", "default", "example", "required", GVK_EXTENSION):
            out[key] = value
        else:
            out[key] = _v2_refs(value)
    return out


def _to_v2(schema: Any, *, custom: bool) -> Any:
    """A definition as Swagger 2.0 publishes it. Built-in IntOrString and Quantity are typed
    strings there; custom resources' schemas go through ``ToStructuralOpenAPIV2`` (no junctors,
    no nullable, nothing under x-kubernetes-preserve-unknown-fields) and lose their defaults."""
    if isinstance(schema, list):
        return [_to_v2(item, custom=custom) for item in schema]
    if not isinstance(schema, dict):
        return schema
    node = dict(schema)
    one_of = node.pop("oneOf", None)
    if one_of is not None and not custom:
        node["type"] = "string"
    if custom:
        for junctor in ("allOf", "anyOf", "not"):
            node.pop(junctor, None)
        node.pop("default", None)
        if node.pop("nullable", False):
            for key in ("type", "items", "properties"):
                node.pop(key, None)
        if node.get("x-kubernetes-preserve-unknown-fields"):
            node.pop("items", None)
            node.pop("properties", None)
        if node.get("type") == "array" and "items" not in node:
            node.pop("type")
    properties = node.get("properties")
    if isinstance(properties, dict):
        if custom and node.get("required"):
            nullable = {
                k for k, v in properties.items() if isinstance(v, dict) and v.get("nullable")
            }
            node["required"] = [r for r in node["required"] if r not in nullable]
            if not node["required"]:
                del node["required"]
        node["properties"] = {k: _to_v2(v, custom=custom) for k, v in properties.items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _to_v2(node[key], custom=custom)
    return node
