"""What each request asks for, in RBAC terms, and the log of requests served.

``RequestInfo.parse`` follows the apiserver's ``RequestInfoFactory``: a GET on a collection is
``list`` (``watch`` with ``?watch=true``), a DELETE on a collection is ``deletecollection``, and
so on, so tests can check a client against the RBAC rules it is meant to need.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

_VERB_FOR_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = ("status", "finalize")


def is_true(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


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
    name: str = ""

    @classmethod
    def parse(cls, method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
        parts = [p for p in path.split("/") if p]
        non_resource = cls(path=path, verb=method.lower())
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return non_resource
        if not rest:
            return non_resource
        watch_path = rest[0] == "watch"  # the deprecated /watch/ prefix
        if watch_path:
            rest = rest[1:]
        namespace = ""
        if len(rest) >= 2 and rest[0] == "namespaces":
            namespace = rest[1]
            if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
                rest = rest[2:]
        resource = rest[0] if rest else ""
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if method == "GET":
            if watch_path or is_true(query.get("watch")):
                verb = "watch"
            else:
                verb = "get" if name else "list"
        elif method == "DELETE" and not name:
            verb = "deletecollection"
        else:
            verb = _VERB_FOR_METHOD.get(method, method.lower())
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
        )


@dataclass(frozen=True)
class RequestRecord:
    """One served request. ``status_code`` is None for a connection dropped by a fault; ``user``
    is the bearer token that authenticated it (each kubeconfig names its user by its token)."""

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
