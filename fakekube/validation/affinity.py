"""Node and pod affinity: ``validateAffinity`` of core validation."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError
from .meta import label_name, label_selector, selector_requirement
from .names import name_is_dns_label, name_is_dns_subdomain

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"


def _field_requirement(requirement: dict[str, Any], path: str) -> list[FieldError]:
    """``ValidateNodeFieldSelectorRequirement``: only ``metadata.name`` In/NotIn one node."""
    errors: list[FieldError] = []
    operator = requirement.get("operator") or ""
    values = requirement.get("values") or []
    if operator in ("In", "NotIn"):
        if len(values) != 1:
            errors.append(
                FieldError.required(
                    f"{path}.values",
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field "
                    "selector",
                )
            )
    else:
        errors.append(
            FieldError.invalid(f"{path}.operator", operator, "not a valid selector operator")
        )
    key = requirement.get("key") or ""
    if key != "metadata.name":
        errors.append(FieldError.invalid(f"{path}.key", key, "not a valid field selector key"))
    else:
        for index, value in enumerate(values):
            errors += [
                FieldError.invalid(f"{path}.values[{index}]", value, p)
                for p in name_is_dns_subdomain(value)
            ]
    return errors


def _term(term: dict[str, Any], check_values: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, requirement in enumerate(term.get("matchExpressions") or ()):
        errors += selector_requirement(
            requirement,
            f"{path}.matchExpressions[{index}]",
            numeric=True,
            check_values=check_values,
        )
    for index, requirement in enumerate(term.get("matchFields") or ()):
        errors += _field_requirement(requirement, f"{path}.matchFields[{index}]")
    return errors


def _weight(weight: Any, path: str) -> list[FieldError]:
    if not isinstance(weight, int) or not 1 <= weight <= 100:
        return [FieldError.invalid(path, weight or 0, "must be in the range 1-100")]
    return []


def _node_affinity(affinity: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    required = affinity.get(_REQUIRED)
    if required is not None:
        terms = required.get("nodeSelectorTerms") or []
        where = f"{path}.{_REQUIRED}.nodeSelectorTerms"
        if not terms:
            errors.append(FieldError.required(where, "must have at least one node selector term"))
        for index, term in enumerate(terms):
            errors += _term(term, True, f"{where}[{index}]")
    for index, preferred in enumerate(affinity.get(_PREFERRED) or ()):
        where = f"{path}.{_PREFERRED}[{index}]"
        errors += _weight(preferred.get("weight"), f"{where}.weight")
        # Preferred terms keep invalid label values: they may still match on a small cluster.
        errors += _term(preferred.get("preference") or {}, False, f"{where}.preference")
    return errors


def _pod_affinity_term(term: dict[str, Any], path: str) -> list[FieldError]:
    errors = label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    errors += label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    for namespace in term.get("namespaces") or ():
        errors += [
            FieldError.invalid(f"{path}.namespace", namespace, p)
            for p in name_is_dns_label(namespace)
        ]
    topology_key = term.get("topologyKey") or ""
    if not topology_key:
        errors.append(FieldError.required(f"{path}.topologyKey", "can not be empty"))
    return errors + label_name(topology_key, f"{path}.topologyKey")


def _pod_affinity(affinity: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, term in enumerate(affinity.get(_REQUIRED) or ()):
        errors += _pod_affinity_term(term, f"{path}.{_REQUIRED}[{index}]")
    for index, weighted in enumerate(affinity.get(_PREFERRED) or ()):
        where = f"{path}.{_PREFERRED}[{index}]"
        errors += _weight(weighted.get("weight"), f"{where}.weight")
        errors += _pod_affinity_term(
            weighted.get("podAffinityTerm") or {}, f"{where}.podAffinityTerm"
        )
    return errors


def affinity(value: Any, path: str) -> list[FieldError]:
    """``validateAffinity``."""
    if value is None:
        return []
    errors: list[FieldError] = []
    if value.get("nodeAffinity") is not None:
        errors += _node_affinity(value["nodeAffinity"], f"{path}.nodeAffinity")
    for key in ("podAffinity", "podAntiAffinity"):
        if value.get(key) is not None:
            errors += _pod_affinity(value[key], f"{path}.{key}")
    return errors
