"""The Locust containers' environment: the operator's variables, then the test's."""

from __future__ import annotations

from lightkube.models.core_v1 import ConfigMapEnvSource, EnvFromSource, EnvVar, SecretEnvSource

from ..api.pod_fields import from_test
from ..api.types import TestSpec
from ..config import OperatorConfig
from .otel import otel_env


def env(spec: TestSpec, config: OperatorConfig) -> list[EnvVar]:
    """Kafka's variables, OpenTelemetry's, then the test's: Kubernetes keeps the last definition
    of a name, so a test can override the operator's."""
    operator_env = [*config.kafka.env(), *otel_env(spec.open_telemetry)]
    return [EnvVar(name=name, value=value) for name, value in operator_env] + [
        from_test(EnvVar, variable) for variable in spec.env_variables
    ]


def env_from(spec: TestSpec) -> list[EnvFromSource] | None:
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
