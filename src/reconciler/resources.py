"""Pure builders: a TestSpec and the operator configuration in, the Kubernetes objects out.

Each LocustTest becomes a master Service, a master Job and a worker Job, shaped field by field
like upstream's Go operator (v2), except where DESIGN.md's behaviour decisions say otherwise.
Nothing here does I/O or depends on the clock: the same input always gives the same objects, so
`render` shows exactly what `run` creates, and the controller can rebuild them cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import yaml
from lightkube.core.dictmixin import DictMixin
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import (
    Affinity,
    Capabilities,
    ConfigMapEnvSource,
    ConfigMapVolumeSource,
    Container,
    ContainerPort,
    EnvFromSource,
    EnvVar,
    LocalObjectReference,
    PodSecurityContext,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    SeccompProfile,
    SecretEnvSource,
    SecretVolumeSource,
    SecurityContext,
    ServicePort,
    ServiceSpec,
    Toleration,
    Volume,
    VolumeMount,
)
from lightkube.models.meta_v1 import ObjectMeta, OwnerReference
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Service

from .config import OperatorConfig, ResourceSettings
from .crds import KIND
from .spec import OpenTelemetry, RoleSpec, TestSpec

Role = Literal["master", "worker"]
_Model = TypeVar("_Model", bound=DictMixin)

MASTER_PORT = 5557
# Older Locust masters also bound master-port + 1; upstream still exposes it on the Service.
MASTER_SECONDARY_PORT = 5558
WEB_UI_PORT = 8089
WORKER_PORT = 8080
MASTER_CONTAINER_PORTS = (MASTER_PORT, MASTER_SECONDARY_PORT, WEB_UI_PORT)
WORKER_CONTAINER_PORTS = (WORKER_PORT,)

APP_LABEL = "app"
TEST_NAME_LABEL = "performance-test-name"
POD_NAME_LABEL = "performance-test-pod-name"
MANAGED_BY = ("managed-by", "locust-k8s-operator")
# The Service selects on the pod name label and the operator finds its objects by managed-by, so a
# user's labels must not replace them.
PROTECTED_LABELS = frozenset({POD_NAME_LABEL, MANAGED_BY[0]})
# The test's metadata.generation that each child was built from: the controller compares it with
# the test's current generation to tell a spec changed after creation (SpecDrifted).
GENERATION_ANNOTATION = "locust.io/generation"

METRICS_EXPORTER_CONTAINER = "locust-metrics-exporter"
LIB_VOLUME = "locust-lib"
# Each `env.secretMounts` entry becomes the volume `secret-<secret name>`.
SECRET_VOLUME_PREFIX = "secret-"

# The flags the operator sets. A user's extraArgs may repeat them: they come last and Locust keeps
# the last occurrence, so the user's value wins, but the controller warns (see flag_conflicts).
OPERATOR_MANAGED_FLAGS = frozenset(
    {
        "--master",
        "--worker",
        "--master-port",
        "--master-host",
        "--expect-workers",
        "--autostart",
        "--autoquit",
        "--otel",
        "--enable-rebalancing",
        "--only-summary",
    }
)

# The roles a user's volumeMount goes to, by `target`: none (empty) means both, an unknown none.
_TARGET_ROLES: dict[str, tuple[Role, ...]] = {
    "": ("master", "worker"),
    "both": ("master", "worker"),
    "master": ("master",),
    "worker": ("worker",),
}


@dataclass(frozen=True)
class ChildNames:
    """Names of the three objects created for one LocustTest."""

    service: str
    master_job: str
    worker_job: str


def child_names(spec: TestSpec) -> ChildNames:
    """`<name>-master` for the Service and master Job, `<name>-worker` for the worker Job."""
    return names_for(spec.name)


def names_for(test_name: str) -> ChildNames:
    """The child names of the test called `test_name` (dots become dashes)."""
    prefix = test_name.replace(".", "-")
    return ChildNames(service=f"{prefix}-master", master_job=f"{prefix}-master",
                      worker_job=f"{prefix}-worker")


def _node_name(spec: TestSpec, role: Role) -> str:
    return f"{spec.child_prefix}-{role}"


def _role_spec(spec: TestSpec, role: Role) -> RoleSpec:
    return spec.master if role == "master" else spec.worker


# --- Locust arguments -------------------------------------------------------------------------


def master_args(spec: TestSpec, config: OperatorConfig) -> list[str]:
    """The master container's args: the user's seed, the flags that make it a master, then the
    user's extraArgs.

    Every master setting comes from the test today; `config` keeps the signature of the other
    builders, which callers (the charm's describe-test) rely on.
    """
    args = [
        *spec.master.command_seed.split(),
        *_otel_flag(spec),
        "--master",
        f"--master-port={MASTER_PORT}",
        f"--expect-workers={spec.worker_replicas}",
    ]
    if spec.autostart:
        args.append("--autostart")
    if spec.autoquit_seconds is not None:
        args += ["--autoquit", str(spec.autoquit_seconds)]
    args += ["--enable-rebalancing", "--only-summary", *spec.master.extra_args]
    return args


def worker_args(spec: TestSpec) -> list[str]:
    """The worker container's args: the user's seed, the flags that point it at the master, then
    the user's extraArgs."""
    return [
        *spec.worker.command_seed.split(),
        *_otel_flag(spec),
        "--worker",
        f"--master-port={MASTER_PORT}",
        f"--master-host={child_names(spec).service}",
        *spec.worker.extra_args,
    ]


def _otel_flag(spec: TestSpec) -> list[str]:
    # Before the role flags, as upstream places it.
    return ["--otel"] if spec.open_telemetry.enabled else []


def flag_conflicts(args: Iterable[str]) -> list[str]:
    """The args that set an operator-managed flag, as `--flag` or `--flag=value`.

    For the controller's warning (upstream's "User-provided extraArgs override operator-managed
    flags"): builders never log, and the args are applied anyway.
    """
    return [arg for arg in args if arg.partition("=")[0] in OPERATOR_MANAGED_FLAGS]


def _uses_metrics_exporter(spec: TestSpec) -> bool:
    """With OpenTelemetry, Locust exports its metrics itself: no exporter, no scrape target."""
    return not spec.open_telemetry.enabled


# --- Metadata ---------------------------------------------------------------------------------


def operator_labels(spec: TestSpec, role: Role) -> dict[str, str]:
    """The labels the operator puts on a role's pods, Job (and, for the master, Service)."""
    return {
        APP_LABEL: spec.name,
        TEST_NAME_LABEL: spec.name,
        POD_NAME_LABEL: _node_name(spec, role),
        MANAGED_BY[0]: MANAGED_BY[1],
    }


def pod_labels(spec: TestSpec, role: Role) -> dict[str, str]:
    """Operator labels, then the user's role labels, which may not replace the protected ones."""
    labels = operator_labels(spec, role)
    labels.update(
        (key, value)
        for key, value in _role_spec(spec, role).labels.items()
        if key not in PROTECTED_LABELS
    )
    return labels


def pod_annotations(spec: TestSpec, config: OperatorConfig, role: Role) -> dict[str, str]:
    """Prometheus scrape annotations where the exporter runs (the master pod), then the user's."""
    scraped = role == "master" and _uses_metrics_exporter(spec)
    annotations = _prometheus_annotations(config) if scraped else {}
    annotations.update(_role_spec(spec, role).annotations)
    return annotations


def _prometheus_annotations(config: OperatorConfig) -> dict[str, str]:
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/path": "/metrics",
        "prometheus.io/port": str(config.metrics_exporter.port),
    }


