"""The rules of upstream's validating webhook (v2), checked on the internal model.

The CRD carries the same rules as CEL, so the apiserver rejects invalid tests at admission. They
are held here too for what admission never checks: `render` runs offline, and a v1 test reaches v2
through conversion, which no v2 rule checks.

Rules come in upstream's order, so the first problem is the one upstream's webhook reported.
Messages are upstream's, after the path of the offending field.
"""

from __future__ import annotations

import json

from .naming import LIB_VOLUME, MAX_NAME_LENGTH, SECRET_VOLUME_PREFIX, child_names
from .types import THRESHOLD_METRICS, TestSpec


def validate(spec: TestSpec) -> list[str]:
    """Every rule `spec` breaks, each as `<field>: <reason>`, in upstream's order."""
    return [
        *_name_length(spec),
        *_secret_mount_paths(spec),
        *_volume_names(spec),
        *_volume_mount_paths(spec),
        *_undefined_volumes(spec),
        *_open_telemetry(spec),
        *_thresholds(spec),
    ]


def reserved_paths(spec: TestSpec) -> tuple[str, ...]:
    """Where the operator mounts test files: the paths of the ConfigMaps the test names, or both
    paths when it names neither (the files may come later)."""
    paths: tuple[str, ...] = (spec.src_mount_path,) if spec.config_map else ()
    paths += (spec.lib_mount_path,) if spec.lib_config_map else ()
    return paths or (spec.src_mount_path, spec.lib_mount_path)


def paths_conflict(first: str, second: str) -> bool:
    """Whether one path is the other or lies under it, ignoring one trailing slash."""
    first, second = first.removesuffix("/"), second.removesuffix("/")
    return first == second or first.startswith(f"{second}/") or second.startswith(f"{first}/")


def _quoted(value: str) -> str:
    return json.dumps(value)  # as Go's %q, which upstream's messages use


def _name_length(spec: TestSpec) -> list[str]:
    if len(spec.name) <= MAX_NAME_LENGTH:
        return []
    return [
        (
            f"metadata.name: name {_quoted(spec.name)} is too long: generated Job names would "
            f"exceed 63 characters (max CR name length is {MAX_NAME_LENGTH})"
        )
    ]


def _first_conflict(path: str, reserved: tuple[str, ...]) -> str | None:
    return next((taken for taken in reserved if paths_conflict(path, taken)), None)


def _secret_mount_paths(spec: TestSpec) -> list[str]:
    reserved = reserved_paths(spec)
    errors = []
    for index, mount in enumerate(spec.secret_mounts):
        if (taken := _first_conflict(mount.mount_path, reserved)) is not None:
            errors.append(
                f"spec.env.secretMounts[{index}].mountPath: secretMount path "
                f"{_quoted(mount.mount_path)} conflicts with reserved path {_quoted(taken)}; "
                "operator uses this path for test files"
            )
    return errors


def _volume_names(spec: TestSpec) -> list[str]:
    children = child_names(spec.name)
    generated = {children.master_job, children.worker_job}  # the test ConfigMap's volume names
    errors = []
    for index, volume in enumerate(spec.volumes):
        name = volume["name"]
        field = f"spec.volumes[{index}].name: volume name {_quoted(name)}"
        if name.startswith(SECRET_VOLUME_PREFIX):
            errors.append(f"{field} uses reserved prefix {_quoted(SECRET_VOLUME_PREFIX)}")
        elif name == LIB_VOLUME:
            errors.append(f"{field} is reserved by the operator")
        elif name in generated:
            errors.append(f"{field} conflicts with operator-generated name")
    return errors


def _volume_mount_paths(spec: TestSpec) -> list[str]:
    reserved = reserved_paths(spec)
    errors = []
    for index, user_mount in enumerate(spec.volume_mounts):
        path = user_mount.mount["mountPath"]
        if (taken := _first_conflict(path, reserved)) is not None:
            errors.append(
                f"spec.volumeMounts[{index}].mountPath: volumeMount path {_quoted(path)} "
                f"conflicts with reserved path {_quoted(taken)}"
            )
    return errors


def _undefined_volumes(spec: TestSpec) -> list[str]:
    defined = {volume["name"] for volume in spec.volumes}
    return [
        f"spec.volumeMounts[{index}].name: volumeMount {_quoted(user_mount.mount['name'])} "
        "references undefined volume"
        for index, user_mount in enumerate(spec.volume_mounts)
        if user_mount.mount["name"] not in defined
    ]


def _open_telemetry(spec: TestSpec) -> list[str]:
    if spec.open_telemetry.enabled and not spec.open_telemetry.endpoint:
        return [
            (
                "spec.observability.openTelemetry.endpoint: observability.openTelemetry.endpoint "
                "is required when OpenTelemetry is enabled"
            )
        ]
    return []


def request_label_problem(request: str) -> str | None:
    """Why `request` is not a request entry as "METHOD name" (the CRD's pattern), or None."""
    method, space, name = request.partition(" ")
    if not method or not space or not name:
        return 'must be "METHOD name"'
    return None


def _thresholds(spec: TestSpec) -> list[str]:
    errors = []
    for index, threshold in enumerate(spec.thresholds):
        field = f"spec.thresholds[{index}]"
        if threshold.metric not in THRESHOLD_METRICS:
            supported = ", ".join(_quoted(metric) for metric in THRESHOLD_METRICS)
            errors.append(
                f"{field}.metric: Unsupported value: {_quoted(threshold.metric)}: "
                f"supported values: {supported}"
            )
        if (threshold.max is None) == (threshold.min is None):
            errors.append(f"{field}: set exactly one of max or min")
        if threshold.request is not None and (problem := request_label_problem(threshold.request)):
            errors.append(f"{field}.request: {problem}")
    return errors
