"""The LocustTest model the builders and the controller read, whatever API version a test was
written in (v2-shaped), and the typed resources the clients use to read and write tests.

Kubernetes-typed fields (resources, affinity, tolerations, env variables, volumes, security
contexts) are kept as the Kubernetes objects they are, for the builders to pass on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lightkube.generic_resource import create_namespaced_resource

from ..crds import GROUP, KIND, PLURAL

V1 = f"{GROUP}/v1"
V2 = f"{GROUP}/v2"
LocustTestV1 = create_namespaced_resource(GROUP, "v1", KIND, PLURAL)
LocustTestV2 = create_namespaced_resource(GROUP, "v2", KIND, PLURAL)

Role = Literal["master", "worker"]

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


# What a threshold may bound, in the order the CRD lists them: counts, ratios and rates, then
# response times in milliseconds, as Locust reports them.
THRESHOLD_METRICS = (
    "requests",
    "failures",
    "failRatio",
    "rps",
    "avgMs",
    "p50Ms",
    "p95Ms",
    "p99Ms",
    "maxMs",
)


@dataclass(frozen=True)
class Threshold:
    """v2 `thresholds[]`: a bound on one metric of one request entry of the final results."""

    metric: str  # one of THRESHOLD_METRICS
    max: float | None = None
    min: float | None = None
    request: str | None = None  # "METHOD name"; None: Locust's Aggregated row
    abort_on_fail: bool = False


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
    thresholds: tuple[Threshold, ...] = ()

    def role(self, role: Role) -> RoleSpec:
        return self.master if role == "master" else self.worker
