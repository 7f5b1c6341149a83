"""Roles, ClusterRoles and their bindings (``pkg/apis/rbac/validation``)."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError, GoLiteral
from .meta import label_selector, object_meta, object_meta_update
from .names import name_is_dns_subdomain, rbac_name

RBAC_GROUP = "rbac.authorization.k8s.io"


def _rules(rules: list[dict[str, Any]], namespaced: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, rule in enumerate(rules):
        where = f"rules[{index}]"
        if not rule.get("verbs"):
            errors.append(
                FieldError.required(f"{where}.verbs", "verbs must contain at least one value")
            )
        urls = rule.get("nonResourceURLs") or []
        if urls:
            rendered = GoLiteral("[]string{" + ", ".join(f'"{u}"' for u in urls) + "}")
            if namespaced:
                errors.append(
                    FieldError.invalid(
                        f"{where}.nonResourceURLs",
                        rendered,
                        "namespaced rules cannot apply to non-resource URLs",
                    )
                )
            if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
                errors.append(
                    FieldError.invalid(
                        f"{where}.nonResourceURLs",
                        rendered,
                        "rules cannot apply to both regular resources and non-resource URLs",
                    )
                )
            continue
        if not rule.get("apiGroups"):
            errors.append(
                FieldError.required(
                    f"{where}.apiGroups", "resource rules must supply at least one api group"
                )
            )
        if not rule.get("resources"):
            errors.append(
                FieldError.required(
                    f"{where}.resources", "resource rules must supply at least one resource"
                )
            )
    return errors


def validate_role(role: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errors = object_meta(role["metadata"], namespaced=namespaced, name_rule=rbac_name)
    errors += _rules(role.get("rules") or [], namespaced)
    aggregation = role.get("aggregationRule")
    if not namespaced and aggregation is not None:
        selectors = aggregation.get("clusterRoleSelectors") or []
        path = "aggregationRule.clusterRoleSelectors"
        if not selectors:
            errors.append(
                FieldError.required(
                    path, "at least one clusterRoleSelector required if aggregationRule is non-nil"
                )
            )
        for index, selector in enumerate(selectors):
            errors += label_selector(selector, f"{path}[{index}]")
    return errors


def _subject(subject: dict[str, Any], namespaced: bool, path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    name = subject.get("name") or ""
    group = subject.get("apiGroup") or ""
    if not name:
        errors.append(FieldError.required(f"{path}.name"))
    kind = subject.get("kind") or ""
    if kind == "ServiceAccount":
        if name:
            errors += [
                FieldError.invalid(f"{path}.name", name, p) for p in name_is_dns_subdomain(name)
            ]
        if group:
            errors.append(FieldError.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errors.append(FieldError.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errors.append(FieldError.not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        errors.append(
            FieldError.not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"])
        )
    return errors


def validate_binding(binding: dict[str, Any], namespaced: bool) -> list[FieldError]:
    errors = object_meta(binding["metadata"], namespaced=namespaced, name_rule=rbac_name)
    ref = binding.get("roleRef") or {}
    group = ref.get("apiGroup") or ""
    if group != RBAC_GROUP:
        errors.append(FieldError.not_supported("roleRef.apiGroup", group, [RBAC_GROUP]))
    kind = ref.get("kind") or ""
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if kind not in kinds:
        errors.append(FieldError.not_supported("roleRef.kind", kind, kinds))
    name = ref.get("name") or ""
    if not name:
        errors.append(FieldError.required("roleRef.name"))
    else:
        errors += [FieldError.invalid("roleRef.name", name, p) for p in rbac_name(name)]
    for index, subject in enumerate(binding.get("subjects") or ()):
        errors += _subject(subject, namespaced, f"subjects[{index}]")
    return errors


def validate_role_update(
    role: dict[str, Any], old: dict[str, Any], namespaced: bool
) -> list[FieldError]:
    return validate_role(role, namespaced) + object_meta_update(role["metadata"], old["metadata"])


def validate_binding_update(
    binding: dict[str, Any], old: dict[str, Any], namespaced: bool
) -> list[FieldError]:
    errors = validate_binding(binding, namespaced)
    errors += object_meta_update(binding["metadata"], old["metadata"])
    ref, old_ref = binding.get("roleRef") or {}, old.get("roleRef") or {}
    if ref != old_ref:
        rendered = GoLiteral(
            f'rbac.RoleRef{{APIGroup:"{ref.get("apiGroup", "")}", Kind:"{ref.get("kind", "")}", '
            f'Name:"{ref.get("name", "")}"}}'
        )
        errors.append(FieldError.invalid("roleRef", rendered, "cannot change roleRef"))
    return errors
