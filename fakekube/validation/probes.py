"""Probes and lifecycle hooks: ``validateProbe``, ``validateHandler`` and ``validateLifecycle``."""

from __future__ import annotations

import re
from typing import Any

from ..errors import FieldError
from .meta import nonnegative
from .names import is_valid_port_name, is_valid_port_num, regex_error

_HTTP_HEADER_NAME = re.compile("[-A-Za-z0-9]+")
_SCHEMES = ["HTTP", "HTTPS"]
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def _port(value: Any, path: str) -> list[FieldError]:
    """``ValidatePortNumOrName``."""
    if isinstance(value, str):
        return [FieldError.invalid(path, value, p) for p in is_valid_port_name(value)]
    return [FieldError.invalid(path, value, p) for p in is_valid_port_num(value or 0)]


def _action(kind: str, action: dict[str, Any], path: str, grace: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    if kind == "exec":
        if not action.get("command"):
            errors.append(FieldError.required(f"{path}.command"))
    elif kind == "httpGet":
        if not action.get("path"):
            errors.append(FieldError.required(f"{path}.path"))
        errors += _port(action.get("port"), f"{path}.port")
        scheme = action.get("scheme") or ""
        if scheme not in _SCHEMES:
            errors.append(FieldError.not_supported(f"{path}.scheme", scheme, _SCHEMES))
        for header in action.get("httpHeaders") or ():
            name = header.get("name") or ""
            if not _HTTP_HEADER_NAME.fullmatch(name):
                message = regex_error(
                    "a valid HTTP header must consist of alphanumeric characters or '-'",
                    "[-A-Za-z0-9]+",
                    "X-Header-Name",
                )
                errors.append(FieldError.invalid(f"{path}.httpHeaders", name, message))
    elif kind == "tcpSocket":
        errors += _port(action.get("port"), f"{path}.port")
    elif kind == "grpc":
        errors += _port(action.get("port") or 0, f"{path}.port")
    elif kind == "sleep":
        seconds = action.get("seconds") or 0
        if isinstance(grace, int) and not 0 <= seconds <= grace:
            errors.append(
                FieldError.invalid(
                    path,
                    seconds,
                    f"must be non-negative and less than terminationGracePeriodSeconds ({grace})",
                )
            )
    return errors


def _handler(
    handler: dict[str, Any], kinds: tuple[str, ...], path: str, grace: Any
) -> list[FieldError]:
    errors: list[FieldError] = []
    count = 0
    for kind in kinds:
        action = handler.get(kind)
        if action is None:
            continue
        if count:
            errors.append(
                FieldError.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type")
            )
            continue
        count += 1
        errors += _action(kind, action, f"{path}.{kind}", grace)
    if not count:
        errors.append(FieldError.required(path, "must specify a handler type"))
    return errors


def _probe(probe: dict[str, Any], path: str, grace: Any) -> list[FieldError]:
    errors = _handler(probe, _PROBE_HANDLERS, path, grace)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errors += nonnegative(probe.get(key), f"{path}.{key}")
    termination = probe.get("terminationGracePeriodSeconds")
    if termination is not None and termination <= 0:
        errors.append(
            FieldError.invalid(
                f"{path}.terminationGracePeriodSeconds", termination, "must be greater than 0"
            )
        )
    return errors


def probes_and_lifecycle(container: dict[str, Any], path: str, grace: Any) -> list[FieldError]:
    """What regular containers and sidecars (restartable init containers) may set."""
    errors: list[FieldError] = []
    lifecycle = container.get("lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            if lifecycle.get(hook) is not None:
                errors += _handler(
                    lifecycle[hook], _LIFECYCLE_HANDLERS, f"{path}.lifecycle.{hook}", grace
                )
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(key)
        if probe is None:
            continue
        where = f"{path}.{key}"
        errors += _probe(probe, where, grace)
        if key != "readinessProbe" and probe.get("successThreshold") != 1:
            errors.append(
                FieldError.invalid(
                    f"{where}.successThreshold", probe.get("successThreshold"), "must be 1"
                )
            )
        if key == "readinessProbe" and probe.get("terminationGracePeriodSeconds") is not None:
            errors.append(
                FieldError.invalid(
                    f"{where}.terminationGracePeriodSeconds",
                    probe["terminationGracePeriodSeconds"],
                    "must not be set for readinessProbes",
                )
            )
    return errors


def default_probes(container: dict[str, Any]) -> None:
    """``SetDefaults_Probe`` and ``SetDefaults_HTTPGetAction``."""
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe = container.get(key)
        if not isinstance(probe, dict):
            continue
        for field, value in (
            ("timeoutSeconds", 1),
            ("periodSeconds", 10),
            ("successThreshold", 1),
            ("failureThreshold", 3),
        ):
            if not probe.get(field):
                probe[field] = value
        _default_http_get(probe.get("httpGet"))
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            _default_http_get((lifecycle.get(hook) or {}).get("httpGet"))


def _default_http_get(action: Any) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"
