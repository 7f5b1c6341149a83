"""Services: ``ValidateService`` and ``ValidateServiceUpdate`` of core validation."""

from __future__ import annotations

from typing import Any

from ..errors import FieldError, GoLiteral
from .meta import labels, object_meta, object_meta_update
from .names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_port_name,
    is_valid_port_num,
    name_is_dns1035_label,
)

_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_PROTOCOLS = ["SCTP", "TCP", "UDP"]
_AFFINITIES = ["ClientIP", "None"]
_TRAFFIC_POLICIES = ["Cluster", "Local"]


def _headless(spec: dict[str, Any]) -> bool:
    return spec.get("clusterIP") == "None"


def externally_accessible(spec: dict[str, Any]) -> bool:
    kind = spec.get("type")
    return kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def _go_service_port(port: dict[str, Any]) -> GoLiteral:
    """``%#v`` of the ``core.ServicePort`` key used for the duplicate (protocol, port) check."""
    return GoLiteral(
        f'core.ServicePort{{Name:"", Protocol:"{port.get("protocol", "")}", '
        f"AppProtocol:(*string)(nil), Port:{port.get('port', 0)}, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def _target_port(value: Any, path: str) -> list[FieldError]:
    """``ValidatePortNumOrName``."""
    if isinstance(value, str):
        return [FieldError.invalid(path, value, p) for p in is_valid_port_name(value)]
    return [FieldError.invalid(path, value, p) for p in is_valid_port_num(value or 0)]


def _port(port: dict[str, Any], index: int, several: bool, names: set[str]) -> list[FieldError]:
    where = f"spec.ports[{index}]"
    errors: list[FieldError] = []
    name = port.get("name") or ""
    if several and not name:
        errors.append(FieldError.required(f"{where}.name"))
    elif name:
        errors += [FieldError.invalid(f"{where}.name", name, p) for p in is_dns1123_label(name)]
        if name in names:
            errors.append(FieldError.duplicate(f"{where}.name", name))
        names.add(name)
    number = port.get("port") or 0
    errors += [FieldError.invalid(f"{where}.port", number, p) for p in is_valid_port_num(number)]
    protocol = port.get("protocol") or ""
    if not protocol:
        errors.append(FieldError.required(f"{where}.protocol"))
    elif protocol not in _PROTOCOLS:
        errors.append(FieldError.not_supported(f"{where}.protocol", protocol, _PROTOCOLS))
    errors += _target_port(port.get("targetPort"), f"{where}.targetPort")
    app_protocol = port.get("appProtocol")
    if app_protocol is not None:
        errors += [
            FieldError.invalid(f"{where}.appProtocol", app_protocol, p)
            for p in is_qualified_name(app_protocol)
        ]
    return errors


def validate_service(service: dict[str, Any]) -> list[FieldError]:
    errors = object_meta(service["metadata"], namespaced=True, name_rule=name_is_dns1035_label)
    spec = service.get("spec") or {}
    kind = spec.get("type") or ""
    ports = spec.get("ports") or []
    if not ports and not _headless(spec) and kind != "ExternalName":
        errors.append(FieldError.required("spec.ports"))
    cluster_ips = spec.get("clusterIPs") or []
    if kind in ("LoadBalancer", "NodePort") and _headless(spec):
        errors.append(
            FieldError.invalid(
                "spec.clusterIPs[0]",
                cluster_ips[0] if cluster_ips else "None",
                f"may not be set to 'None' for {kind} services",
            )
        )
    if kind == "ExternalName":
        for key in ("clusterIPs", "ipFamilies"):
            if spec.get(key):
                errors.append(
                    FieldError.forbidden(f"spec.{key}", "may not be set for ExternalName services")
                )
        if spec.get("ipFamilyPolicy") is not None:
            errors.append(
                FieldError.forbidden(
                    "spec.ipFamilyPolicy", "may not be set for ExternalName services"
                )
            )
        cname = (spec.get("externalName") or "").removesuffix(".")
        if cname:
            errors += [
                FieldError.invalid("spec.externalName", cname, p)
                for p in is_dns1123_subdomain(cname)
            ]
        else:
            errors.append(FieldError.required("spec.externalName"))
    names: set[str] = set()
    for index, port in enumerate(ports):
        errors += _port(port, index, len(ports) > 1, names)
    if spec.get("selector") is not None:
        errors += labels(spec["selector"], "spec.selector")
    affinity = spec.get("sessionAffinity") or ""
    if not affinity:
        errors.append(FieldError.required("spec.sessionAffinity"))
    elif affinity not in _AFFINITIES:
        errors.append(FieldError.not_supported("spec.sessionAffinity", affinity, _AFFINITIES))
    if affinity == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        timeout = ((config or {}).get("clientIP") or {}).get("timeoutSeconds")
        if config is None:
            errors.append(
                FieldError.required(
                    "spec.sessionAffinityConfig", "when session affinity type is ClientIP"
                )
            )
        elif timeout is not None and not 0 < timeout <= 86400:
            errors.append(
                FieldError.invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    "must be greater than 0 and less than 86400",
                )
            )
    elif affinity == "None" and spec.get("sessionAffinityConfig") is not None:
        errors.append(
            FieldError.forbidden(
                "spec.sessionAffinityConfig", "must not be set when session affinity is None"
            )
        )
    if not kind:
        errors.append(FieldError.required("spec.type"))
    elif kind not in _TYPES:
        errors.append(FieldError.not_supported("spec.type", kind, _TYPES))
    if kind == "ClusterIP":
        for index, port in enumerate(ports):
            if port.get("nodePort"):
                errors.append(
                    FieldError.forbidden(
                        f"spec.ports[{index}].nodePort",
                        "may not be used when `type` is 'ClusterIP'",
                    )
                )
    node_ports: set[tuple[str, int]] = set()
    for index, port in enumerate(ports):
        if not port.get("nodePort"):
            continue
        key = (port.get("protocol", ""), port["nodePort"])
        if key in node_ports:
            errors.append(FieldError.duplicate(f"spec.ports[{index}].nodePort", port["nodePort"]))
        node_ports.add(key)
    seen: set[tuple[str, int]] = set()
    for index, port in enumerate(ports):
        key = (port.get("protocol", ""), port.get("port", 0))
        if key in seen:
            errors.append(FieldError.duplicate(f"spec.ports[{index}]", _go_service_port(port)))
        seen.add(key)
    if spec.get("allocateLoadBalancerNodePorts") is not None and kind != "LoadBalancer":
        errors.append(
            FieldError.forbidden(
                "spec.allocateLoadBalancerNodePorts",
                "may only be used when `type` is 'LoadBalancer'",
            )
        )
    if kind == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        errors.append(FieldError.required("allocateLoadBalancerNodePorts"))
    external = spec.get("externalTrafficPolicy") or ""
    if not externally_accessible(spec):
        if external:
            errors.append(
                FieldError.invalid(
                    "spec.externalTrafficPolicy",
                    external,
                    "may only be set for externally-accessible services",
                )
            )
    elif not external:
        errors.append(FieldError.required("spec.externalTrafficPolicy"))
    elif external not in _TRAFFIC_POLICIES:
        errors.append(
            FieldError.not_supported("spec.externalTrafficPolicy", external, _TRAFFIC_POLICIES)
        )
    internal = spec.get("internalTrafficPolicy")
    if internal is None and kind in ("NodePort", "LoadBalancer", "ClusterIP"):
        errors.append(FieldError.required("spec.internalTrafficPolicy"))
    if internal is not None and internal not in _TRAFFIC_POLICIES:
        errors.append(
            FieldError.not_supported("spec.internalTrafficPolicy", internal, _TRAFFIC_POLICIES)
        )
    distribution = spec.get("trafficDistribution")
    if distribution is not None and distribution != "PreferClose":
        errors.append(
            FieldError.not_supported("spec.trafficDistribution", distribution, ["PreferClose"])
        )
    return errors


def validate_service_update(service: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    errors = object_meta_update(service["metadata"], old["metadata"])
    spec, old_spec = service.get("spec") or {}, old.get("spec") or {}
    old_ip = old_spec.get("clusterIP")
    if (
        old_ip
        and spec.get("type") != "ExternalName"
        and old_spec.get("type") != "ExternalName"
        and spec.get("clusterIP") != old_ip
    ):
        errors.append(
            FieldError.invalid(
                "spec.clusterIPs[0]", spec.get("clusterIP") or "", "may not change once set"
            )
        )
    return errors + validate_service(service)
