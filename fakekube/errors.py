"""API errors as the apiserver reports them: ``Status`` objects with a reason and an HTTP code.

The constructors mirror ``k8s.io/apimachinery/pkg/api/errors`` so that messages, reasons and
``details`` read exactly like a real cluster's (clients and humans match on them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class GroupResource:
    """A resource qualified by its API group, e.g. ``jobs.batch`` (``pods`` for the core group)."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class GroupKind:
    """A kind qualified by its API group, e.g. ``Job.batch`` (``Pod`` for the core group)."""

    group: str
    kind: str

    def __str__(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


class GoLiteral(str):
    """A value already rendered as Go prints it (``%#v`` of a struct or map, say)."""


def go_repr(value: Any) -> str:
    """Render a value the way Go's ``%v``/``%q`` verbs do in field error messages."""
    if isinstance(value, GoLiteral):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One validation failure, like ``field.Error`` in apimachinery."""

    type: str  # FieldValueRequired, FieldValueInvalid, ...
    field: str
    bad_value: Any = None
    detail: str = ""

    _TITLES: ClassVar[dict[str, str]] = {
        "FieldValueRequired": "Required value",
        "FieldValueInvalid": "Invalid value",
        "FieldValueTypeInvalid": "Invalid value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueNotFound": "Not found",
        "InternalError": "Internal error",
    }
    # Error types whose message never shows the offending value.
    _VALUELESS: ClassVar[frozenset[str]] = frozenset(
        {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}
    )

    def body(self) -> str:
        title = self._TITLES[self.type]
        text = title if self.type in self._VALUELESS else f"{title}: {go_repr(self.bad_value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls("FieldValueRequired", field, "", detail)

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("FieldValueInvalid", field, value, detail)

    @classmethod
    def type_invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("FieldValueTypeInvalid", field, value, detail)

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: list[str]) -> FieldError:
        detail = "supported values: " + ", ".join(json.dumps(v) for v in supported)
        return cls("FieldValueNotSupported", field, value, detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls("FieldValueDuplicate", field, value)

    @classmethod
    def not_found(cls, field: str, value: Any, detail: str = "") -> FieldError:
        return cls("FieldValueNotFound", field, value, detail)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls("FieldValueForbidden", field, "", detail)

    @classmethod
    def too_long(cls, field: str, max_length: int) -> FieldError:
        unit = "byte" if max_length == 1 else "bytes"
        return cls("FieldValueTooLong", field, "", f"may not be more than {max_length} {unit}")

    @classmethod
    def too_many(cls, field: str, actual: int, max_items: int) -> FieldError:
        return cls("FieldValueTooMany", field, actual, f"must have at most {max_items} items")


class StatusError(Exception):
    """An API failure carrying the ``Status`` body the server answers with."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    @property
    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    # Constructors named after their apimachinery counterparts.

    @classmethod
    def not_found(cls, resource: GroupResource, name: str) -> StatusError:
        return cls(404, "NotFound", f'{resource} "{name}" not found', _details(resource, name))

    @classmethod
    def no_such_route(cls) -> StatusError:
        return cls(404, "NotFound", "the server could not find the requested resource", {})

    @classmethod
    def already_exists(cls, resource: GroupResource, name: str) -> StatusError:
        return cls(
            409, "AlreadyExists", f'{resource} "{name}" already exists', _details(resource, name)
        )

    @classmethod
    def conflict(cls, resource: GroupResource, name: str, why: str) -> StatusError:
        message = f'Operation cannot be fulfilled on {resource} "{name}": {why}'
        return cls(409, "Conflict", message, _details(resource, name))

    @classmethod
    def stale_update(cls, resource: GroupResource, name: str) -> StatusError:
        return cls.conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )

    @classmethod
    def invalid(cls, kind: GroupKind, name: str, errors: list[FieldError]) -> StatusError:
        # The message lists each distinct error once (``ToAggregate``); the causes list them all.
        unique = list(dict.fromkeys(map(str, errors)))
        summary = unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
        details: dict[str, Any] = {
            "name": name,
            "group": kind.group,
            "kind": kind.kind,
            "causes": [_cause(e) for e in errors],
        }
        # Go omits empty strings from StatusDetails (omitempty).
        details = {k: v for k, v in details.items() if v or k == "causes"}
        return cls(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)

    @classmethod
    def request_entity_too_large(cls, message: str) -> StatusError:
        return cls(413, "RequestEntityTooLarge", f"Request entity too large: {message}")

    @classmethod
    def unknown(cls, code: int, message: str) -> StatusError:
        """An error that is not a Status in the apiserver (reason ``Unknown``: empty, omitted)."""
        return cls(code, "", message)

    @classmethod
    def expired(cls, message: str) -> StatusError:
        return cls(410, "Expired", message)

    @classmethod
    def too_old_resource_version(cls, requested: int, oldest: int) -> StatusError:
        return cls.expired(f"too old resource version: {requested} ({oldest})")

    @classmethod
    def bad_request(cls, message: str) -> StatusError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(cls) -> StatusError:
        return cls(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    @classmethod
    def unsupported_media_type(cls, content_type: str, accepted: list[str]) -> StatusError:
        message = (
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(accepted)}"
        )
        return cls(415, "UnsupportedMediaType", message, {"causes": [{"message": content_type}]})

    @classmethod
    def forbidden(cls, resource: GroupResource, name: str, why: str) -> StatusError:
        subject = f'{resource} "{name}"' if name else str(resource)
        return cls(403, "Forbidden", f"{subject} is forbidden: {why}", _details(resource, name))

    @classmethod
    def internal(cls, why: str) -> StatusError:
        return cls(
            500, "InternalError", f"Internal error occurred: {why}", {"causes": [{"message": why}]}
        )


def _cause(error: FieldError) -> dict[str, Any]:
    cause = {"reason": error.type, "message": error.body(), "field": error.field}
    return {k: v for k, v in cause.items() if v}


def _details(resource: GroupResource, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "group": resource.group, "kind": resource.resource}
    # Go omits empty strings from StatusDetails (omitempty).
    return {k: v for k, v in details.items() if v}


# Reasons the apiserver uses for each HTTP code, for faults injected by status code alone.
REASON_FOR_CODE = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
