"""One entry point, `parse`: a LocustTest document of any served version becomes the model.

`parse` checks a document as the apiserver would (the version's own schema and defaults), converts
a v1 document to v2 exactly as the conversion webhook does, checks the v2 result, reads it into a
`TestSpec`, and applies the rules upstream's validating webhook enforced. So `render` rejects,
offline, what the cluster rejects, and both versions reach the model through one v2 reading.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..crds import KIND, version_schema
from . import pod_fields, schema
from .conversion import convert
from .syntax import dns1123_problem
from .types import (
    DEFAULT_AUTOQUIT_SECONDS,
    V1,
    V2,
    EnvSource,
    OpenTelemetry,
    RoleSpec,
    SecretMount,
    SpecError,
    TestSpec,
    Threshold,
    UserVolumeMount,
)
from .validation import validate

_SPEC_SCHEMAS = {
    V1: version_schema("v1")["properties"]["spec"],
    V2: version_schema("v2")["properties"]["spec"],
}


def parse(obj: Any, *, default_namespace: str = "default") -> TestSpec:
    """Turn a LocustTest document (a dict) into a TestSpec, or raise SpecError naming the field."""
    if not isinstance(obj, Mapping):
        raise SpecError("not a LocustTest: expected a YAML mapping")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    for field, value in (("apiVersion", api_version), ("kind", kind)):
        if value in (None, ""):
            raise SpecError(f"{field}: Required value")
    if kind != KIND:
        raise SpecError(f'kind: Unsupported value: "{kind}": supported values: "{KIND}"')
    if api_version not in _SPEC_SCHEMAS:
        raise SpecError(
            f'apiVersion: Unsupported value: "{api_version}": supported values: "{V1}", "{V2}"'
        )
    namespace = _check_metadata(obj.get("metadata"), default_namespace)
    document = _checked(obj, api_version)
    if api_version == V1:
        document = _checked(convert(document, V2), V2)
    spec = _test_spec(document, api_version=api_version, namespace=namespace)
    problems = validate(spec) or pod_fields.check(spec)
    if problems:
        raise SpecError(problems[0])
    return spec


def _check_metadata(metadata: Any, default_namespace: str) -> str:
    """Check the name and namespace as the apiserver does; return the namespace."""
    if not isinstance(metadata, Mapping):
        raise SpecError("metadata: Required value")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError("metadata.name: Required value")
    if problem := dns1123_problem(name, label=False):
        raise SpecError(f"metadata.name: Invalid value: {_shown_name(name)}: {problem}")
    if not name[0].isalpha():
        # The master Service is named after the test, and Service names must start with a letter.
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": must start with a letter, since the master '
            "Service is named after the test"
        )
    namespace = metadata.get("namespace")
    if namespace is not None:
        problem = (
            dns1123_problem(namespace, label=True)
            if isinstance(namespace, str)
            else ("must be a string")
        )
        if problem:
            raise SpecError(
                f"metadata.namespace: Invalid value: {_shown_name(namespace)}: {problem}"
            )
    return namespace or default_namespace


def _shown_name(name: Any) -> str:
    """A name as a message quotes it; a very long one by its start and its length."""
    text = str(name)
    if len(text) > 63:
        return f'"{text[:20]}..." ({len(text)} characters)'
    return f'"{text}"'


def _checked(obj: Mapping[str, Any], api_version: str) -> dict[str, Any]:
    """A copy of `obj` with its spec defaulted and checked against the version's schema."""
    if "spec" not in obj:
        raise SpecError("spec: Required value")
    spec_schema = _SPEC_SCHEMAS[api_version]
    spec = schema.apply_defaults(copy.deepcopy(obj["spec"]), spec_schema)
    errors = schema.validate(spec, spec_schema, "spec")
    if errors:
        raise SpecError(errors[0])
    return {**obj, "spec": spec}


# --- A checked, defaulted v2 document into the model -------------------------------------


