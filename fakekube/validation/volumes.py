"""Pod volumes: ``ValidateVolumes`` and the path rules volumes and mounts share."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError
from . import quantity
from .names import is_dns1123_label

# validateVolumeSource's order, with its field names (two of them misspelt upstream).
_VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
)
VOLUME_SOURCE_FIELDS = tuple(name for name, _ in _VOLUME_SOURCES)
_HOST_PATH_TYPES = [
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
]
_FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"

# Paths.


def relative(path: str, target: str) -> list[FieldError]:
    """``validateLocalDescendingPath``: relative, without ``..`` components."""
    errors = []
    if target.startswith("/"):
        errors.append(FieldError.invalid(path, target, "must be a relative path"))
    errors += _no_backsteps(path, target)
    return errors


def _no_backsteps(path: str, target: str) -> list[FieldError]:
    if ".." in target.split("/"):
        return [FieldError.invalid(path, target, "must not contain '..'")]
    return []


def _local_non_reserved(path: str, target: str) -> list[FieldError]:
    errors = relative(path, target)
    if target.startswith("..") and not target.startswith("../"):
        errors.append(FieldError.invalid(path, target, "must not start with '..'"))
    return errors


def _file_mode(path: str, mode: Any) -> list[FieldError]:
    if isinstance(mode, int) and not 0 <= mode <= 0o777:
        return [FieldError.invalid(path, mode, _FILE_MODE)]
    return []


# Volumes.


def _key_to_paths(items: list[dict[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, item in enumerate(items):
        where = f"{path}[{index}]"
        if not item.get("key"):
            errors.append(FieldError.required(f"{where}.key"))
        if not item.get("path"):
            errors.append(FieldError.required(f"{where}.path"))
        errors += _local_non_reserved(f"{where}.path", item.get("path") or "")
        errors += _file_mode(f"{where}.mode", item.get("mode"))
    return errors


def _volume_source(name: str, source: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if name == "emptyDir":
        limit = source.get("sizeLimit")
        if limit is not None and quantity.parse(limit).value < 0:
            errors.append(
                FieldError.forbidden(
                    f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity"
                )
            )
    elif name == "hostPath":
        if not source.get("path"):
            return [FieldError.required(f"{path}.path")]
        errors += _no_backsteps(f"{path}.path", source["path"])
        kind = source.get("type")
        if kind is not None and kind not in _HOST_PATH_TYPES:
            errors.append(FieldError.not_supported(f"{path}.type", kind, _HOST_PATH_TYPES))
    elif name == "secret":
        if not source.get("secretName"):
            errors.append(FieldError.required(f"{path}.secretName"))
        errors += _file_mode(f"{path}.defaultMode", source.get("defaultMode"))
        errors += _key_to_paths(source.get("items") or [], f"{path}.items")
    elif name == "configMap":
        if not source.get("name"):
            errors.append(FieldError.required(f"{path}.name"))
        errors += _file_mode(f"{path}.defaultMode", source.get("defaultMode"))
        errors += _key_to_paths(source.get("items") or [], f"{path}.items")
    elif name == "persistentVolumeClaim":
        if not source.get("claimName"):
            errors.append(FieldError.required(f"{path}.claimName"))
    elif name == "nfs":
        if not source.get("server"):
            errors.append(FieldError.required(f"{path}.server"))
        if not source.get("path"):
            errors.append(FieldError.required(f"{path}.path"))
        if not (source.get("path") or "").startswith("/"):
            errors.append(
                FieldError.invalid(
                    f"{path}.path", source.get("path") or "", "must be an absolute path"
                )
            )
    elif name in ("downwardAPI", "projected"):
        errors += _file_mode(f"{path}.defaultMode", source.get("defaultMode"))
    return errors


def volumes(items: list[dict[str, Any]], path: str) -> tuple[dict[str, dict], list[FieldError]]:
    """``ValidateVolumes``: the valid volumes by name, and the errors."""
    valid: dict[str, dict[str, Any]] = {}
    errors: list[FieldError] = []
    for index, volume in enumerate(items):
        where = f"{path}[{index}]"
        own: list[FieldError] = []
        count = 0
        for source, label in _VOLUME_SOURCES:
            if volume.get(source) is None:
                continue
            if count:
                own.append(
                    FieldError.forbidden(
                        f"{where}.{label}", "may not specify more than 1 volume type"
                    )
                )
                continue
            count += 1
            own += _volume_source(source, volume[source], f"{where}.{label}")
        if not count:
            own.append(FieldError.required(where, "must specify a volume type"))
        name = volume.get("name") or ""
        if not name:
            own.append(FieldError.required(f"{where}.name"))
        else:
            own += [FieldError.invalid(f"{where}.name", name, p) for p in is_dns1123_label(name)]
        if name in valid:
            own.append(FieldError.duplicate(f"{where}.name", name))
        if own:
            errors += own
        else:
            valid[name] = volume
    return valid, errors
