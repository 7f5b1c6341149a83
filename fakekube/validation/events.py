"""Events: core/v1 keeps the legacy rules only; events.k8s.io/v1 adds the strict ones."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError
from .meta import object_meta, object_meta_update
from .names import is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain

_LIMITS = (("reportingInstance", 128), ("action", 128), ("reason", 128))


def _legacy(event: dict[str, Any]) -> list[FieldError]:
    """``legacyValidateEvent``; ``event`` is in core/v1 field names."""
    errors: list[FieldError] = []
    namespace = event["metadata"].get("namespace") or ""
    involved = (event.get("involvedObject") or {}).get("namespace") or ""
    mismatch = FieldError.invalid(
        "involvedObject.namespace", involved, "does not match event.namespace"
    )
    if not event.get("eventTime"):
        if not involved:
            if namespace not in ("", "default"):
                errors.append(mismatch)
        elif namespace != involved:
            errors.append(mismatch)
    else:
        if not involved and namespace not in ("default", "kube-system"):
            errors.append(mismatch)
        controller = event.get("reportingComponent") or ""
        if not controller:
            errors.append(FieldError.required("reportingController"))
        errors += [
            FieldError.invalid("reportingController", controller, p)
            for p in is_qualified_name(controller)
        ]
        for key, limit in _LIMITS:
            value = event.get(key) or ""
            if not value:
                errors.append(FieldError.required(key))
            if len(value) > limit:
                errors.append(FieldError.invalid(key, "", f"can have at most {limit} characters"))
        if len(event.get("message") or "") > 1024:
            errors.append(FieldError.invalid("message", "", "can have at most 1024 characters"))
    errors += [
        FieldError.invalid("namespace", namespace, p) for p in is_dns1123_subdomain(namespace)
    ]
    return errors


def _series(event: dict[str, Any]) -> list[FieldError]:
    series = event.get("series")
    if series is None:
        return []
    errors = []
    if (series.get("count") or 0) < 2:
        errors.append(FieldError.invalid("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errors.append(FieldError.required("series.lastObservedTime"))
    return errors


def validate_event(event: dict[str, Any], strict: bool) -> list[FieldError]:
    """``ValidateEventCreate``; ``strict`` for events.k8s.io/v1 requests."""
    errors = _legacy(event)
    if not strict:
        return errors
    errors += object_meta(event["metadata"], namespaced=True, name_rule=name_is_dns_subdomain)
    errors += _series(event)
    if not event.get("eventTime"):
        errors.append(FieldError.required("eventTime"))
    kind = event.get("type") or ""
    if kind not in ("Normal", "Warning"):
        errors.append(FieldError.invalid("type", "", f"has invalid value: {kind}"))
    for key in ("firstTimestamp", "lastTimestamp"):
        if event.get(key):
            errors.append(FieldError.invalid(key, "", "needs to be unset"))
    if event.get("count"):
        errors.append(FieldError.invalid("count", "", "needs to be unset"))
    source = event.get("source") or {}
    if source.get("component") or source.get("host"):
        errors.append(FieldError.invalid("source", "", "needs to be unset"))
    return errors


_IMMUTABLE = (
    ("involvedObject", "involvedObject"),
    ("reason", "reason"),
    ("message", "message"),
    ("source", "source"),
    ("firstTimestamp", "firstTimestamp"),
    ("lastTimestamp", "lastTimestamp"),
    ("count", "count"),
    ("reason", "reason"),
    ("type", "type"),
    ("eventTime", "eventTime"),
    ("action", "action"),
    ("related", "related"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
)


def validate_event_update(
    event: dict[str, Any], old: dict[str, Any], strict: bool
) -> list[FieldError]:
    errors = _legacy(event)
    if not strict:
        return errors
    errors += object_meta_update(event["metadata"], old["metadata"])
    if event.get("series") != old.get("series"):
        errors += _series(event)
    for key, label in _IMMUTABLE:
        if event.get(key) != old.get(key):
            errors.append(FieldError.invalid(label, event.get(key), "field is immutable"))
    return errors