def _test_spec(obj: Mapping[str, Any], *, api_version: str, namespace: str) -> TestSpec:
    """The TestSpec of a valid, defaulted v2 object; `api_version` is the one it was written in."""
    metadata, spec = obj["metadata"], obj["spec"]
    test_files = spec["testFiles"]
    scheduling = spec.get("scheduling") or {}
    env = spec.get("env") or {}
    security = spec.get("security") or {}
    otel = (spec.get("observability") or {}).get("openTelemetry")
    return TestSpec(
        name=metadata["name"],
        namespace=namespace,
        uid=metadata.get("uid"),
        api_version=api_version,
        generation=metadata.get("generation") or 1,
        image=spec["image"],
        image_pull_policy=spec["imagePullPolicy"],
        image_pull_secrets=tuple(ref["name"] for ref in spec.get("imagePullSecrets") or ()),
        master=_role(spec["master"]),
        worker=_role(spec["worker"]),
        worker_replicas=spec["worker"]["replicas"],
        # An empty reference means none, as upstream.
        config_map=test_files.get("configMapRef") or None,
        lib_config_map=test_files.get("libConfigMapRef") or None,
        src_mount_path=test_files["srcMountPath"],
        lib_mount_path=test_files["libMountPath"],
        autostart=spec["master"]["autostart"],
        autoquit_seconds=_autoquit_seconds(spec["master"].get("autoquit")),
        affinity=scheduling.get("affinity"),
        tolerations=tuple(scheduling.get("tolerations") or ()),
        node_selector=_frozen(scheduling.get("nodeSelector")),
        runtime_class_name=scheduling.get("runtimeClassName"),
        env_config_maps=tuple(_env_source(ref) for ref in env.get("configMapRefs") or ()),
        env_secrets=tuple(_env_source(ref) for ref in env.get("secretRefs") or ()),
        env_variables=tuple(env.get("variables") or ()),
        secret_mounts=tuple(
            SecretMount(
                name=mount["name"], mount_path=mount["mountPath"], read_only=mount["readOnly"]
            )
            for mount in env.get("secretMounts") or ()
        ),
        volumes=tuple(spec.get("volumes") or ()),
        volume_mounts=tuple(_volume_mount(mount) for mount in spec.get("volumeMounts") or ()),
        pod_security_context=security.get("podSecurityContext"),
        container_security_context=security.get("containerSecurityContext"),
        open_telemetry=_open_telemetry(otel) if otel else OpenTelemetry(),
        thresholds=tuple(_threshold(item) for item in spec.get("thresholds") or ()),
    )


def _frozen(mapping: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


def _role(role: Mapping[str, Any]) -> RoleSpec:
    return RoleSpec(
        command_seed=role["command"],
        labels=_frozen(role.get("labels")),
        annotations=_frozen(role.get("annotations")),
        extra_args=tuple(role.get("extraArgs") or ()),
        resources=_resources(role.get("resources")),
    )


def _resources(resources: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    # As upstream: resources replace the operator's defaults only if they request or limit.
    if resources and (resources.get("requests") or resources.get("limits")):
        return resources
    return None


def _autoquit_seconds(autoquit: Mapping[str, Any] | None) -> int | None:
    if autoquit is None:
        return DEFAULT_AUTOQUIT_SECONDS  # no autoquit block: upstream quits after the default
    return autoquit["timeout"] if autoquit["enabled"] else None


def _env_source(ref: Mapping[str, str]) -> EnvSource:
    return EnvSource(name=ref["name"], prefix=ref.get("prefix") or None)


def _volume_mount(mount: Mapping[str, Any]) -> UserVolumeMount:
    kubernetes_fields = {key: value for key, value in mount.items() if key != "target"}
    return UserVolumeMount(mount=kubernetes_fields, target=mount["target"])


def _open_telemetry(otel: Mapping[str, Any]) -> OpenTelemetry:
    return OpenTelemetry(
        enabled=otel["enabled"],
        endpoint=otel.get("endpoint") or None,
        protocol=otel["protocol"],
        insecure=otel["insecure"],
        extra_env=_frozen(otel.get("extraEnvVars")),
    )


def _threshold(item: Mapping[str, Any]) -> Threshold:
    # The schema has typed max and min as numbers; bool is no number here (JSON keeps them apart).
    return Threshold(
        metric=item["metric"],
        max=_number(item.get("max")),
        min=_number(item.get("min")),
        request=item.get("request"),
        abort_on_fail=bool(item.get("abortOnFail", False)),
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
