"""ObjectMeta, labels, annotations and label selectors (apimachinery's ``api/validation`` and
``apis/meta/v1/validation``), shared by every kind."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError, GoLiteral
from .names import (
    NameRule,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_label,
)

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
# Finalizer names without a domain that core kinds accept (``IsStandardFinalizerName``).
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


def go_string_slice(values: list[str]) -> GoLiteral:
    """``%#v`` of a ``[]string``."""
    return GoLiteral("[]string{" + ", ".join(f'"{v}"' for v in values) + "}")


def go_string_map(values: dict[str, str]) -> GoLiteral:
    """``%#v`` of a ``map[string]string`` (Go sorts map keys when printing)."""
    items = ", ".join(f'"{k}":"{values[k]}"' for k in sorted(values))
    return GoLiteral("map[string]string{" + items + "}")


def go_label_selector(selector: Any) -> Any:
    """``%#v`` of a ``v1.LabelSelector`` (what a pointer to one prints as in a field error)."""
    if selector is None:
        return None
    match_labels = selector.get("matchLabels")
    rendered_labels = (
        go_string_map(match_labels) if match_labels is not None else "map[string]string(nil)"
    )
    expressions = selector.get("matchExpressions")
    rendered_expressions = "[]v1.LabelSelectorRequirement(nil)"
    if expressions is not None:
        items = ", ".join(
            f'v1.LabelSelectorRequirement{{Key:"{e.get("key", "")}", '
            f'Operator:"{e.get("operator", "")}", Values:{go_string_slice(e.get("values") or [])}}}'
            for e in expressions
        )
        rendered_expressions = f"[]v1.LabelSelectorRequirement{{{items}}}"
    return GoLiteral(
        f"v1.LabelSelector{{MatchLabels:{rendered_labels}, MatchExpressions:{rendered_expressions}}}"
    )


def label_name(key: str, path: str) -> list[FieldError]:
    return [FieldError.invalid(path, key, p) for p in is_qualified_name(key)]


