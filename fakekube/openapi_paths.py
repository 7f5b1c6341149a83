"""The REST routes of one resource type, as the API server lists them in its OpenAPI paths.

``resource_routes`` names each operation the way the apiserver's installer (built-in kinds) and
the apiextensions OpenAPI builder (custom resources) do; ``operation_id`` then weaves in the
group and version as ``GetOperationIDAndTags`` does. The deprecated ``/watch/`` paths are left
out: the fake serves watches only as ``?watch=true`` on a list.
"""

from __future__ import annotations

from dataclasses import dataclass

from .resources import ResourceType

# Verbs an operation name starts with; the longest match wins.
_OPERATION_VERBS = (
    "deletecollection",
    "replace",
    "connect",
    "create",
    "delete",
    "patch",
    "proxy",
    "watch",
    "list",
    "read",
    "get",
    "log",
)

_LIST_PARAMETERS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
)
_DELETE_PARAMETERS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
QUERY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "list": _LIST_PARAMETERS,
    "deletecollection": tuple(
        sorted({*_LIST_PARAMETERS, *_DELETE_PARAMETERS} - {"allowWatchBookmarks", "watch"})
    ),
    "post": _WRITE_PARAMETERS,
    "put": _WRITE_PARAMETERS,
    "patch": (*_WRITE_PARAMETERS, "force"),
    "delete": _DELETE_PARAMETERS,
    "get": (),
    "log": ("container", "follow", "limitBytes", "tailLines"),
}
PARAMETER_TYPES = {
    "allowWatchBookmarks": "boolean",
    "follow": "boolean",
    "force": "boolean",
    "orphanDependents": "boolean",
    "sendInitialEvents": "boolean",
    "watch": "boolean",
    "gracePeriodSeconds": "integer",
    "limit": "integer",
    "limitBytes": "integer",
    "tailLines": "integer",
    "timeoutSeconds": "integer",
}
PARAMETER_DESCRIPTIONS = {
    "allowWatchBookmarks": "Ask a watch for BOOKMARK events.",
    "container": "The container whose log to return (needed when the pod has several).",
    "continue": "The continue token of the previous page of a paged list.",
    "dryRun": "All: process the request without persisting anything.",
    "fieldManager": "The name of the actor making the change, recorded in managedFields.",
    "fieldSelector": "Only objects whose fields match this selector.",
    "fieldValidation": (
        "How to treat unknown or duplicate fields in the request body: Ignore drops them, "
        "Warn (the default) drops them with a Warning header each, Strict fails the request."
    ),
    "follow": "Stream the log as it grows.",
    "force": "Apply requests only: take over fields other managers own.",
    "gracePeriodSeconds": "Seconds before the object is deleted.",
    "labelSelector": "Only objects whose labels match this selector.",
    "limit": "At most this many objects; the rest come with the continue token.",
    "limitBytes": "At most this many bytes of log.",
    "name": "The name of the object.",
    "namespace": "The namespace the object lives in.",
    "orphanDependents": "Deprecated: use propagationPolicy.",
    "pretty": "Pretty-print the output when 'true'.",
    "propagationPolicy": "What happens to dependents: Orphan, Background or Foreground.",
    "resourceVersion": "The resource version the list or watch starts from.",
    "resourceVersionMatch": "How resourceVersion constrains a list.",
    "sendInitialEvents": "Start a watch with the current state as ADDED events.",
    "tailLines": "Only the last lines of the log.",
    "timeoutSeconds": "End the list or watch after this long.",
    "watch": "Stream changes instead of returning a list.",
}


@dataclass(frozen=True)
class Route:
    path: str
    #: The HTTP method, lower case, as OpenAPI path items name them.
    method: str
    #: ``x-kubernetes-action``.
    action: str
    #: The operation name before the group and version are woven in (``listNamespacedPod``).
    operation: str
    description: str
    #: What the 200 response carries: ``kind``, ``list``, ``status`` or ``text``.
    response: str
    #: What the request body carries: ``kind``, ``patch``, ``delete`` or nothing.
    body: str | None = None
    #: Which query parameters it takes (a key of ``QUERY_PARAMETERS``).
    parameters: str = "get"


def _article(noun: str) -> str:
    """``endpoints.GetArticleForNoun``: plurals get none, else "a" or "an"."""
    if noun.endswith("s") and not noun.endswith("ss"):
        return " "
    return " an " if noun[:1].lower() in "aeiou" else " a "


def group_version_prefix(rt: ResourceType) -> str:
    return f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"


