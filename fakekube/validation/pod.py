"""Pod specs and pod templates: ``ValidatePodSpec``, the Pod's create and update rules.

Covered: volumes and containers (see ``volumes`` and ``containers``), init containers' restart
policy and name clashes, restart and DNS policies, node selectors, tolerations, the pod security
context, image pull secrets, readiness gates and the name-like fields, and which spec fields an
update may change, affinity (see ``affinity``), probes (see ``probes``). Not covered: topology
spread constraints, DNS config, host aliases, OS-specific rules.
"""

from __future__ import annotations

import copy
from typing import Any

from ..errors import FieldError, GoLiteral
from .affinity import affinity
from .containers import (
    MAX_INT32,
    container_common,
    host_ports,
    id_ranges,
    probe_fields,
    seccomp_profile,
)
from .meta import annotations, label_name, labels
from .names import (
    inclusive_range_error,
    is_dns1123_label,
    is_qualified_name,
    is_valid_label_value,
    name_is_dns_subdomain,
)
from .probes import probes_and_lifecycle
from .volumes import volumes

_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]


def pod_spec(spec: dict[str, Any], path: str, *, is_pod: bool) -> list[FieldError]:
    """``ValidatePodSpec`` (``is_pod`` for a Pod, not a template embedded in another kind)."""
    errors: list[FieldError] = []
    if spec.get("terminationGracePeriodSeconds") is None:
        errors.append(FieldError.required(f"{path}.terminationGracePeriodSeconds"))
    grace = spec.get("terminationGracePeriodSeconds")
    security = spec.get("securityContext") or {}
    host_users = security.get("hostUsers") is not False
    volumes_by_name, volume_errors = volumes(spec.get("volumes") or [], f"{path}.volumes")
    errors += volume_errors
    claim_names = {c.get("name") for c in spec.get("resourceClaims") or () if c.get("name")}
    containers = spec.get("containers") or []
    init_containers = spec.get("initContainers") or []
    if not containers:
        errors.append(FieldError.required(f"{path}.containers"))
    names: set[str] = set()
    for index, container in enumerate(containers):
        where = f"{path}.containers[{index}]"
        errors += container_common(container, volumes_by_name, claim_names, where, host_users)
        name = container.get("name") or ""
        if name in names:
            errors.append(FieldError.duplicate(f"{where}.name", name))
        names.add(name)
        errors += probes_and_lifecycle(container, where, grace)
        if container.get("restartPolicy") is not None:
            errors.append(
                FieldError.forbidden(
                    f"{where}.restartPolicy", "may not be set for non-init containers"
                )
            )
    if containers:
        errors += host_ports(containers, f"{path}.containers")
    for index, container in enumerate(init_containers):
        where = f"{path}.initContainers[{index}]"
        errors += container_common(container, volumes_by_name, claim_names, where, host_users)
        restart = container.get("restartPolicy")
        if restart is not None and restart != "Always":
            errors.append(FieldError.not_supported(f"{where}.restartPolicy", restart, ["Always"]))
        name = container.get("name") or ""
        if name in names:
            errors.append(FieldError.duplicate(f"{where}.name", name))
        elif name:
            names.add(name)
        errors += host_ports([container], f"{path}.initContainers")
        if restart == "Always":
            errors += probes_and_lifecycle(container, where, grace)
        else:
            errors += [
                FieldError.forbidden(
                    f"{where}.{key}",
                    "may not be set for init containers without restartPolicy=Always",
                )
                for key in probe_fields(container)
            ]
        if container.get("resizePolicy"):
            errors.append(
                FieldError.invalid(
                    f"{where}.resizePolicy",
                    GoLiteral("[]core.ContainerResizePolicy{...}"),
                    "must not be set for init containers",
                )
            )
    if spec.get("hostNetwork"):
        for index, container in enumerate(containers):
            for port_index, port in enumerate(container.get("ports") or ()):
                host_port, container_port = port.get("hostPort") or 0, port.get("containerPort")
                if (is_pod or host_port) and host_port != container_port:
                    errors.append(
                        FieldError.invalid(
                            f"{path}.containers[{index}].ports[{port_index}].hostPort",
                            host_port,
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    )
    restart_policy = spec.get("restartPolicy") or ""
    if not restart_policy:
        errors.append(FieldError.required(f"{path}.restartPolicy"))
    elif restart_policy not in _RESTART_POLICIES:
        errors.append(
            FieldError.not_supported(f"{path}.restartPolicy", restart_policy, _RESTART_POLICIES)
        )
    dns_policy = spec.get("dnsPolicy") or ""
    if not dns_policy:
        errors.append(FieldError.required(f"{path}.dnsPolicy"))
    elif dns_policy not in _DNS_POLICIES:
        errors.append(FieldError.not_supported(f"{path}.dnsPolicy", dns_policy, _DNS_POLICIES))
    errors += labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    errors += _pod_security_context(security, f"{path}.securityContext")
    for index, secret in enumerate(spec.get("imagePullSecrets") or ()):
        if set(secret) - {"name"}:
            errors.append(
                FieldError.invalid(
                    f"{path}.imagePullSecrets[{index}]",
                    GoLiteral(f'core.LocalObjectReference{{Name:"{secret.get("name", "")}"}}'),
                    "only name may be set",
                )
            )
    errors += affinity(spec.get("affinity"), f"{path}.affinity")
    for index, gate in enumerate(spec.get("readinessGates") or ()):
        condition = gate.get("conditionType") or ""
        errors += [
            FieldError.invalid(f"{path}.readinessGates[{index}].conditionType", condition, p)
            for p in is_qualified_name(condition)
        ]
    for key in ("serviceAccountName", "nodeName"):
        value = spec.get(key) or ""
        if value:
            errors += [
                FieldError.invalid(f"{path}.{key}", value, p) for p in name_is_dns_subdomain(value)
            ]
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errors.append(
            FieldError.invalid(
                f"{path}.activeDeadlineSeconds", deadline, inclusive_range_error(1, MAX_INT32)
            )
        )
    for key in ("hostname", "subdomain"):
        value = spec.get(key) or ""
        if value:
            errors += [
                FieldError.invalid(f"{path}.{key}", value, p) for p in is_dns1123_label(value)
            ]
    errors += tolerations(spec.get("tolerations") or [], f"{path}.tolerations")
    priority_class = spec.get("priorityClassName") or ""
    if priority_class:
        errors += [
            FieldError.invalid(f"{path}.priorityClassName", priority_class, p)
            for p in name_is_dns_subdomain(priority_class)
        ]
    return errors


def _pod_security_context(context: dict[str, Any], path: str) -> list[FieldError]:
    errors = id_ranges(context, path)
    for index, group in enumerate(context.get("supplementalGroups") or ()):
        if not 0 <= group <= MAX_INT32:
            errors.append(
                FieldError.invalid(
                    f"{path}.supplementalGroups[{index}]",
                    group,
                    inclusive_range_error(0, MAX_INT32),
                )
            )
    policy = context.get("fsGroupChangePolicy")
    if policy is not None and policy not in ("Always", "OnRootMismatch"):
        errors.append(
            FieldError.not_supported(
                f"{path}.fsGroupChangePolicy", policy, ["Always", "OnRootMismatch"]
            )
        )
    errors += seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile")
    return errors


def tolerations(items: list[dict[str, Any]], path: str) -> list[FieldError]:
    """``ValidateTolerations``."""
    errors: list[FieldError] = []
    for index, toleration in enumerate(items):
        where = f"{path}[{index}]"
        key = toleration.get("key") or ""
        operator = toleration.get("operator") or ""
        value = toleration.get("value") or ""
        effect = toleration.get("effect") or ""
        if key:
            errors += label_name(key, f"{where}.key")
        if not key and operator != "Exists":
            errors.append(
                FieldError.invalid(
                    f"{where}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values '
                    'and all keys"',
                )
            )
        if toleration.get("tolerationSeconds") is not None and effect != "NoExecute":
            errors.append(
                FieldError.invalid(
                    f"{where}.effect",
                    effect,
                    "effect must be 'NoExecute' when `tolerationSeconds` is set",
                )
            )
        if operator in ("Equal", ""):
            problems = is_valid_label_value(value)
            if problems:
                errors.append(FieldError.invalid(f"{where}.operator", value, ";".join(problems)))
        elif operator == "Exists":
            if value:
                errors.append(
                    FieldError.invalid(
                        f"{where}.operator",
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    )
                )
        else:
            errors.append(
                FieldError.not_supported(f"{where}.operator", operator, ["Equal", "Exists"])
            )
        supported = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
        if effect and effect not in supported:
            errors.append(FieldError.not_supported(f"{where}.effect", effect, supported))
    return errors


def pod_template(template: dict[str, Any], path: str) -> list[FieldError]:
    """``ValidatePodTemplateSpec``: the template's labels and annotations are reported at
    ``<path>.labels`` (the internal type embeds ObjectMeta), then its spec."""
    meta = template.get("metadata") or {}
    errors = labels(meta.get("labels"), f"{path}.labels")
    errors += annotations(meta.get("annotations"), f"{path}.annotations")
    spec = template.get("spec") or {}
    errors += pod_spec(spec, f"{path}.spec", is_pod=False)
    if spec.get("ephemeralContainers"):
        errors.append(
            FieldError.forbidden(
                f"{path}.spec.ephemeralContainers",
                "ephemeral containers not allowed in pod template",
            )
        )
    return errors


def pod(obj: dict[str, Any]) -> list[FieldError]:
    """``ValidatePodCreate`` after the metadata: the spec and the pod-only container checks."""
    spec = obj.get("spec") or {}
    errors = pod_spec(spec, "spec", is_pod=True)
    for list_name in ("containers", "initContainers"):
        for index, container in enumerate(spec.get(list_name) or ()):
            image = container.get("image") or ""
            if image != image.strip():
                errors.append(
                    FieldError.invalid(
                        f"spec.{list_name}[{index}].image",
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    return errors


def pod_create(obj: dict[str, Any]) -> list[FieldError]:
    spec = obj.get("spec") or {}
    errors = pod(obj)
    if spec.get("ephemeralContainers"):
        errors.append(FieldError.forbidden("spec.ephemeralContainers", "cannot be set on create"))
    if spec.get("nodeName") and spec.get("schedulingGates"):
        errors.append(
            FieldError.forbidden(
                "spec.nodeName", "cannot be set until all schedulingGates have been cleared"
            )
        )
    return errors


_UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _changed_paths(new: Any, old: Any, path: str) -> list[str]:
    """Where two JSON values differ (an outline: upstream prints a cmp.Diff of the Go structs)."""
    if isinstance(new, dict) and isinstance(old, dict):
        changed: list[str] = []
        for key in sorted(set(new) | set(old)):
            changed += _changed_paths(new.get(key), old.get(key), f"{path}.{key}")
        return changed
    if isinstance(new, list) and isinstance(old, list) and len(new) == len(old):
        changed = []
        for index, (a, b) in enumerate(zip(new, old, strict=True)):
            changed += _changed_paths(a, b, f"{path}[{index}]")
        return changed
    return [] if new == old else [path]


def pod_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """``ValidatePodUpdate``'s rules for the spec: only images, a shorter active deadline and
    added tolerations may change (pods are bound to nodes through the binding, not updates)."""
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    errors: list[FieldError] = []
    for key in ("containers", "initContainers"):
        containers, old_containers = spec.get(key) or [], old_spec.get(key) or []
        if len(containers) != len(old_containers):
            return [
                FieldError.forbidden(f"spec.{key}", "pod updates may not add or remove containers")
            ]
        for index, container in enumerate(containers):
            image = container.get("image") or ""
            if not image:
                errors.append(FieldError.required(f"spec.{key}[{index}].image"))
            if image != image.strip():
                errors.append(
                    FieldError.invalid(
                        f"spec.{key}[{index}].image",
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    deadline, old_deadline = (
        spec.get("activeDeadlineSeconds"),
        old_spec.get("activeDeadlineSeconds"),
    )
    if deadline is not None:
        if not 0 <= deadline <= MAX_INT32:
            return errors + [
                FieldError.invalid(
                    "spec.activeDeadlineSeconds", deadline, inclusive_range_error(0, MAX_INT32)
                )
            ]
        if old_deadline is not None and old_deadline < deadline:
            return errors + [
                FieldError.invalid(
                    "spec.activeDeadlineSeconds",
                    deadline,
                    "must be less than or equal to previous value",
                )
            ]
    elif old_deadline is not None:
        errors.append(
            FieldError.invalid(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    old_tolerations = old_spec.get("tolerations") or []
    tolerations = spec.get("tolerations") or []
    for toleration in old_tolerations:
        others = {k: v for k, v in toleration.items() if k != "tolerationSeconds"}
        if not any(
            {k: v for k, v in t.items() if k != "tolerationSeconds"} == others for t in tolerations
        ):
            errors.append(
                FieldError.forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            )
            break
    munged = copy.deepcopy(spec)
    for key in ("containers", "initContainers"):
        for container, old_container in zip(
            munged.get(key) or [], old_spec.get(key) or [], strict=True
        ):
            container["image"] = old_container.get("image")
    for key in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    changed = _changed_paths(munged, old_spec, "spec")
    if changed:
        errors.append(
            FieldError.forbidden(
                "spec",
                f"pod updates may not change fields other than {_UPDATABLE_POD_SPEC_FIELDS}\n"
                + "\n".join(changed),
            )
        )
    return errors
