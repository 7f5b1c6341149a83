"""Containers: ``validateContainerCommon`` and what it calls (ports, env, mounts, resources,
security contexts)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import FieldError, GoLiteral
from . import quantity
from .names import (
    inclusive_range_error,
    is_config_map_key,
    is_dns1123_label,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns_subdomain,
)
from .volumes import relative

_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_ENV_FIELD_PATHS = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
]
# Field labels ``ConvertDownwardAPIFieldLabel`` knows (and so may reach the allow-list check).
_DOWNWARD_API_LABELS = frozenset(
    {
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.serviceAccountName",
        "spec.schedulerName",
        "status.phase",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    }
)
_CONTAINER_RESOURCE_FIELDS = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
]
_SUBSCRIPTED = re.compile(r"^(.+)\['(.*)'\]$")
MAX_INT32 = 2**31 - 1
_SECCOMP_TYPES = ["Localhost", "RuntimeDefault", "Unconfined"]
_STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
_STANDARD_RESOURCES = _STANDARD_CONTAINER_RESOURCES | {
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "persistentvolumeclaims",
    "requests.storage",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
    "storage",
}


# Containers.


def _ports(ports: list[dict[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    names: set[str] = set()
    for index, port in enumerate(ports):
        where = f"{path}[{index}]"
        name = port.get("name") or ""
        if name:
            problems = is_valid_port_name(name)
            if problems:
                errors += [FieldError.invalid(f"{where}.name", name, p) for p in problems]
            elif name in names:
                errors.append(FieldError.duplicate(f"{where}.name", name))
            else:
                names.add(name)
        number = port.get("containerPort") or 0
        if not number:
            errors.append(FieldError.required(f"{where}.containerPort"))
        else:
            errors += [
                FieldError.invalid(f"{where}.containerPort", number, p)
                for p in is_valid_port_num(number)
            ]
        host_port = port.get("hostPort") or 0
        if host_port:
            errors += [
                FieldError.invalid(f"{where}.hostPort", host_port, p)
                for p in is_valid_port_num(host_port)
            ]
        protocol = port.get("protocol") or ""
        if not protocol:
            errors.append(FieldError.required(f"{where}.protocol"))
        elif protocol not in _PROTOCOLS:
            errors.append(FieldError.not_supported(f"{where}.protocol", protocol, _PROTOCOLS))
    return errors


def _object_field_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    api_version = selector.get("apiVersion") or ""
    field_path = selector.get("fieldPath") or ""
    if not api_version:
        return [FieldError.required(f"{path}.apiVersion")]
    if not field_path:
        return [FieldError.required(f"{path}.fieldPath")]
    subscripted = _SUBSCRIPTED.match(field_path)
    converted = ""
    if api_version != "v1":
        converted = f"unsupported pod version: {api_version}"
    elif subscripted and subscripted.group(1) not in ("metadata.annotations", "metadata.labels"):
        converted = f"field label does not support subscript: {field_path}"
    elif not subscripted and field_path not in _DOWNWARD_API_LABELS | {"spec.host"}:
        converted = f"field label not supported: {field_path}"
    if converted:
        return [
            FieldError.invalid(
                f"{path}.fieldPath", field_path, f"error converting fieldPath: {converted}"
            )
        ]
    if subscripted:
        key = subscripted.group(2)
        if subscripted.group(1) == "metadata.annotations":
            key = key.lower()
        return [FieldError.invalid(path, key, p) for p in is_qualified_name(key)]
    internal = "spec.nodeName" if field_path == "spec.host" else field_path
    if internal not in _ENV_FIELD_PATHS:
        return [FieldError.not_supported(f"{path}.fieldPath", internal, _ENV_FIELD_PATHS)]
    return []


def _key_selector(selector: dict[str, Any], path: str) -> list[FieldError]:
    name = selector.get("name") or ""
    errors = [FieldError.invalid(f"{path}.name", name, p) for p in name_is_dns_subdomain(name)]
    key = selector.get("key") or ""
    if not key:
        errors.append(FieldError.required(f"{path}.key"))
    else:
        errors += [FieldError.invalid(f"{path}.key", key, p) for p in is_config_map_key(key)]
    return errors


def _value_from(variable: dict[str, Any], path: str) -> list[FieldError]:
    source = variable.get("valueFrom")
    if source is None:
        return []
    errors: list[FieldError] = []
    count = 0
    if source.get("fieldRef") is not None:
        count += 1
        errors += _object_field_selector(source["fieldRef"], f"{path}.fieldRef")
    if source.get("resourceFieldRef") is not None:
        count += 1
        resource = source["resourceFieldRef"].get("resource") or ""
        where = f"{path}.resourceFieldRef"
        if not resource:
            errors.append(FieldError.required(f"{where}.resource"))
        elif resource not in _CONTAINER_RESOURCE_FIELDS and not resource.startswith(
            ("requests.hugepages-", "limits.hugepages-")
        ):
            errors.append(
                FieldError.not_supported(f"{where}.resource", resource, _CONTAINER_RESOURCE_FIELDS)
            )
    if source.get("configMapKeyRef") is not None:
        count += 1
        errors += _key_selector(source["configMapKeyRef"], f"{path}.configMapKeyRef")
    if source.get("secretKeyRef") is not None:
        count += 1
        errors += _key_selector(source["secretKeyRef"], f"{path}.secretKeyRef")
    if count == 0:
        errors.append(
            FieldError.invalid(
                path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                "`secretKeyRef`",
            )
        )
    elif variable.get("value"):
        errors.append(
            FieldError.invalid(path, "", "may not be specified when `value` is not empty")
        )
    elif count > 1:
        errors.append(
            FieldError.invalid(path, "", "may not have more than one field specified at a time")
        )
    return errors


def _env(variables: list[dict[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, variable in enumerate(variables):
        where = f"{path}[{index}]"
        name = variable.get("name") or ""
        if not name:
            errors.append(FieldError.required(f"{where}.name"))
        else:
            errors += [
                FieldError.invalid(f"{where}.name", name, p) for p in is_relaxed_env_var_name(name)
            ]
        errors += _value_from(variable, f"{where}.valueFrom")
    return errors


def _env_from(sources: list[dict[str, Any]], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for index, source in enumerate(sources):
        where = f"{path}[{index}]"
        prefix = source.get("prefix") or ""
        if prefix:
            errors += [
                FieldError.invalid(f"{where}.prefix", prefix, p)
                for p in is_relaxed_env_var_name(prefix)
            ]
        count = 0
        for key in ("configMapRef", "secretRef"):
            ref = source.get(key)
            if ref is None:
                continue
            count += 1
            name = ref.get("name") or ""
            if not name:
                errors.append(FieldError.required(f"{where}.{key}.name"))
            else:
                errors += [
                    FieldError.invalid(f"{where}.{key}.name", name, p)
                    for p in name_is_dns_subdomain(name, True)
                ]
        if count == 0:
            errors.append(
                FieldError.invalid(path, "", "must specify one of: `configMapRef` or `secretRef`")
            )
        elif count > 1:
            errors.append(
                FieldError.invalid(
                    path, "", "may not have more than one field specified at a time"
                )
            )
    return errors


def _volume_mounts(
    mounts: list[dict[str, Any]], volumes_by_name: dict[str, dict], path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    mount_points: set[str] = set()
    for index, mount in enumerate(mounts):
        where = f"{path}[{index}]"
        name = mount.get("name") or ""
        mount_path = mount.get("mountPath") or ""
        if not name:
            errors.append(FieldError.required(f"{where}.name"))
        if name not in volumes_by_name:
            errors.append(FieldError.not_found(f"{where}.name", name))
        if not mount_path:
            errors.append(FieldError.required(f"{where}.mountPath"))
        if mount_path in mount_points:
            errors.append(FieldError.invalid(f"{where}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        sub_path = mount.get("subPath") or ""
        sub_path_expr = mount.get("subPathExpr") or ""
        volume = volumes_by_name.get(name) or {}
        if volume.get("image") is not None:
            for key, value in (("subPath", sub_path), ("subPathExpr", sub_path_expr)):
                if value:
                    errors.append(
                        FieldError.invalid(
                            f"{where}.{key}", value, "not allowed in image volume sources"
                        )
                    )
        # Upstream reports these at the list's path, not the mount's.
        if sub_path:
            errors += relative(f"{path}.subPath", sub_path)
        if sub_path_expr:
            if sub_path:
                errors.append(
                    FieldError.invalid(
                        f"{where}.subPathExpr",
                        sub_path_expr,
                        "subPathExpr and subPath are mutually exclusive",
                    )
                )
            errors += relative(f"{path}.subPathExpr", sub_path_expr)
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            supported = ["Bidirectional", "HostToContainer", "None"]
            if propagation not in supported:
                errors.append(
                    FieldError.not_supported(f"{path}.mountPropagation", propagation, supported)
                )
    return errors


def _is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def _is_hugepages(name: str) -> bool:
    return name.startswith("hugepages-")


def _is_extended_resource(name: str) -> bool:
    if _is_native_resource(name) or name.startswith("requests."):
        return False
    return not is_qualified_name(f"requests.{name}")


def _overcommit_allowed(name: str) -> bool:
    return _is_native_resource(name) and not _is_hugepages(name)


def _resource_name(name: str, path: str) -> list[FieldError]:
    """``validateContainerResourceName``."""
    errors = [FieldError.invalid(path, name, p) for p in is_qualified_name(name)]
    if not errors and "/" not in name and not (name in _STANDARD_RESOURCES or _is_hugepages(name)):
        errors.append(
            FieldError.invalid(path, name, "must be a standard resource type or fully qualified")
        )
    if "/" not in name:
        if not (name in _STANDARD_CONTAINER_RESOURCES or _is_hugepages(name)):
            errors.append(
                FieldError.invalid(path, name, "must be a standard resource for containers")
            )
    elif not _is_native_resource(name) and not _is_extended_resource(name):
        errors.append(
            FieldError.invalid(path, name, "doesn't follow extended resource name standard")
        )
    return errors


def _quantity_value(name: str, value: quantity.Quantity, path: str) -> list[FieldError]:
    errors = []
    if value.value < 0:
        errors.append(FieldError.invalid(path, str(value), "must be greater than or equal to 0"))
    if _is_extended_resource(name) and (value.value * 1000) % 1000 != 0:
        errors.append(FieldError.invalid(path, str(value), "must be an integer"))
    return errors


def _resources(requirements: dict[str, Any], claim_names: set[str], path: str) -> list[FieldError]:
    """``ValidateContainerResourceRequirements``."""
    errors: list[FieldError] = []
    limits = {k: quantity.parse(v) for k, v in (requirements.get("limits") or {}).items()}
    requests = {k: quantity.parse(v) for k, v in (requirements.get("requests") or {}).items()}
    cpu_or_memory = hugepages = False
    for name, value in limits.items():
        where = f"{path}.limits[{name}]"
        errors += _resource_name(name, where)
        errors += _quantity_value(name, value, where)
        hugepages |= _is_hugepages(name)
        cpu_or_memory |= name in ("cpu", "memory")
    for name, value in requests.items():
        where = f"{path}.requests[{name}]"
        errors += _resource_name(name, where)
        errors += _quantity_value(name, value, where)
        limit = limits.get(name)
        if limit is not None:
            if value.value != limit.value and not _overcommit_allowed(name):
                errors.append(
                    FieldError.invalid(
                        f"{path}.requests", str(value), f"must be equal to {name} limit of {limit}"
                    )
                )
            elif value.value > limit.value:
                errors.append(
                    FieldError.invalid(
                        f"{path}.requests",
                        str(value),
                        f"must be less than or equal to {name} limit of {limit}",
                    )
                )
        elif not _overcommit_allowed(name):
            errors.append(
                FieldError.required(
                    f"{path}.limits", "Limit must be set for non overcommitable resources"
                )
            )
        hugepages |= _is_hugepages(name)
        cpu_or_memory |= name in ("cpu", "memory")
    if hugepages and not cpu_or_memory:
        errors.append(FieldError.forbidden(path, "HugePages require cpu or memory"))
    seen: set[str] = set()
    for index, claim in enumerate(requirements.get("claims") or ()):
        name = claim.get("name") or ""
        where = f"{path}.claims[{index}]"
        if not name:
            errors.append(FieldError.required(where))
            continue
        if name in seen:
            errors.append(FieldError.duplicate(where, name))
        seen.add(name)
        if name not in claim_names:
            detail = "must be one of the names in pod.spec.resourceClaims"
            detail += ": " + ", ".join(sorted(claim_names)) if claim_names else " which is empty"
            errors.append(FieldError.not_found(where, name, detail))
    return errors


def seccomp_profile(profile: Any, path: str) -> list[FieldError]:
    if profile is None:
        return []
    kind = profile.get("type") or ""
    errors = []
    if not kind:
        errors.append(
            FieldError.required(f"{path}.type", "type is required when seccompProfile is set")
        )
    elif kind not in _SECCOMP_TYPES:
        errors.append(FieldError.not_supported(f"{path}.type", kind, _SECCOMP_TYPES))
    localhost = profile.get("localhostProfile")
    if kind == "Localhost":
        if localhost is None:
            errors.append(
                FieldError.required(
                    f"{path}.localhostProfile", "must be set when seccomp type is Localhost"
                )
            )
        else:
            errors += relative(f"{path}.localhostProfile", localhost)
    elif localhost is not None:
        errors.append(
            FieldError.invalid(
                f"{path}.localhostProfile",
                GoLiteral(
                    f'&core.SeccompProfile{{Type:"{kind}", LocalhostProfile:(*string)(...)}}'
                ),
                "can only be set when seccomp type is Localhost",
            )
        )
    return errors


def id_ranges(context: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        value = context.get(key)
        if isinstance(value, int) and not 0 <= value <= MAX_INT32:
            errors.append(
                FieldError.invalid(f"{path}.{key}", value, inclusive_range_error(0, MAX_INT32))
            )
    return errors


def _container_security_context(context: Any, path: str, host_users: bool) -> list[FieldError]:
    if context is None:
        return []
    errors = id_ranges({k: v for k, v in context.items() if k != "fsGroup"}, path)
    proc_mount = context.get("procMount")
    if proc_mount is not None:
        if proc_mount not in ("Default", "Unmasked"):
            errors.append(
                FieldError.not_supported(f"{path}.procMount", proc_mount, ["Default", "Unmasked"])
            )
        if host_users and proc_mount == "Unmasked":
            errors.append(
                FieldError.invalid(
                    f"{path}.procMount", proc_mount, "`hostUsers` must be false to use `Unmasked`"
                )
            )
    errors += seccomp_profile(context.get("seccompProfile"), f"{path}.seccompProfile")
    if context.get("allowPrivilegeEscalation") is False:
        rendered = GoLiteral("&core.SecurityContext{...}")
        if context.get("privileged"):
            errors.append(
                FieldError.invalid(
                    path,
                    rendered,
                    "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
                )
            )
        for capability in (context.get("capabilities") or {}).get("add") or ():
            if capability == "CAP_SYS_ADMIN":
                errors.append(
                    FieldError.invalid(
                        path,
                        rendered,
                        "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` "
                        "CAP_SYS_ADMIN",
                    )
                )
    return errors


def container_common(
    container: dict[str, Any],
    volumes_by_name: dict[str, dict],
    claim_names: set[str],
    path: str,
    host_users: bool,
) -> list[FieldError]:
    errors: list[FieldError] = []
    name = container.get("name") or ""
    if not name:
        errors.append(FieldError.required(f"{path}.name"))
    else:
        errors += [FieldError.invalid(f"{path}.name", name, p) for p in is_dns1123_label(name)]
    if not container.get("image"):
        errors.append(FieldError.required(f"{path}.image"))
    policy = container.get("terminationMessagePolicy") or ""
    supported = ["File", "FallbackToLogsOnError"]
    if not policy:
        errors.append(FieldError.required(f"{path}.terminationMessagePolicy"))
    elif policy not in supported:
        errors.append(
            FieldError.not_supported(f"{path}.terminationMessagePolicy", policy, supported)
        )
    errors += _ports(container.get("ports") or [], f"{path}.ports")
    errors += _env(container.get("env") or [], f"{path}.env")
    errors += _env_from(container.get("envFrom") or [], f"{path}.envFrom")
    errors += _volume_mounts(
        container.get("volumeMounts") or [], volumes_by_name, f"{path}.volumeMounts"
    )
    pull = container.get("imagePullPolicy") or ""
    if not pull:
        errors.append(FieldError.required(f"{path}.imagePullPolicy"))
    elif pull not in _PULL_POLICIES:
        errors.append(FieldError.not_supported(f"{path}.imagePullPolicy", pull, _PULL_POLICIES))
    errors += _resources(container.get("resources") or {}, claim_names, f"{path}.resources")
    errors += _container_security_context(
        container.get("securityContext"), f"{path}.securityContext", host_users
    )
    return errors


def probe_fields(container: dict[str, Any]) -> list[str]:
    return [
        key
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe")
        if container.get(key) is not None
    ]


def host_ports(containers: list[dict[str, Any]], path: str) -> list[FieldError]:
    """``checkHostPortConflicts`` across the given containers."""
    seen: set[str] = set()
    errors = []
    for index, container in enumerate(containers):
        for port_index, port in enumerate(container.get("ports") or ()):
            host_port = port.get("hostPort") or 0
            if not host_port:
                continue
            key = f"{port.get('protocol', '')}/{port.get('hostIP', '')}/{host_port}"
            if key in seen:
                errors.append(
                    FieldError.duplicate(f"{path}[{index}].ports[{port_index}].hostPort", key)
                )
            seen.add(key)
    return errors
