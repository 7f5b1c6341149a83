"""The Kubernetes fields a test hands on to its pods, checked as the API server will check them.

The CRD keeps these fields open (Kubernetes objects it does not describe, or plain maps), so only
the Job's create would refuse a bad one, after the Service and maybe the master Job exist. `check`
finds those problems first, on the model: an invalid test gets no children at all, and `render`
says what is wrong, offline. Each problem names the test's own field (its v2 path).

`from_test` turns one such field into its lightkube model, for the builders; a value of the wrong
JSON type is the first kind of problem `check` reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, cast

import msgspec
from lightkube.core.dictmixin import DictMixin
from lightkube.models.core_v1 import (
    Affinity,
    EnvVar,
    PodSecurityContext,
    ResourceRequirements,
    SecurityContext,
    Toleration,
    Volume,
    VolumeMount,
)

from .syntax import (
    ENV_VAR_NAME_RULE,
    dns1123_problem,
    is_env_var_name,
    label_value_problems,
    qualified_name_problems,
    quantity_value,
)
from .types import TestSpec

_Model = TypeVar("_Model", bound=DictMixin)

# The API server's limit on all of an object's annotations together.
MAX_ANNOTATIONS_BYTES = 256 * 1024
_TOLERATION_OPERATORS = ("Exists", "Equal")
_VOLUME_SOURCES = tuple(field for field in Volume.__struct_fields__ if field != "name")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# msgspec's "Expected `object | null`, got `int` - at `$.hostPath`"
_TYPE_ERROR = re.compile(
    r"^Expected `(?P<expected>[^`]*)`, got `(?P<got>[^`]*)`(?: - at `\$(?P<at>.*)`)?$"
)
_TYPE_NAMES = {
    "int": "integer",
    "str": "string",
    "float": "number",
    "bool": "boolean",
    "array": "array",
    "object": "object",
    "null": "null",
}


def from_test(model: type[_Model], data: Mapping[str, Any]) -> _Model:
    """`data`, a Kubernetes object from the test's spec, as the lightkube `model`."""
    return cast(_Model, model.from_dict(_plain(data)))


def check(spec: TestSpec) -> list[str]:
    """Every problem the API server would find in the fields `spec` passes to its pods."""
    typed = list(_typed_fields(spec))
    problems = [
        problem for path, model, data in typed if (problem := _type_problem(path, model, data))
    ]
    if problems:
        return problems  # the other rules read these fields as their types
    return [
        *_metadata_problems(spec),
        *_env_problems(spec),
        *_resource_problems(spec),
        *_scheduling_problems(spec),
        *_volume_problems(spec),
    ]


def _plain(value: Any) -> Any:
    # msgspec reads a Mapping other than a dict by attribute, where a read-only view's `items`
    # and `values` methods would hide the Kubernetes fields of the same names.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _typed_fields(spec: TestSpec) -> Iterator[tuple[str, type[DictMixin], Any]]:
    """(field path, model, data) for every Kubernetes object the test gives whole."""
    for role in ("master", "worker"):
        resources = spec.role(role).resources
        if resources is not None:
            yield f"spec.{role}.resources", ResourceRequirements, resources
    if spec.affinity is not None:
        yield "spec.scheduling.affinity", Affinity, spec.affinity
    for index, toleration in enumerate(spec.tolerations):
        yield f"spec.scheduling.tolerations[{index}]", Toleration, toleration
    for index, variable in enumerate(spec.env_variables):
        yield f"spec.env.variables[{index}]", EnvVar, variable
    for index, volume in enumerate(spec.volumes):
        yield f"spec.volumes[{index}]", Volume, volume
    for index, user_mount in enumerate(spec.volume_mounts):
        yield f"spec.volumeMounts[{index}]", VolumeMount, user_mount.mount
    if spec.pod_security_context is not None:
        yield "spec.security.podSecurityContext", PodSecurityContext, spec.pod_security_context
    if spec.container_security_context is not None:
        yield (
            "spec.security.containerSecurityContext",
            SecurityContext,
            spec.container_security_context,
        )


def _type_problem(path: str, model: type[DictMixin], data: Any) -> str | None:
    if not isinstance(data, Mapping):
        return (
            f'{path}: Invalid value: "{_json_type(data)}": {path} in body must be of type object'
        )
    try:
        from_test(model, data)
    except msgspec.ValidationError as error:
        match = _TYPE_ERROR.match(str(error))
        if match is None:
            return f"{path}: Invalid value: {error}"
        field = f"{path}{match['at'] or ''}"
        expected = " or ".join(
            _TYPE_NAMES.get(name, name)
            for name in match["expected"].split(" | ")
            if name != "null"
        )
        got = _TYPE_NAMES.get(match["got"], match["got"])
        return f'{field}: Invalid value: "{got}": {field} in body must be of type {expected}'
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "integer" if isinstance(value, int) else "number"
    if isinstance(value, (list, tuple)):
        return "array"
    return "string" if isinstance(value, str) else "null"


def _shown(value: Any) -> str:
    return json.dumps(value)  # as the API server quotes an invalid value


