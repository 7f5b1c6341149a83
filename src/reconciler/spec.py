"""LocustTest models: a custom resource, whatever its API version, becomes one internal `TestSpec`.

The builders and the controller only ever see `TestSpec`. `parse` checks a document as the
apiserver would (the CRD's own schema and defaults, then the rules upstream's webhook enforced), so
offline rendering rejects what the cluster rejects. A v1 document is converted to v2 first, exactly
as the conversion webhook converts it, so both versions reach the model through one v2 reading.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import schema
from .api.conversion import V1, V2, convert
from .config import is_dns1123_label, is_dns1123_subdomain
from .crds import KIND, version_schema

DEFAULT_SRC_MOUNT_PATH = "/lotest/src"
DEFAULT_LIB_MOUNT_PATH = "/opt/locust/lib"
DEFAULT_AUTOQUIT_SECONDS = 60


class SpecError(ValueError):
    """The resource is not a valid LocustTest; the message names the field."""


@dataclass(frozen=True)
class RoleSpec:
    """What differs between the master and the workers."""

    command_seed: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    # v2 `resources`: a whole ResourceRequirements that replaces the operator's defaults.
    resources: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class EnvSource:
    """A ConfigMap or Secret whose keys become environment variables (`envFrom`)."""

    name: str
    prefix: str | None = None


@dataclass(frozen=True)
class SecretMount:
    """A Secret mounted as files in both roles' Locust containers."""

    name: str
    mount_path: str
    read_only: bool = True


@dataclass(frozen=True)
class UserVolumeMount:
    """A user's volumeMount (Kubernetes-shaped, without `target`) and the roles it goes to."""

    mount: Mapping[str, Any]
    target: str = "both"  # master, worker or both


@dataclass(frozen=True)
class OpenTelemetry:
    """v2 `observability.openTelemetry`: Locust exports OTLP itself, with no exporter sidecar."""

    enabled: bool = False
    endpoint: str | None = None
    protocol: str = "grpc"
    insecure: bool = False
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TestSpec:
    """One LocustTest, independent of the API version it was written in (v2-shaped)."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    namespace: str
    image: str
    master: RoleSpec
    worker: RoleSpec
    worker_replicas: int
    uid: str | None = None
    api_version: str = V1
    generation: int = 1
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    config_map: str | None = None
    lib_config_map: str | None = None
    src_mount_path: str = DEFAULT_SRC_MOUNT_PATH
    lib_mount_path: str = DEFAULT_LIB_MOUNT_PATH
    autostart: bool = True
    autoquit_seconds: int | None = DEFAULT_AUTOQUIT_SECONDS
    # Kubernetes-shaped scheduling, so v2's full Affinity fits the same field.
    affinity: Mapping[str, Any] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = field(default=())
    node_selector: Mapping[str, str] = field(default_factory=dict)
    # None: the operator's default; "": explicitly no runtime class.
    runtime_class_name: str | None = None
    env_config_maps: tuple[EnvSource, ...] = ()
    env_secrets: tuple[EnvSource, ...] = ()
    env_variables: tuple[Mapping[str, Any], ...] = ()  # Kubernetes EnvVars, valueFrom included
    secret_mounts: tuple[SecretMount, ...] = ()
    volumes: tuple[Mapping[str, Any], ...] = ()  # Kubernetes Volumes
    volume_mounts: tuple[UserVolumeMount, ...] = ()
    pod_security_context: Mapping[str, Any] | None = None  # replaces the default when set
    container_security_context: Mapping[str, Any] | None = None  # the Locust container only
    open_telemetry: OpenTelemetry = field(default_factory=OpenTelemetry)

    @property
    def child_prefix(self) -> str:
        """Base of the child names: dots become dashes, so `team.test` gives `team-test-master`."""
        return self.name.replace(".", "-")


_SPEC_SCHEMAS = {
    V1: version_schema("v1")["properties"]["spec"],
    V2: version_schema("v2")["properties"]["spec"],
}


def parse(obj: Any, *, default_namespace: str = "default") -> TestSpec:
    """Turn a LocustTest document (a dict) into a TestSpec, or raise SpecError naming the field."""
    # Imported here, as they build this module's model.
    from .api import v2
    from .api.validation import validate

    if not isinstance(obj, Mapping):
        raise SpecError("not a LocustTest: expected a YAML mapping")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
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
    spec = v2.to_test_spec(document, api_version=api_version, namespace=namespace)
    problems = validate(spec)
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
    if not is_dns1123_subdomain(name):
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist '
            "of lower case alphanumeric characters, '-' or '.'"
        )
    if not name[0].isalpha():
        # The master Service is named after the test, and Service names must start with a letter.
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": must start with a letter, since the master '
            "Service is named after the test"
        )
    namespace = metadata.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and is_dns1123_label(namespace)):
        raise SpecError(
            f'metadata.namespace: Invalid value: "{namespace}": a lowercase RFC 1123 label must '
            "consist of lower case alphanumeric characters or '-'"
        )
    return namespace or default_namespace


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