def resource_routes(rt: ResourceType) -> list[Route]:
    kind, verbs = rt.kind, set(rt.verbs)
    scope = "Namespaced" if rt.namespaced else ""
    prefix = group_version_prefix(rt)
    root = (
        f"{prefix}/namespaces/{{namespace}}/{rt.plural}"
        if rt.namespaced
        else f"{prefix}/{rt.plural}"
    )
    item = f"{root}/{{name}}"
    listing = "list" if rt.is_custom else "list or watch"
    # The installer calls it deleteCollection..., the CRD builder deletecollection...
    delete_collection = "deletecollection" if rt.is_custom else "deleteCollection"
    routes: list[Route] = []
    if "list" in verbs:
        if rt.namespaced:
            routes.append(
                Route(
                    f"{prefix}/{rt.plural}",
                    "get",
                    "list",
                    f"list{kind}ForAllNamespaces",
                    f"{listing} objects of kind {kind}",
                    "list",
                    parameters="list",
                )
            )
        routes.append(
            Route(
                root,
                "get",
                "list",
                f"list{scope}{kind}",
                f"{listing} objects of kind {kind}",
                "list",
                parameters="list",
            )
        )
    if "create" in verbs:
        routes.append(
            Route(
                root,
                "post",
                "post",
                f"create{scope}{kind}",
                f"create{_article(kind)}{kind}",
                "kind",
                "kind",
                "post",
            )
        )
    if "deletecollection" in verbs:
        routes.append(
            Route(
                root,
                "delete",
                "deletecollection",
                f"{delete_collection}{scope}{kind}",
                f"delete collection of {kind}",
                "status",
                "delete",
                "deletecollection",
            )
        )
    deleted = "kind" if rt.strategy.returns_deleted_object else "status"
    item_routes = (
        ("get", "get", "get", "read", "read the specified", "kind", None),
        ("put", "put", "update", "replace", "replace the specified", "kind", "kind"),
        ("patch", "patch", "patch", "patch", "partially update the specified", "kind", "patch"),
        (
            "delete",
            "delete",
            "delete",
            "delete",
            f"delete{_article(kind).rstrip()}",
            deleted,
            "delete",
        ),
    )
    for method, action, needs, verb, text, response, body in item_routes:
        if needs in verbs:
            routes.append(
                Route(
                    item,
                    method,
                    action,
                    f"{verb}{scope}{kind}",
                    f"{text} {kind}",
                    response,
                    body,
                    action,
                )
            )
    if rt.has_status:
        for method, action, verb, text, body in (
            ("get", "get", "read", "read status of the specified", None),
            ("put", "put", "replace", "replace status of the specified", "kind"),
            ("patch", "patch", "patch", "partially update status of the specified", "patch"),
        ):
            routes.append(
                Route(
                    f"{item}/status",
                    method,
                    action,
                    f"{verb}{scope}{kind}Status",
                    f"{text} {kind}",
                    "kind",
                    body,
                    action,
                )
            )
    for subresource in rt.get_subresources:
        routes.append(
            Route(
                f"{item}/{subresource}",
                "get",
                "get",
                f"read{scope}{kind}{subresource.title()}",
                f"read {subresource} of the specified {kind}",
                "text",
                parameters=subresource if subresource in QUERY_PARAMETERS else "get",
            )
        )
    if rt.group == "" and rt.plural == "namespaces":
        routes.append(
            Route(
                f"{item}/finalize",
                "put",
                "put",
                f"replace{kind}Finalize",
                f"replace finalize of the specified {kind}",
                "kind",
                "kind",
                "put",
            )
        )
    return routes


def _valid_operation_id(text: str, capitalize_first: bool) -> str:
    """``ToValidOperationID``: letters, underscores and (not first) digits; anything else drops
    out and capitalizes what follows."""
    out, capitalize = [], capitalize_first
    for index, char in enumerate(text):
        if char.isalpha() or char == "_" or (index and char.isdigit()):
            out.append(char.upper() if capitalize else char)
            capitalize = False
        else:
            capitalize = True
    return "".join(out)


def operation_id_and_tag(operation: str, path: str) -> tuple[str, str]:
    """``GetOperationIDAndTags``: ``listNamespacedPod`` on /api/v1/... is ``listCoreV1NamespacedPod``
    with the tag ``core_v1``."""
    verb = next((v for v in _OPERATION_VERBS if operation.startswith(v)), "")
    parts = path.strip("/").split("/")
    if parts[0] == "api":
        parts = ["apis", "core", *parts[1:]]
    group = parts[1].removesuffix(".k8s.io")
    version = parts[2]
    operation_id = (
        verb
        + _valid_operation_id(group, bool(verb))
        + _valid_operation_id(version, True)
        + operation[len(verb) :]
    )
    tag = f"{_valid_operation_id(group, False)}_{_valid_operation_id(version, False)}"
    return operation_id, tag