def _metadata_problems(spec: TestSpec) -> Iterator[str]:
    for role in ("master", "worker"):
        role_spec = spec.role(role)
        for key, value in role_spec.labels.items():
            for problem in qualified_name_problems(key):
                yield f"spec.{role}.labels: Invalid value: {_shown(key)}: {problem}"
            for problem in label_value_problems(str(value)):
                yield f"spec.{role}.labels: Invalid value: {_shown(value)}: {problem}"
        for key in role_spec.annotations:
            for problem in qualified_name_problems(key):
                yield f"spec.{role}.annotations: Invalid value: {_shown(key)}: {problem}"
        size = sum(len(k) + len(str(v)) for k, v in role_spec.annotations.items())
        if size > MAX_ANNOTATIONS_BYTES:
            yield (
                f"spec.{role}.annotations: Too long: may not be more than "
                f"{MAX_ANNOTATIONS_BYTES} bytes"
            )


def _env_problems(spec: TestSpec) -> Iterator[str]:
    for index, variable in enumerate(spec.env_variables):
        name = variable.get("name")
        if not name:
            yield f"spec.env.variables[{index}].name: Required value"
        elif not is_env_var_name(name):
            yield (
                f"spec.env.variables[{index}].name: Invalid value: {_shown(name)}: "
                f"{ENV_VAR_NAME_RULE}"
            )
    for name in spec.open_telemetry.extra_env:
        if not is_env_var_name(name):
            yield (
                "spec.observability.openTelemetry.extraEnvVars: Invalid value: "
                f"{_shown(name)}: {ENV_VAR_NAME_RULE}"
            )
    for field, sources in (
        ("configMapRefs", spec.env_config_maps),
        ("secretRefs", spec.env_secrets),
    ):
        for index, source in enumerate(sources):
            if source.prefix and not is_env_var_name(source.prefix):
                yield (
                    f"spec.env.{field}[{index}].prefix: Invalid value: {_shown(source.prefix)}: "
                    f"{ENV_VAR_NAME_RULE}"
                )


def _resource_problems(spec: TestSpec) -> Iterator[str]:
    for role in ("master", "worker"):
        yield from _requirements_problems(f"spec.{role}.resources", spec.role(role).resources)


def _requirements_problems(path: str, resources: Mapping[str, Any] | None) -> Iterator[str]:
    """Each quantity parses, and no request exceeds its limit (a missing request defaults to the
    limit, which is fine)."""
    if not resources:
        return
    values: dict[str, dict[str, Any]] = {}
    for kind in ("requests", "limits"):
        for name, raw in (resources.get(kind) or {}).items():
            field = f"{path}.{kind}.{name}"
            try:
                values.setdefault(kind, {})[name] = quantity_value(raw)
            except ValueError:
                yield (
                    f"{field}: Invalid value: {_shown(raw)}: quantities must match the regular "
                    "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
                )
    for name, request in values.get("requests", {}).items():
        limit = values.get("limits", {}).get(name)
        if limit is not None and request > limit:
            raw_request = resources["requests"][name]
            yield (
                f"{path}.requests: Invalid value: {_shown(str(raw_request))}: must be less "
                f"than or equal to {name} limit of {resources['limits'][name]}"
            )


def _scheduling_problems(spec: TestSpec) -> Iterator[str]:
    for key, value in spec.node_selector.items():
        for problem in qualified_name_problems(key):
            yield f"spec.scheduling.nodeSelector: Invalid value: {_shown(key)}: {problem}"
        for problem in label_value_problems(str(value)):
            yield f"spec.scheduling.nodeSelector: Invalid value: {_shown(value)}: {problem}"
    for index, toleration in enumerate(spec.tolerations):
        yield from _toleration_problems(f"spec.scheduling.tolerations[{index}]", toleration)
    if spec.runtime_class_name and (
        wrong := dns1123_problem(spec.runtime_class_name, label=False)
    ):
        yield (
            f"spec.scheduling.runtimeClassName: Invalid value: "
            f"{_shown(spec.runtime_class_name)}: {wrong}"
        )


def _toleration_problems(path: str, toleration: Mapping[str, Any]) -> Iterator[str]:
    key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
    if key:
        for problem in qualified_name_problems(key):
            yield f"{path}.key: Invalid value: {_shown(key)}: {problem}"
    elif operator != "Exists":
        yield (
            f"{path}.operator: Invalid value: {_shown(operator)}: operator must be Exists when "
            '`key` is empty, which means "match all values and all keys"'
        )
    if operator not in _TOLERATION_OPERATORS:
        yield (
            f"{path}.operator: Unsupported value: {_shown(operator)}: supported values: "
            '"Equal", "Exists"'
        )
    elif operator == "Exists" and toleration.get("value"):
        yield (
            f"{path}.operator: Invalid value: {_shown(toleration['value'])}: value must be empty "
            "when `operator` is 'Exists'"
        )
    effect = toleration.get("effect")
    if effect and effect not in _TAINT_EFFECTS:
        yield (
            f"{path}.effect: Unsupported value: {_shown(effect)}: supported values: "
            '"NoExecute", "NoSchedule", "PreferNoSchedule"'
        )
    if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
        yield (
            f"{path}.effect: Invalid value: {_shown(effect or '')}: effect must be 'NoExecute' "
            "when `tolerationSeconds` is set"
        )


def _volume_problems(spec: TestSpec) -> Iterator[str]:
    for index, volume in enumerate(spec.volumes):
        name = volume.get("name") or ""
        if problem := dns1123_problem(name, label=True):
            yield f"spec.volumes[{index}].name: Invalid value: {_shown(name)}: {problem}"
        sources = [key for key in _VOLUME_SOURCES if volume.get(key) is not None]
        if not sources:
            yield f"spec.volumes[{index}]: Required value: must specify a volume type"
        elif len(sources) > 1:
            yield (
                f"spec.volumes[{index}].{sources[1]}: Forbidden: may not specify more than 1 "
                "volume type"
            )