def owner_reference(spec: TestSpec) -> OwnerReference | None:
    """The controller reference to the test, or None offline, where the test has no uid yet."""
    if spec.uid is None:
        return None
    return OwnerReference(
        apiVersion=spec.api_version,
        kind=KIND,
        name=spec.name,
        uid=spec.uid,
        controller=True,
        blockOwnerDeletion=True,
    )


def _object_metadata(spec: TestSpec, role: Role) -> ObjectMeta:
    owner = owner_reference(spec)
    return ObjectMeta(
        name=_node_name(spec, role),
        namespace=spec.namespace,
        labels=operator_labels(spec, role),
        annotations={GENERATION_ANNOTATION: str(spec.generation)},
        ownerReferences=[owner] if owner else None,
    )


# --- Service ----------------------------------------------------------------------------------


def build_service(spec: TestSpec, config: OperatorConfig) -> Service:
    """The master Service: workers reach the master through it; Prometheus scrapes the exporter.

    The web UI (8089) is deliberately not exposed, as upstream.
    """
    ports = [
        ServicePort(name=f"port{MASTER_PORT}", port=MASTER_PORT, protocol="TCP"),
        ServicePort(
            name=f"port{MASTER_SECONDARY_PORT}", port=MASTER_SECONDARY_PORT, protocol="TCP"
        ),
    ]
    if _uses_metrics_exporter(spec):
        ports.append(
            ServicePort(
                name="prometheus-metrics", port=config.metrics_exporter.port, protocol="TCP"
            )
        )
    return Service(
        metadata=_object_metadata(spec, "master"),
        spec=ServiceSpec(selector={POD_NAME_LABEL: child_names(spec).service}, ports=ports),
    )


