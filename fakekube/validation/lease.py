"""Leases (coordination.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError
from .meta import object_meta, object_meta_update
from .names import name_is_dns_subdomain

_STRATEGIES = ["OldestEmulationVersion"]


def _spec(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        errors.append(
            FieldError.invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        errors.append(
            FieldError.invalid(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    strategy = spec.get("strategy")
    if strategy is not None and strategy not in _STRATEGIES:
        errors.append(FieldError.not_supported("spec.strategy", strategy, _STRATEGIES))
    if spec.get("preferredHolder") and not spec.get("strategy"):
        errors.append(
            FieldError.forbidden(
                "spec.preferredHolder", "may only be specified if `strategy` is defined"
            )
        )
    return errors


def validate_lease(lease: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(
        lease["metadata"], namespaced=True, name_rule=name_is_dns_subdomain, kube_finalizers=False
    )
    return errors + _spec(lease.get("spec") or {})


def validate_lease_update(lease: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errors = object_meta_update(lease["metadata"], old["metadata"], kube_finalizers=False)
    return errors + _spec(lease.get("spec") or {})
