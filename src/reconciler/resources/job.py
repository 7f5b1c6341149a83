"""The master and worker Jobs: their pods, containers, resources, security and scheduling."""

from __future__ import annotations

from collections.abc import Sequence

from lightkube.models.batch_v1 import JobSpec
from lightkube.models.core_v1 import (
    Affinity,
    Capabilities,
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
    Toleration,
)
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job

from ..api.naming import role_name
from ..api.pod_fields import from_test
from ..api.types import Role, TestSpec
from ..config import OperatorConfig, ResourceSettings
from .command import master_args, worker_args
from .constants import (
    MASTER_CONTAINER_PORTS,
    METRICS_EXPORTER_CONTAINER,
    WEB_UI_PORT,
    WORKER_CONTAINER_PORTS,
)
from .env import env, env_from
from .labels import object_metadata, pod_annotations, pod_labels
from .otel import uses_metrics_exporter
from .volumes import volumes


def build_master_job(spec: TestSpec, config: OperatorConfig) -> Job:
    """One master pod, with the metrics exporter beside it unless the test uses OpenTelemetry."""
    return _job(
        spec,
        config,
        "master",
        parallelism=1,
        locust_args=master_args(spec, config),
        ports=MASTER_CONTAINER_PORTS,
        sidecars=[_metrics_exporter(config)] if uses_metrics_exporter(spec) else [],
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
    pod_volumes, mounts = volumes(spec, role)
    locust = Container(
        name=role_name(spec.name, role),
        image=spec.image,
        imagePullPolicy=spec.image_pull_policy,
        # args, not command: the Locust image's entrypoint is `locust`.
        args=locust_args,
        ports=[ContainerPort(containerPort=port) for port in ports],
        env=env(spec, config),
        envFrom=env_from(spec),
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
        volumes=pod_volumes or None,
    )
    annotations = pod_annotations(spec, config, role)
    return Job(
        metadata=object_metadata(spec, role),
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


def _locust_resources(
    spec: TestSpec, config: OperatorConfig, role: Role
) -> ResourceRequirements | None:
    """The test's resources for the role, whole, if they set any request or limit (a pod spec's
    resources are never merged with defaults); otherwise the operator's settings for the role."""
    own = spec.role(role).resources
    if own and (own.get("requests") or own.get("limits")):
        return from_test(ResourceRequirements, own)
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
    """The test's, replacing the default entirely (as upstream); else RuntimeDefault seccomp."""
    if spec.pod_security_context is not None:
        return from_test(PodSecurityContext, spec.pod_security_context)
    return PodSecurityContext(seccompProfile=SeccompProfile(type="RuntimeDefault"))


def _container_security_context(spec: TestSpec) -> SecurityContext | None:
    """The test's, for the Locust container only: the exporter keeps its hardened context."""
    own = spec.container_security_context
    return from_test(SecurityContext, own) if own is not None else None


def _affinity(spec: TestSpec, config: OperatorConfig) -> Affinity | None:
    if not (config.affinity_injection and spec.affinity):
        return None
    return from_test(Affinity, spec.affinity)


def _tolerations(spec: TestSpec, config: OperatorConfig) -> list[Toleration] | None:
    if not (config.tolerations_injection and spec.tolerations):
        return None
    return [from_test(Toleration, toleration) for toleration in spec.tolerations]


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
