"""How the apiserver answers a body that does not decode into its kind's Go type.

The answer depends on how the body came: a create or an update gets the decoder's error as a
400, a JSON or merge patch an Invalid ``patch`` with the patched object, a strategic merge patch
the same with the patch printed by Go's ``%+v``, and a server-side apply the structured-merge
error, a plain 500 (the apiserver does not make that error a Status).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import FieldError, GoLiteral, GroupKind, StatusError
from ..patch import APPLY_PATCH, STRATEGIC_MERGE_PATCH

if TYPE_CHECKING:
    from ..resources import ResourceType


@dataclass(frozen=True)
class PatchSource:
    """How a body to decode was made: the patch type, the patch, and the patched object."""

    patch_type: str
    patch: Any
    patched: dict[str, Any]


def decode_failure(
    rt: ResourceType, obj: dict[str, Any], message: str, patch: PatchSource | None
) -> StatusError:
    """The apiserver's answer to a body that does not decode into the kind's Go type."""
    if patch is None:
        return StatusError.bad_request(
            f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: {message}'
        )
    if patch.patch_type == APPLY_PATCH:
        meta = obj.get("metadata") or {}
        where = "/".join(filter(None, (meta.get("namespace", ""), meta.get("name", ""))))
        return StatusError.unknown(
            500,
            f"failed to create typed patch object ({where}; {rt.api_version}, Kind={rt.kind}): "
            f"{message}",
        )
    if patch.patch_type == STRATEGIC_MERGE_PATCH:
        rendered = GoLiteral(go_plus_v(patch.patch))
    else:
        rendered = json.dumps(patch.patched, separators=(",", ":"), sort_keys=True)
    return StatusError.invalid(
        GroupKind("", ""), "", [FieldError.invalid("patch", rendered, message)]
    )


def go_plus_v(value: Any) -> str:
    """Go's ``%+v`` of a decoded JSON value (maps print with sorted keys)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_plus_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_plus_v(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
