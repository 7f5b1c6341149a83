"""What each request asks for, in RBAC terms, and the log of requests served.

``RequestInfo.parse`` follows the apiserver's ``RequestInfoFactory``: a GET on a collection is
``list`` (``watch`` with ``?watch=true``), a DELETE on a collection is ``deletecollection``, a
list or watch with a ``metadata.name`` field selector names that object, and so on: these are the
attributes the authorizer checks, and tests can hold a client to the RBAC rules it needs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

_VERB_FOR_METHOD = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
# Verbs spelled as a path segment before the resource (/api/v1/watch/pods); proxy takes no
# subresource.
_SPECIAL_VERBS = ("proxy", "redirect", "watch")


def is_true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _query_bool(value: str | None) -> bool:
    """A boolean query parameter as the apiserver decodes it: anything but 0 or false is true."""
    return value is not None and value != "0" and value.lower() != "false"


def _split_terms(selector: str) -> list[str]:
    """``fields.splitTerms``: split on commas that no backslash escapes, escapes kept."""
    terms, start, escaped = [], 0, False
    for index, char in enumerate(selector):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(selector[start:index])
            start = index + 1
    return [*terms, selector[start:]]


def _split_term(term: str) -> tuple[str, str, str] | None:
    """``fields.splitTerm``: left side, operator, right side, at the first operator found."""
    for index in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape_value(value: str) -> str | None:
    """``fields.UnescapeValue``; None for an invalid escape or a bare comma or equals sign."""
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                return None
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


def name_from_field_selector(selector: str | None) -> str:
    """The name a ``metadata.name`` term of the selector pins (``RequiresExactMatch``), if the
    selector parses and the name is a valid path segment; else empty."""
    found = ""
    for term in sorted(_split_terms(selector or "")) if selector else ():
        if not term:
            continue
        parsed = _split_term(term)
        value = None if parsed is None else _unescape_value(parsed[2])
        if parsed is None or value is None:
            return ""  # the request's list options do not decode: no name
        field, operator, _ = parsed
        if field == "metadata.name" and operator != "!=" and not found:
            found = value
    if found in (".", "..") or "/" in found or "%" in found:
        return ""
    return found


@dataclass(frozen=True)
class RequestInfo:
    path: str
    verb: str
    is_resource_request: bool = False
    api_group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    #: As authorized: the URL's name, or the one a list's or watch's field selector pins.
    name: str = ""
    #: The name segment of the URL only, which routes the request.
    path_name: str = ""

    @classmethod
    def parse(cls, method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
        """``RequestInfoFactory.NewRequestInfo``."""
        parts = path.strip("/").split("/") if path.strip("/") else []
        non_resource = cls(path=path, verb=method.lower())
        if len(parts) < 3 or parts[0] not in ("api", "apis"):
            return non_resource
        if parts[0] == "api":
            group, rest = "", parts[1:]
        else:
            if len(parts) < 4:
                return non_resource
            group, rest = parts[1], parts[2:]
        version, rest = rest[0], rest[1:]
        if rest[0] in _SPECIAL_VERBS and len(rest) > 1:
            verb, rest = rest[0], rest[1:]
        else:
            verb = _VERB_FOR_METHOD.get(method, "")
        namespace = ""
        if rest[0] == "namespaces" and len(rest) > 1:
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
        resource = rest[0]
        name = path_name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 and verb != "proxy" else ""
        if not name and verb == "get":
            verb = "watch" if _query_bool(query.get("watch")) else "list"
            name = name_from_field_selector(query.get("fieldSelector"))
        if not name and verb == "delete":
            verb = "deletecollection"
        return cls(
            path=path,
            verb=verb,
            is_resource_request=True,
            api_group=group,
            version=version,
            resource=resource,
            subresource=subresource,
            namespace=namespace,
            name=name,
            path_name=path_name,
        )


@dataclass(frozen=True)
class RequestRecord:
    """One served request. ``status_code`` is None for a connection dropped by a fault; ``user``
    is the name of the user it ran as (after impersonation; see ``authn``)."""

    method: str
    path: str
    verb: str
    api_group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    status_code: int | None
    user: str = ""
    query: Mapping[str, str] = field(default_factory=dict)


class RequestLog:
    """Thread-safe: appended to by the server thread, read by tests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def record(
        self,
        method: str,
        info: RequestInfo,
        status_code: int | None,
        user: str = "",
        query: Mapping[str, str] | None = None,
    ) -> None:
        entry = RequestRecord(
            method,
            info.path,
            info.verb,
            info.api_group,
            info.version,
            info.resource,
            info.subresource,
            info.namespace,
            info.name,
            status_code,
            user,
            dict(query or {}),
        )
        with self._lock:
            self._records.append(entry)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
