"""v2 `observability.openTelemetry`: Locust exports OTLP itself, and the exporter sidecar goes."""

from __future__ import annotations

from ..api.types import OpenTelemetry, TestSpec


def uses_metrics_exporter(spec: TestSpec) -> bool:
    """With OpenTelemetry, Locust exports its metrics itself: no exporter, no scrape target."""
    return not spec.open_telemetry.enabled


def otel_flag(spec: TestSpec) -> list[str]:
    """`--otel` when enabled; it goes before the role flags, as upstream places it."""
    return ["--otel"] if spec.open_telemetry.enabled else []


def otel_env(otel: OpenTelemetry) -> list[tuple[str, str]]:
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
