"""ObjectMeta rules shared by every kind: timestamps, names, labels, owner references."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .errors import FieldError

# The fields of ObjectMeta; anything else under metadata is dropped on decode, as by the apiserver.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

# Fields only the server sets; a write can never change them on an existing object.
SYSTEM_META_FIELDS = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)

_NAME_SUFFIX_ALPHABET = (
    "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet: no vowels
)


def now() -> str:
    """The current time as a metav1.Time (RFC 3339, second precision, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def random_suffix(length: int = 5) -> str:
    """Random name suffix as ``names.SimpleNameGenerator`` makes them."""
    return "".join(secrets.choice(_NAME_SUFFIX_ALPHABET) for _ in range(length))


def random_hex(length: int) -> str:
    return "".join(secrets.choice(string.hexdigits[:16]) for _ in range(length))


# Name validators, with apimachinery's messages word for word.

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + r")*"
_DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^{pattern}$")


_DNS1123_LABEL_RE = _full(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = _full(_DNS1123_SUBDOMAIN)
_DNS1035_LABEL_RE = _full(_DNS1035_LABEL)
_LABEL_VALUE_RE = _full(_LABEL_VALUE)
_QUALIFIED_NAME_RE = _full(_QUALIFIED_NAME)

NameValidator = Callable[[str], list[str]]


def dns1123_subdomain(name: str) -> list[str]:
    problems = []
    if len(name) > 253:
        problems.append("must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN_RE.match(name):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
            f"regex used for validation is '{_DNS1123_SUBDOMAIN}')"
        )
    return problems


def dns1123_label(name: str) -> list[str]:
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1123_LABEL_RE.match(name):
        problems.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
            f"regex used for validation is '{_DNS1123_LABEL}')"
        )
    return problems


def dns1035_label(name: str) -> list[str]:
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1035_LABEL_RE.match(name):
        problems.append(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
            "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
            f"'abc-123', regex used for validation is '{_DNS1035_LABEL}')"
        )
    return problems


def path_segment_name(name: str) -> list[str]:
    """RBAC objects only need names usable as a URL path segment."""
    if name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{c}'" for c in "/%" if c in name]


def label_value_problems(value: str) -> list[str]:
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.match(value):
        problems.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')"
        )
    return problems


def qualified_name_problems(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and dns1123_subdomain(prefix):
        problems.append("prefix part " + dns1123_subdomain(prefix)[-1])
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.match(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
            f"used for validation is '{_QUALIFIED_NAME}')"
        )
    return problems


def validate_labels(labels: Any, field: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError.type_invalid(field, labels, "must be a map of strings")]
    errors = []
    for key, value in labels.items():
        errors += [FieldError.invalid(field, key, p) for p in qualified_name_problems(key)]
        if not isinstance(value, str):
            errors.append(FieldError.type_invalid(f"{field}[{key}]", value, "must be a string"))
            continue
        errors += [FieldError.invalid(field, value, p) for p in label_value_problems(value)]
    return errors


def validate_object_meta(meta: dict[str, Any], name_validator: NameValidator) -> list[FieldError]:
    """``ValidateObjectMeta``: the name, labels and owner references of any object."""
    errors: list[FieldError] = []
    name = meta.get("name", "")
    if not name:
        errors.append(FieldError.required("metadata.name", "name or generateName is required"))
    else:
        errors += [FieldError.invalid("metadata.name", name, p) for p in name_validator(name)]
    errors += validate_labels(meta.get("labels"), "metadata.labels")
    annotations = meta.get("annotations")
    if annotations is not None and not all(isinstance(v, str) for v in annotations.values()):
        errors.append(
            FieldError.invalid("metadata.annotations", annotations, "values must be strings")
        )
    refs = meta.get("ownerReferences") or []
    for ref in refs:
        for required in ("apiVersion", "kind", "name", "uid"):
            if not ref.get(required):
                errors.append(
                    FieldError.invalid(
                        f"metadata.ownerReferences.{required}",
                        ref.get(required, ""),
                        f"{required} must not be empty",
                    )
                )
    if sum(1 for ref in refs if ref.get("controller")) > 1:
        errors.append(
            FieldError.invalid(
                "metadata.ownerReferences",
                refs,
                "Only one reference can have Controller set to true",
            )
        )
    return errors


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None
