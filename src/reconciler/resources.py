"""Pure builders: a TestSpec and the operator configuration in, the Kubernetes objects out.

Each LocustTest becomes a master Service, a master Job and a worker Job, shaped field by field
like upstream's Go operator (v2), except where DESIGN.md's behaviour decisions say otherwise.
Nothing here does I/O or depends on the clock: the same input always gives the same objects, so
`render` shows exactly what `run` creates, and the controller can rebuild them cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import (
    Affinity,
    Capabilities,
    ConfigMapVolumeSource,
    Container,
    ContainerPort,
    EnvVar,
    LocalObjectReference,
    PodSecurityContext,
    PodSpec,
    PodTemplateSpec,
    ResourceRequirements,
    SeccompProfile,
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
from .spec import RoleSpec, TestSpec

Role = Literal["master", "worker"]

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

METRICS_EXPORTER_CONTAINER = "locust-metrics-exporter"
LIB_VOLUME = "locust-lib"


@dataclass(frozen=True)
class ChildNames:
    """Names of the three objects created for one LocustTest."""

    service: str
    master_job: str
    worker_job: str


def child_names(spec: TestSpec) -> ChildNames:
    """`<name>-master` for the Service and master Job, `<name>-worker` for the worker Job."""
    master = _node_name(spec, "master")
    return ChildNames(service=master, master_job=master, worker_job=_node_name(spec, "worker"))


def _node_name(spec: TestSpec, role: Role) -> str:
    return f"{spec.child_prefix}-{role}"


def _role_spec(spec: TestSpec, role: Role) -> RoleSpec:
    return spec.master if role == "master" else spec.worker


# --- Locust arguments -------------------------------------------------------------------------


def master_args(spec: TestSpec, config: OperatorConfig) -> list[str]:
    """The master container's args: the user's seed, then the flags that make it a master.

    `config` is in the signature because operator-level settings (v2's OpenTelemetry) add master
    flags; no v1 setting does.
    """
    args = [
        *spec.master.command_seed.split(),
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
    """The worker container's args: the user's seed, then the flags that point it at the master."""
    return [
        *spec.worker.command_seed.split(),
        "--worker",
        f"--master-port={MASTER_PORT}",
        f"--master-host={child_names(spec).service}",
        *spec.worker.extra_args,
    ]


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
    """Prometheus scrape annotations on the master (where the exporter runs), then the user's."""
    annotations = _prometheus_annotations(config) if role == "master" else {}
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
        ownerReferences=[owner] if owner else None,
    )


# --- Service ----------------------------------------------------------------------------------


def build_service(spec: TestSpec, config: OperatorConfig) -> Service:
    """The master Service: workers reach the master through it; Prometheus scrapes the exporter.

    The web UI (8089) is deliberately not exposed, as upstream.
    """
    return Service(
        metadata=_object_metadata(spec, "master"),
        spec=ServiceSpec(
            selector={POD_NAME_LABEL: child_names(spec).service},
            ports=[
                ServicePort(name=f"port{MASTER_PORT}", port=MASTER_PORT, protocol="TCP"),
                ServicePort(
                    name=f"port{MASTER_SECONDARY_PORT}", port=MASTER_SECONDARY_PORT, protocol="TCP"
                ),
                ServicePort(
                    name="prometheus-metrics", port=config.metrics_exporter.port, protocol="TCP"
                ),
            ],
        ),
    )


# --- Jobs -------------------------------------------------------------------------------------


def build_master_job(spec: TestSpec, config: OperatorConfig) -> Job:
    """One master pod, with the metrics exporter beside it."""
    return _job(
        spec,
        config,
        "master",
        parallelism=1,
        locust_args=master_args(spec, config),
        ports=MASTER_CONTAINER_PORTS,
        sidecars=[_metrics_exporter(config)],
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
    config_maps = _config_map_volumes(spec, role)
    locust = Container(
        name=_node_name(spec, role),
        image=spec.image,
        imagePullPolicy=spec.image_pull_policy,
        # args, not command: the Locust image's entrypoint is `locust`.
        args=locust_args,
        ports=[ContainerPort(containerPort=port) for port in ports],
        env=[EnvVar(name=name, value=value) for name, value in config.kafka.env()],
        resources=_requirements(config.pod_resources),
        volumeMounts=[
            # readOnly: false is explicit, as upstream writes it (#69).
            VolumeMount(name=volume.name, mountPath=mount_path, readOnly=False)
            for volume, mount_path in config_maps
        ]
        or None,
    )
    pod = PodSpec(
        containers=[locust],
        initContainers=sidecars or None,
        # A failed load test is a result to look at, not something to retry.
        restartPolicy="Never",
        # Service links would inject <SERVICE>_PORT-style variables, and Locust reads any LOCUST_*
        # variable as its own setting: a Service named locust-... would reconfigure the test.
        enableServiceLinks=False,
        securityContext=PodSecurityContext(seccompProfile=SeccompProfile(type="RuntimeDefault")),
        imagePullSecrets=[LocalObjectReference(name=name) for name in spec.image_pull_secrets]
        or None,
        affinity=_affinity(spec, config),
        tolerations=_tolerations(spec, config),
        volumes=[volume for volume, _ in config_maps] or None,
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


def _config_map_volumes(spec: TestSpec, role: Role) -> list[tuple[Volume, str]]:
    """A volume and its mount path per ConfigMap the test names: test files first, then lib."""
    volumes = []
    if spec.config_map:
        source = ConfigMapVolumeSource(name=spec.config_map)
        volumes.append(
            (Volume(name=_node_name(spec, role), configMap=source), spec.src_mount_path)
        )
    if spec.lib_config_map:
        source = ConfigMapVolumeSource(name=spec.lib_config_map)
        volumes.append((Volume(name=LIB_VOLUME, configMap=source), spec.lib_mount_path))
    return volumes


def _requirements(settings: ResourceSettings) -> ResourceRequirements | None:
    requirements = settings.requirements()
    if not requirements:
        return None
    return ResourceRequirements(
        requests=requirements.get("requests"), limits=requirements.get("limits")
    )


def _affinity(spec: TestSpec, config: OperatorConfig) -> Affinity | None:
    if not (config.affinity_injection and spec.affinity):
        return None
    return Affinity.from_dict(dict(spec.affinity))


def _tolerations(spec: TestSpec, config: OperatorConfig) -> list[Toleration] | None:
    if not (config.tolerations_injection and spec.tolerations):
        return None
    return [Toleration.from_dict(dict(toleration)) for toleration in spec.tolerations]


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