def labels(values: Any, path: str) -> list[FieldError]:
    """``ValidateLabels``: qualified-name keys and label values, all reported at ``path``."""
    if values is None:
        return []
    if not isinstance(values, dict):
        return [FieldError.type_invalid(path, values, "must be a map of strings")]
    errors: list[FieldError] = []
    for key, value in values.items():
        errors += label_name(key, path)
        if not isinstance(value, str):
            errors.append(FieldError.type_invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        errors += [FieldError.invalid(path, value, p) for p in is_valid_label_value(value)]
    return errors


def annotations(values: Any, path: str) -> list[FieldError]:
    """``ValidateAnnotations``: case-insensitive qualified-name keys, 256 KiB in total."""
    if values is None:
        return []
    if not isinstance(values, dict):
        return [FieldError.type_invalid(path, values, "must be a map of strings")]
    errors: list[FieldError] = []
    size = 0
    for key, value in values.items():
        errors += [FieldError.invalid(path, key, p) for p in is_qualified_name(key.lower())]
        if not isinstance(value, str):
            errors.append(FieldError.type_invalid(f"{path}[{key}]", value, "must be a string"))
            continue
        size += len(key.encode()) + len(value.encode())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        errors.append(FieldError.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errors


def label_selector(selector: Any, path: str) -> list[FieldError]:
    """``ValidateLabelSelector``."""
    if not isinstance(selector, dict):
        return []
    errors = labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for index, requirement in enumerate(selector.get("matchExpressions") or ()):
        errors += selector_requirement(requirement, f"{path}.matchExpressions[{index}]")
    return errors


def selector_requirement(
    requirement: dict[str, Any], path: str, *, numeric: bool = False, check_values: bool = True
) -> list[FieldError]:
    """``ValidateLabelSelectorRequirement``; with ``numeric``, node selectors' ``Gt`` and ``Lt``
    too (``ValidateNodeSelectorRequirement``), whose values need not be label values."""
    errors: list[FieldError] = []
    operator = requirement.get("operator") or ""
    values = requirement.get("values") or []
    if operator in ("In", "NotIn"):
        if not values:
            errors.append(
                FieldError.required(
                    f"{path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
            )
    elif operator in ("Exists", "DoesNotExist"):
        if values:
            errors.append(
                FieldError.forbidden(
                    f"{path}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            )
    elif numeric and operator in ("Gt", "Lt"):
        if len(values) != 1:
            errors.append(
                FieldError.required(
                    f"{path}.values",
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                )
            )
    else:
        errors.append(
            FieldError.invalid(f"{path}.operator", operator, "not a valid selector operator")
        )
    errors += label_name(requirement.get("key") or "", f"{path}.key")
    if check_values:
        for index, value in enumerate(values):
            errors += [
                FieldError.invalid(f"{path}.values[{index}]", value, p)
                for p in is_valid_label_value(value)
            ]
    return errors


def nonnegative(value: Any, path: str) -> list[FieldError]:
    if isinstance(value, int) and value < 0:
        return [FieldError.invalid(path, value, "must be greater than or equal to 0")]
    return []


def _owner_references(refs: list[dict[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    first_controller = ""
    for ref in refs:
        api_version = ref.get("apiVersion") or ""
        version = api_version.rpartition("/")[2]
        if not version:
            errors.append(
                FieldError.invalid(f"{path}.apiVersion", api_version, "version must not be empty")
            )
        for key, label in (("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not ref.get(key):
                errors.append(
                    FieldError.invalid(
                        f"{path}.{key}", ref.get(key) or "", f"{label} must not be empty"
                    )
                )
        if ref.get("controller"):
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                errors.append(
                    FieldError.invalid(
                        path,
                        GoLiteral(f"[]v1.OwnerReference{{...{len(refs)} references}}"),
                        'Only one reference can have Controller set to true. Found "true" in '
                        f"references for {first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return errors


def _finalizers(finalizers: list[str], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for finalizer in finalizers:
        errors += [FieldError.invalid(path, finalizer, p) for p in is_qualified_name(finalizer)]
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        errors.append(
            FieldError.invalid(
                path,
                go_string_slice(finalizers),
                "finalizer orphan and foregroundDeletion cannot be both set",
            )
        )
    return errors


def kube_finalizer_names(finalizers: list[str], path: str) -> list[FieldError]:
    """Core's ``validateKubeFinalizerName``: a name without a domain must be a standard one."""
    return [
        FieldError.invalid(
            f"{path}[{index}]",
            finalizer,
            "name is neither a standard finalizer name nor is it fully qualified",
        )
        for index, finalizer in enumerate(finalizers)
        if "/" not in finalizer and finalizer not in STANDARD_FINALIZERS
    ]


def object_meta(
    meta: dict[str, Any],
    *,
    namespaced: bool,
    name_rule: NameRule,
    kube_finalizers: bool = True,
    path: str = "metadata",
) -> list[FieldError]:
    """``ValidateObjectMeta`` (with core's finalizer-name check when ``kube_finalizers``)."""
    errors: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errors += [
            FieldError.invalid(f"{path}.generateName", generate_name, p)
            for p in name_rule(generate_name, True)
        ]
    name = meta.get("name") or ""
    if not name:
        errors.append(FieldError.required(f"{path}.name", "name or generateName is required"))
    else:
        errors += [FieldError.invalid(f"{path}.name", name, p) for p in name_rule(name, False)]
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errors.append(FieldError.required(f"{path}.namespace"))
        else:
            errors += [
                FieldError.invalid(f"{path}.namespace", namespace, p)
                for p in name_is_dns_label(namespace, False)
            ]
    elif namespace:
        errors.append(FieldError.forbidden(f"{path}.namespace", "not allowed on this type"))
    errors += nonnegative(meta.get("generation"), f"{path}.generation")
    errors += labels(meta.get("labels"), f"{path}.labels")
    errors += annotations(meta.get("annotations"), f"{path}.annotations")
    errors += _owner_references(meta.get("ownerReferences") or [], f"{path}.ownerReferences")
    finalizers = meta.get("finalizers") or []
    errors += _finalizers(finalizers, f"{path}.finalizers")
    if kube_finalizers:
        errors += kube_finalizer_names(finalizers, f"{path}.finalizers")
    return errors


def object_meta_update(
    new: dict[str, Any], old: dict[str, Any], *, kube_finalizers: bool = True
) -> list[FieldError]:
    """``ValidateObjectMetaUpdate``. Name, namespace, uid and timestamps are carried over from
    the stored object before validation, so only the checks a client can fail remain."""
    errors: list[FieldError] = []
    if old.get("deletionTimestamp"):
        added = sorted(set(new.get("finalizers") or ()) - set(old.get("finalizers") or ()))
        if added:
            errors.append(
                FieldError.forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted, found new "
                    f"finalizers {go_string_slice(added)}",
                )
            )
    errors += labels(new.get("labels"), "metadata.labels")
    errors += annotations(new.get("annotations"), "metadata.annotations")
    errors += _owner_references(new.get("ownerReferences") or [], "metadata.ownerReferences")
    if kube_finalizers:
        errors += kube_finalizer_names(new.get("finalizers") or [], "metadata.finalizers")
    return errors
