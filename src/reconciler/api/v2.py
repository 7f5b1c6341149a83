"""LocustTest v2 into the internal model.

The input is a v2 object already checked against the CRD's v2 schema and defaulted from it (as
the apiserver stores it), so required and defaulted fields are read directly. The Kubernetes-typed
fields (resources, affinity, tolerations, env variables, volumes, security contexts) are kept as
the Kubernetes objects they are, for the builders to pass on.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..spec import (
    DEFAULT_AUTOQUIT_SECONDS,
    EnvSource,
    OpenTelemetry,
    RoleSpec,
    SecretMount,
    TestSpec,
    UserVolumeMount,
)


def to_test_spec(obj: Mapping[str, Any], *, api_version: str, namespace: str) -> TestSpec:
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
