"""ObjectMeta helpers shared by every kind: its fields, timestamps, generated names, owners.

The validation of names, labels and the rest of ObjectMeta is in ``validation.meta``.
"""

from __future__ import annotations

import secrets
import string
from datetime import datetime, timezone
from typing import Any

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


def controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any."""
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None