# --- Jobs -------------------------------------------------------------------------------------


def build_master_job(spec: TestSpec, config: OperatorConfig) -> Job:
    """One master pod, with the metrics exporter beside it unless the test uses OpenTelemetry."""
    return _job(
        spec,
        config,
        "master",
        parallelism=1,
        locust_args=master_args(spec, config),
        ports=MASTER_CONTAINER_PORTS,
        sidecars=[_metrics_exporter(config)] if _uses_metrics_exporter(spec) else [],
    )


def build_worker_job(spec: TestSpec, config: OperatorConfig) -> Job:
    """`workerReplicas` worker pods, running in parallel."""
    return _job(
        spec,
        config,
        "worker",
        parallelism=spec.worker_replicas,
        locust_args=worker_args(spec),
        ports=WORKER_CONTAINER_PORTS,
        sidecars=[],
    )


def _job(
    spec: TestSpec,
    config: OperatorConfig,
    role: Role,
    *,
    parallelism: int,
    locust_args: list[str],
    ports: Sequence[int],
    sidecars: list[Container],
) -> Job:
    volumes, mounts = _volumes(spec, role)
    locust = Container(
        name=_node_name(spec, role),
        image=spec.image,
        imagePullPolicy=spec.image_pull_policy,
        # args, not command: the Locust image's entrypoint is `locust`.
        args=locust_args,
        ports=[ContainerPort(containerPort=port) for port in ports],
        env=_env(spec, config),
        envFrom=_env_from(spec),
        resources=_locust_resources(spec, config, role),
        # Locust never writes /dev/termination-log, so with the default policy (File) a failed
        # pod says nothing about why; with this one the kubelet puts the tail of the log (the
        # traceback, the argument error) into the container's terminated state.
        terminationMessagePolicy="FallbackToLogsOnError",
        volumeMounts=mounts or None,
        securityContext=_container_security_context(spec),
    )
    pod = PodSpec(
        containers=[locust],
        initContainers=sidecars or None,
        # A failed load test is a result to look at, not something to retry.
        restartPolicy="Never",
        # Service links would inject <SERVICE>_PORT-style variables, and Locust reads any LOCUST_*
        # variable as its own setting: a Service named locust-... would reconfigure the test.
        enableServiceLinks=False,
        securityContext=_pod_security_context(spec),
        imagePullSecrets=[LocalObjectReference(name=name) for name in spec.image_pull_secrets]
        or None,
        affinity=_affinity(spec, config),
        tolerations=_tolerations(spec, config),
        nodeSelector=dict(spec.node_selector) or None,
        runtimeClassName=_runtime_class_name(spec, config),
        volumes=volumes or None,
    )
    annotations = pod_annotations(spec, config, role)
    return Job(
        metadata=_object_metadata(spec, role),
        spec=JobSpec(
            parallelism=parallelism,
            # completions stays unset: the Job is done once any pod succeeds and the rest end.
            backoffLimit=0,
            ttlSecondsAfterFinished=config.job_ttl_seconds_after_finished,
            template=PodTemplateSpec(
                metadata=ObjectMeta(
                    labels=pod_labels(spec, role), annotations=annotations or None
                ),
                spec=pod,
            ),
        ),
    )


