"""ConfigMaps and Secrets: keys, the 1 MiB data limit, Secret types and immutability."""

from __future__ import annotations

import base64
from typing import Any

from ..errors import FieldError
from .meta import object_meta, object_meta_update
from .names import is_config_map_key, name_is_dns_subdomain

MAX_SECRET_SIZE = 1024 * 1024


def _decoded_size(value: str) -> int:
    return len(base64.b64decode(value))


def validate_config_map(config_map: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(config_map["metadata"], namespaced=True, name_rule=name_is_dns_subdomain)
    data = config_map.get("data") or {}
    binary = config_map.get("binaryData") or {}
    size = 0
    for key, value in data.items():
        errors += [FieldError.invalid(f"data[{key}]", key, p) for p in is_config_map_key(key)]
        if key in binary:
            errors.append(
                FieldError.invalid(f"data[{key}]", key, "duplicate of key present in binaryData")
            )
        size += len((value or "").encode())
    for key, value in binary.items():
        errors += [
            FieldError.invalid(f"binaryData[{key}]", key, p) for p in is_config_map_key(key)
        ]
        size += _decoded_size(value or "")
    if size > MAX_SECRET_SIZE:
        # The empty path means "the whole object".
        errors.append(FieldError.too_long("", MAX_SECRET_SIZE))
    return errors


def _immutable(
    new: dict[str, Any], old: dict[str, Any], keys: tuple[str, ...]
) -> list[FieldError]:
    if not old.get("immutable"):
        return []
    errors = []
    if not new.get("immutable"):
        errors.append(
            FieldError.forbidden("immutable", "field is immutable when `immutable` is set")
        )
    for key in keys:
        if (new.get(key) or None) != (old.get(key) or None):
            errors.append(FieldError.forbidden(key, "field is immutable when `immutable` is set"))
    return errors


def validate_config_map_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errors = object_meta_update(new["metadata"], old["metadata"])
    errors += _immutable(new, old, ("data", "binaryData"))
    return errors + validate_config_map(new)


def validate_secret(secret: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(secret["metadata"], namespaced=True, name_rule=name_is_dns_subdomain)
    data = secret.get("data") or {}
    size = 0
    for key, value in data.items():
        errors += [FieldError.invalid(f"data[{key}]", key, p) for p in is_config_map_key(key)]
        size += _decoded_size(value or "")
    if size > MAX_SECRET_SIZE:
        errors.append(FieldError.too_long("data", MAX_SECRET_SIZE))
    kind = secret.get("type") or ""
    required = {
        "kubernetes.io/dockercfg": (".dockercfg",),
        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
        "kubernetes.io/ssh-auth": ("ssh-privatekey",),
        "kubernetes.io/tls": ("tls.crt", "tls.key"),
    }
    if kind == "kubernetes.io/service-account-token":
        name = (secret["metadata"].get("annotations") or {}).get(
            "kubernetes.io/service-account.name"
        )
        if not name:
            errors.append(
                FieldError.required("metadata.annotations[kubernetes.io/service-account.name]")
            )
    elif kind == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errors.append(FieldError.required("data[username]"))
            errors.append(FieldError.required("data[password]"))
    elif kind == "kubernetes.io/ssh-auth":
        if not data.get("ssh-privatekey"):
            errors.append(FieldError.required("data[ssh-privatekey]"))
    elif kind in required:
        errors += [
            FieldError.required(f"data[{key}]") for key in required[kind] if key not in data
        ]
    return errors


def validate_secret_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errors = object_meta_update(new["metadata"], old["metadata"])
    if new.get("type") != old.get("type"):
        errors.append(FieldError.invalid("type", new.get("type") or "", "field is immutable"))
    errors += _immutable(new, old, ("data",))
    return errors + validate_secret(new)
