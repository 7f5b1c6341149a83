"""Volumes for locally run pods: a ConfigMap, Secret or emptyDir volume becomes a local folder.

ConfigMap and Secret files are laid out as the kubelet's atomic writer does, so code that lists or
follows them sees what it would in a pod: the data in a timestamped ``..<ts>`` folder, a ``..data``
link to it, and one link per file (``locustfile.py -> ..data/locustfile.py``). The files are written
once, when the pod starts; later changes to the ConfigMap are not synced into running pods.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: (kind, namespace, name) -> the object, or None if it does not exist.
ObjectLookup = Callable[[str, str, str], "dict[str, Any] | None"]
SUPPORTED = ("configMap", "secret", "emptyDir")
DEFAULT_MODE = 0o644


class VolumeNotReady(Exception):
    """The volume cannot be set up (yet): the pod stays ContainerCreating with a FailedMount event."""


def prepare_volumes(
    volumes: list[dict[str, Any]], namespace: str, root: Path, lookup: ObjectLookup
) -> dict[str, Path]:
    """Write every volume of a pod under ``root``; returns volume name -> local folder.

    Raises ``VolumeNotReady`` with the kubelet's FailedMount message if a source is missing, before
    anything is written, so the next attempt starts clean.
    """
    contents = {volume["name"]: _contents(volume, namespace, lookup) for volume in volumes}
    folders: dict[str, Path] = {}
    for name, content in contents.items():
        folder = folders[name] = root / name
        if content is None:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            _atomic_write(folder, *content)
    return folders


Files = dict[str, tuple[bytes, "int | None"]]


def _contents(
    volume: Mapping[str, Any], namespace: str, lookup: ObjectLookup
) -> tuple[Files, int] | None:
    """The files of a volume and their default mode; None for an empty folder."""
    name = volume["name"]
    kind = next((key for key in SUPPORTED if key in volume), None)
    if kind is None:
        other = next((key for key in volume if key != "name"), "unknown")
        raise VolumeNotReady(
            f'MountVolume.SetUp failed for volume "{name}" : fakekube kubelet does not '
            f"support {other} volumes"
        )
    if kind == "emptyDir":
        return None
    source = volume[kind]
    noun = "configmap" if kind == "configMap" else "secret"
    object_name = source.get("name" if kind == "configMap" else "secretName", "")
    obj = lookup("ConfigMap" if kind == "configMap" else "Secret", namespace, object_name)
    if obj is None:
        if source.get("optional"):
            return None
        raise VolumeNotReady(
            f'MountVolume.SetUp failed for volume "{name}" : {noun} "{object_name}" not found'
        )
    data = object_data(obj)
    if items := source.get("items"):
        missing = [item["key"] for item in items if item["key"] not in data]
        if missing and not source.get("optional"):
            raise VolumeNotReady(
                f'MountVolume.SetUp failed for volume "{name}" : {noun} references '
                f"non-existent config key: {missing[0]}"
            )
        files = {
            item["path"]: (data[item["key"]], item.get("mode"))
            for item in items
            if item["key"] in data
        }
    else:
        files = {key: (content, None) for key, content in data.items()}
    return files, source.get("defaultMode", DEFAULT_MODE)


def object_data(obj: Mapping[str, Any]) -> dict[str, bytes]:
    """A ConfigMap's or Secret's keys and their bytes (Secret and binaryData values decoded)."""
    if obj.get("kind") == "ConfigMap":
        data = {key: value.encode() for key, value in (obj.get("data") or {}).items()}
        encoded = obj.get("binaryData") or {}
    else:
        data = {key: value.encode() for key, value in (obj.get("stringData") or {}).items()}
        encoded = obj.get("data") or {}
    data.update((key, base64.b64decode(value)) for key, value in encoded.items())
    return data


def _atomic_write(folder: Path, files: Files, mode: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    data = folder / stamp
    data.mkdir()
    for path, (content, item_mode) in files.items():
        target = data / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(item_mode if item_mode is not None else mode)
    os.symlink(stamp, folder / "..data")
    for top in sorted({Path(path).parts[0] for path in files}):
        os.symlink(f"..data/{top}", folder / top)