def _from_test(model: type[_Model], data: Mapping[str, Any]) -> _Model:
    """A Kubernetes object the test gives whole (a volume, an affinity...), as a model."""
    return model.from_dict(_plain(data))


def _plain(value: Any) -> Any:
    # msgspec reads a Mapping other than a dict by attribute, where a read-only view's `items`
    # and `values` methods would hide the Kubernetes fields of the same names.
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _env(spec: TestSpec, config: OperatorConfig) -> list[EnvVar]:
    """Kafka's variables, OpenTelemetry's, then the test's: Kubernetes keeps the last definition
    of a name, so a test can override the operator's."""
    operator_env = [*config.kafka.env(), *_otel_env(spec.open_telemetry)]
    return [EnvVar(name=name, value=value) for name, value in operator_env] + [
        _from_test(EnvVar, variable) for variable in spec.env_variables
    ]


def _otel_env(otel: OpenTelemetry) -> list[tuple[str, str]]:
    """OTLP export settings for Locust's OpenTelemetry SDK, extra variables sorted by name so that
    the same test always gives the same pod spec."""
    if not otel.enabled:
        return []
    env = [("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_METRICS_EXPORTER", "otlp")]
    if otel.endpoint:
        env.append(("OTEL_EXPORTER_OTLP_ENDPOINT", otel.endpoint))
    env.append(("OTEL_EXPORTER_OTLP_PROTOCOL", otel.protocol))
    if otel.insecure:
        env.append(("OTEL_EXPORTER_OTLP_INSECURE", "true"))
    return env + sorted(otel.extra_env.items())


def _env_from(spec: TestSpec) -> list[EnvFromSource] | None:
    """Every key of the test's ConfigMaps, then of its Secrets, as variables (with any prefix)."""
    sources = [
        EnvFromSource(configMapRef=ConfigMapEnvSource(name=ref.name), prefix=ref.prefix or None)
        for ref in spec.env_config_maps
    ]
    sources += [
        EnvFromSource(secretRef=SecretEnvSource(name=ref.name), prefix=ref.prefix or None)
        for ref in spec.env_secrets
    ]
    return sources or None


def _volumes(spec: TestSpec, role: Role) -> tuple[list[Volume], list[VolumeMount]]:
    """A role's volumes and the Locust container's mounts, in upstream's order: test files, lib
    files, Secrets, then the test's own volumes that mount in this role."""
    volumes: list[Volume] = []
    mounts: list[VolumeMount] = []
    # readOnly: false is explicit on the ConfigMap mounts, as upstream writes it (#69).
    if spec.config_map:
        name = _node_name(spec, role)
        volumes.append(Volume(name=name, configMap=ConfigMapVolumeSource(name=spec.config_map)))
        mounts.append(VolumeMount(name=name, mountPath=spec.src_mount_path, readOnly=False))
    if spec.lib_config_map:
        source = ConfigMapVolumeSource(name=spec.lib_config_map)
        volumes.append(Volume(name=LIB_VOLUME, configMap=source))
        mounts.append(VolumeMount(name=LIB_VOLUME, mountPath=spec.lib_mount_path, readOnly=False))
    for secret in spec.secret_mounts:
        name = f"{SECRET_VOLUME_PREFIX}{secret.name}"
        volumes.append(Volume(name=name, secret=SecretVolumeSource(secretName=secret.name)))
        mounts.append(
            VolumeMount(name=name, mountPath=secret.mount_path, readOnly=secret.read_only)
        )
    own_mounts = [m.mount for m in spec.volume_mounts if role in _TARGET_ROLES.get(m.target, ())]
    # A volume no mount of this role uses stays out of its pods.
    mounted = {mount["name"] for mount in own_mounts}
    volumes += [_from_test(Volume, volume) for volume in spec.volumes if volume["name"] in mounted]
    mounts += [_from_test(VolumeMount, mount) for mount in own_mounts]
    return volumes, mounts


def _locust_resources(
    spec: TestSpec, config: OperatorConfig, role: Role
) -> ResourceRequirements | None:
    """The test's resources for the role, whole, if they set any request or limit (a pod spec's
    resources are never merged with defaults); otherwise the operator's settings for the role."""
    own = _role_spec(spec, role).resources
    if own and (own.get("requests") or own.get("limits")):
        return _from_test(ResourceRequirements, own)
    settings = config.master_pod_resources if role == "master" else config.worker_pod_resources
    return _requirements(settings)


def _requirements(settings: ResourceSettings) -> ResourceRequirements | None:
    requirements = settings.requirements()
    if not requirements:
        return None
    return ResourceRequirements(
        requests=requirements.get("requests"), limits=requirements.get("limits")
    )


def _pod_security_context(spec: TestSpec) -> PodSecurityContext:
    """The test's, replacing the default entirely (as upstream); otherwise RuntimeDefault seccomp."""
    if spec.pod_security_context is not None:
        return _from_test(PodSecurityContext, spec.pod_security_context)
    return PodSecurityContext(seccompProfile=SeccompProfile(type="RuntimeDefault"))


def _container_security_context(spec: TestSpec) -> SecurityContext | None:
    """The test's, for the Locust container only: the exporter keeps its hardened context."""
    own = spec.container_security_context
    return _from_test(SecurityContext, own) if own is not None else None


def _affinity(spec: TestSpec, config: OperatorConfig) -> Affinity | None:
    if not (config.affinity_injection and spec.affinity):
        return None
    return _from_test(Affinity, spec.affinity)


def _tolerations(spec: TestSpec, config: OperatorConfig) -> list[Toleration] | None:
    if not (config.tolerations_injection and spec.tolerations):
        return None
    return [_from_test(Toleration, toleration) for toleration in spec.tolerations]


def _runtime_class_name(spec: TestSpec, config: OperatorConfig) -> str | None:
    if spec.runtime_class_name is None:
        return config.default_runtime_class_name
    return spec.runtime_class_name or None  # "" opts out of the operator's default


def _metrics_exporter(config: OperatorConfig) -> Container:
    """The Prometheus exporter, as a native sidecar.

    An init container with restartPolicy Always starts before Locust and is stopped by the kubelet
    once Locust exits, so the master Job can complete (a plain second container never exits).
    """
    exporter = config.metrics_exporter
    return Container(
        name=METRICS_EXPORTER_CONTAINER,
        image=exporter.image,
        imagePullPolicy=exporter.pull_policy,
        restartPolicy="Always",
        ports=[ContainerPort(containerPort=exporter.port)],
        env=[
            EnvVar(name="LOCUST_EXPORTER_URI", value=f"http://localhost:{WEB_UI_PORT}"),
            EnvVar(name="LOCUST_EXPORTER_WEB_LISTEN_ADDRESS", value=f":{exporter.port}"),
        ],
        resources=_requirements(exporter.resources),
        securityContext=SecurityContext(
            allowPrivilegeEscalation=False,
            capabilities=Capabilities(drop=["ALL"]),
            readOnlyRootFilesystem=True,
        ),
    )


# --- All children, and their YAML ---------------------------------------------------------------


def build_children(spec: TestSpec, config: OperatorConfig) -> list[Service | Job]:
    """The three objects for one test, in creation order: the Service first, so that workers
    starting before the master can already resolve its name."""
    return [
        build_service(spec, config),
        build_master_job(spec, config),
        build_worker_job(spec, config),
    ]


def to_dict(obj: Service | Job) -> dict[str, Any]:
    """The object as plain data, in the models' field order (apiVersion, kind, metadata, spec),
    with unset fields left out."""
    return obj.to_dict()


def to_yaml(objects: Iterable[Service | Job]) -> str:
    """A multi-document YAML stream, one `---` document per object, keys in field order.

    Not lightkube's dump_all_yaml: it sorts keys, which buries each container's `name` after its
    `args`, `env` and `image`.
    """
    return yaml.safe_dump_all(
        [to_dict(obj) for obj in objects], sort_keys=False, explicit_start=True
    )
