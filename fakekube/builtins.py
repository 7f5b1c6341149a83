"""The built-in kinds: their defaulting, validation and registry rules, after kube-apiserver's."""

from __future__ import annotations

import base64
import ipaddress
import itertools
from typing import Any

from .crds import CustomResourceDefinitionStrategy
from .errors import FieldError, GroupResource
from .patch import ATOMIC, ListStrategy
from .resources import ORPHAN, ResourceType, Strategy
from .reviews import review_resource_types
from .selectors import LabelSelector
from .validation import config, events, job, lease, pod, rbac, service
from .validation.meta import object_meta, object_meta_update
from .validation.names import (
    name_is_dns1035_label,
    name_is_dns_label,
    name_is_dns_subdomain,
    rbac_name,
)
from .validation.probes import default_probes
from .validation.service import externally_accessible
from .validation.volumes import VOLUME_SOURCE_FIELDS

POD_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

# patchMergeKey of the built-in types' lists, by field name (Go struct tags in k8s.io/api).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


def builtin_list_strategy(path: tuple[str, ...]) -> ListStrategy:
    """Strategic-merge semantics of a built-in list, from its field name and parent."""
    if path == ("metadata", "finalizers"):
        return ("set", None)
    field = path[-1]
    if field == "ports":
        parent = path[-2] if len(path) > 1 else ""
        return ("map", "containerPort") if parent in POD_CONTAINER_LISTS else ATOMIC
    key = _MERGE_KEYS.get(field)
    return ("map", key) if key else ATOMIC


class BuiltinStrategy(Strategy):
    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        return builtin_list_strategy(path)


# Pods and pod templates.


def _image_pull_policy(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        return "IfNotPresent"
    tag = last.partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def default_pod_spec(spec: dict[str, Any]) -> None:
    """``SetDefaults_PodSpec`` and ``SetDefaults_Container``, the parts clients can observe."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    for list_name in ("containers", "initContainers"):
        for container in spec.get(list_name) or ():
            if isinstance(container, dict):
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
                container.setdefault(
                    "imagePullPolicy", _image_pull_policy(container.get("image", ""))
                )
                container.setdefault("resources", {})
                for port in container.get("ports") or ():
                    port.setdefault("protocol", "TCP")
                default_probes(container)
                for variable in container.get("env") or ():
                    field_ref = (variable.get("valueFrom") or {}).get("fieldRef")
                    if isinstance(field_ref, dict):
                        field_ref.setdefault("apiVersion", "v1")
    for volume in spec.get("volumes") or ():
        _default_volume(volume)


# Sources whose files get mode 0644 unless told otherwise (SetDefaults_*VolumeSource).
_DEFAULT_MODE_SOURCES = ("configMap", "secret", "downwardAPI", "projected")


def _default_volume(volume: dict[str, Any]) -> None:
    """``SetDefaults_Volume``: a volume without a source is an emptyDir."""
    if not any(volume.get(source) is not None for source in VOLUME_SOURCE_FIELDS):
        volume["emptyDir"] = {}
    for source in _DEFAULT_MODE_SOURCES:
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 0o644)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")


def _qos_class(spec: dict[str, Any]) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers") or ()]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        r.get("limits", {}).get(k)
        and r.get("requests", {}).get(k, r["limits"][k]) == r["limits"][k]
        for r in resources
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(BuiltinStrategy):
    returns_deleted_object = True
    validates_metadata = True
    selectable_fields = frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        }
    )

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        default_pod_spec(spec)
        # The ServiceAccount admission plugin names the default account.
        spec.setdefault("serviceAccountName", spec.get("serviceAccount", "default"))
        spec.setdefault("serviceAccount", spec["serviceAccountName"])

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj["spec"])}

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        errors = object_meta(obj["metadata"], namespaced=True, name_rule=name_is_dns_subdomain)
        if old is None:
            return errors + pod.pod_create(obj)
        errors = object_meta_update(obj["metadata"], old["metadata"]) + errors + pod.pod(obj)
        return errors + pod.pod_update(obj, old)


# Services.


class ServiceStrategy(BuiltinStrategy):
    returns_deleted_object = True
    validates_metadata = True

    def __init__(self) -> None:
        # The default service CIDR 10.96.0.0/12; .1 belongs to the "kubernetes" Service.
        self._cluster_ips = (
            str(ipaddress.IPv4Address("10.96.0.10") + n) for n in itertools.count()
        )
        self._node_ports = itertools.count(30000)

    @staticmethod
    def validate_name(name: str, prefix: bool = False) -> list[str]:
        return name_is_dns1035_label(name, prefix)

    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        if path == ("spec", "ports"):
            return ("map", "port")
        return builtin_list_strategy(path)

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for port in spec.get("ports") or ():
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
        if externally_accessible(spec):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if spec["type"] != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if spec["type"] == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        spec = obj["spec"]
        if spec["type"] != "ExternalName":
            if not spec.get("clusterIP"):
                spec["clusterIP"] = (spec.get("clusterIPs") or [None])[0] or next(
                    self._cluster_ips
                )
            spec["clusterIPs"] = [spec["clusterIP"]]
            if spec["clusterIP"] != "None":
                spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        if spec["type"] in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or ():
                port.setdefault("nodePort", next(self._node_ports))
        obj["status"] = {"loadBalancer": {}}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        # An update that omits allocated values keeps them (as since Kubernetes 1.20).
        spec, old_spec = new.setdefault("spec", {}), old.get("spec", {})
        for allocated in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if (
                allocated not in spec
                and allocated in old_spec
                and spec.get("type") == old_spec.get("type")
            ):
                spec[allocated] = old_spec[allocated]
        old_node_ports = {p.get("port"): p.get("nodePort") for p in old_spec.get("ports") or ()}
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or ():
                if "nodePort" not in port and old_node_ports.get(port.get("port")):
                    port["nodePort"] = old_node_ports[port["port"]]

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return service.validate_service(obj)
        return service.validate_service_update(obj, old)


# Jobs.

JOB_NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
CONTROLLER_UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")


class JobStrategy(BuiltinStrategy):
    tracks_generation = True
    validates_metadata = True
    # batch/v1 keeps Orphan as the default for backwards compatibility (registry/batch/job).
    default_propagation = ORPHAN
    selectable_fields = frozenset({"status.successful"})

    def default(self, obj: dict[str, Any]) -> None:
        """``SetDefaults_Job``: completions/parallelism 1 only when both are unset."""
        spec = obj.setdefault("spec", {})
        if spec.get("completions") is None and spec.get("parallelism") is None:
            spec["completions"] = 1
            spec["parallelism"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        template = spec.setdefault("template", {})
        template_labels = (template.get("metadata") or {}).get("labels")
        if template_labels and not obj["metadata"].get("labels"):
            obj["metadata"]["labels"] = dict(template_labels)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        spec.setdefault(
            "podReplacementPolicy",
            "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed",
        )
        spec.setdefault("manualSelector", False)
        default_pod_spec(template.setdefault("spec", {}))

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Generate the selector and the template labels that tie pods to this Job."""
        meta, spec = obj["metadata"], obj["spec"]
        obj.pop("status", None)
        if spec.get("manualSelector"):
            return
        labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        for key in JOB_NAME_LABELS:
            labels.setdefault(key, meta["name"])
        for key in CONTROLLER_UID_LABELS:
            labels.setdefault(key, meta["uid"])
        match_labels = spec.setdefault("selector", {}).setdefault("matchLabels", {})
        match_labels.setdefault("batch.kubernetes.io/controller-uid", meta["uid"])

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return job.validate_job(obj)
        return job.validate_job_update(obj, old)


# Namespaces.


class NamespaceStrategy(BuiltinStrategy):
    returns_deleted_object = True
    selectable_fields = frozenset({"status.phase"})

    @staticmethod
    def validate_name(name: str, prefix: bool = False) -> list[str]:
        return name_is_dns_label(name, prefix)

    def default(self, obj: dict[str, Any]) -> None:
        # The NamespaceDefaultLabelName feature labels every namespace with its own name.
        name = obj["metadata"].get("name")
        if name:
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        new["spec"] = old.get("spec", {})

    def prepare_for_delete(self, obj: dict[str, Any]) -> None:
        obj["status"] = {**obj.get("status", {}), "phase": "Terminating"}

    def pending_finalization(self, obj: dict[str, Any]) -> bool:
        return super().pending_finalization(obj) or bool(obj.get("spec", {}).get("finalizers"))


# Secrets, Events, RBAC, the rest.


class ConfigMapStrategy(BuiltinStrategy):
    validates_metadata = True

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return config.validate_config_map(obj)
        return config.validate_config_map_update(obj, old)


class SecretStrategy(BuiltinStrategy):
    selectable_fields = frozenset({"type"})
    validates_metadata = True

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return config.validate_secret(obj)
        return config.validate_secret_update(obj, old)

    def default(self, obj: dict[str, Any]) -> None:
        obj.setdefault("type", "Opaque")
        # stringData is write-only: it is folded into data on decode.
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()


class ServiceAccountStrategy(BuiltinStrategy):
    returns_deleted_object = True


class LeaseStrategy(BuiltinStrategy):
    validates_metadata = True

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return lease.validate_lease(obj)
        return lease.validate_lease_update(obj, old)


class RbacStrategy(BuiltinStrategy):
    """Roles and bindings, namespaced or cluster-wide."""

    validates_metadata = True

    def __init__(self, *, binding: bool, namespaced: bool):
        self._binding = binding
        self._namespaced = namespaced

    @staticmethod
    def validate_name(name: str, prefix: bool = False) -> list[str]:
        return rbac_name(name, prefix)

    def default(self, obj: dict[str, Any]) -> None:
        # SetDefaults_Subject: users and groups belong to the RBAC API group.
        for subject in obj.get("subjects") or ():
            if subject.get("kind") in ("User", "Group") and not subject.get("apiGroup"):
                subject["apiGroup"] = rbac.RBAC_GROUP

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if self._binding:
            if old is None:
                return rbac.validate_binding(obj, self._namespaced)
            return rbac.validate_binding_update(obj, old, self._namespaced)
        if old is None:
            return rbac.validate_role(obj, self._namespaced)
        return rbac.validate_role_update(obj, old, self._namespaced)


# events.k8s.io/v1 and core/v1 Events are one storage; these fields are renamed between them.
_EVENTS_V1_TO_CORE = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedSource": "source",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "reportingController": "reportingComponent",
}
_CORE_TO_EVENTS_V1 = {core: v1 for v1, core in _EVENTS_V1_TO_CORE.items()}


class EventStrategy(BuiltinStrategy):
    #: events.k8s.io/v1 requests get the strict rules; core/v1 keeps the legacy ones.
    strict_validation = False
    validates_metadata = True
    selectable_fields = frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        }
    )

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        if old is None:
            return events.validate_event(obj, self.strict_validation)
        return events.validate_event_update(obj, old, self.strict_validation)

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
        renames = _EVENTS_V1_TO_CORE if api_version == "v1" else _CORE_TO_EVENTS_V1
        return {renames.get(key, key): value for key, value in obj.items()} | {
            "apiVersion": api_version
        }


class EventsV1Strategy(EventStrategy):
    strict_validation = True
    selectable_fields = frozenset(
        {
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        }
    )


def builtin_resource_types() -> list[ResourceType]:
    """A fresh set of the built-in types (strategies hold per-server state such as IP allocation)."""
    rbac = "rbac.authorization.k8s.io"
    no_collection_delete = ("get", "list", "watch", "create", "update", "patch", "delete")
    return [
        ResourceType(
            "",
            "v1",
            "Namespace",
            "namespaces",
            False,
            NamespaceStrategy(),
            short_names=("ns",),
            has_status=True,
            verbs=no_collection_delete,
        ),
        ResourceType(
            "",
            "v1",
            "Pod",
            "pods",
            True,
            PodStrategy(),
            short_names=("po",),
            categories=("all",),
            has_status=True,
            get_subresources=("log",),
            connect_subresources=("proxy",),
        ),
        ResourceType(
            "",
            "v1",
            "Service",
            "services",
            True,
            ServiceStrategy(),
            short_names=("svc",),
            categories=("all",),
            has_status=True,
        ),
        ResourceType(
            "", "v1", "ConfigMap", "configmaps", True, ConfigMapStrategy(), short_names=("cm",)
        ),
        # Written by hand for a Service without a selector (a backend outside the cluster); no
        # EndpointSlice controller runs.
        ResourceType(
            "discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", True, BuiltinStrategy()
        ),
        ResourceType("", "v1", "Secret", "secrets", True, SecretStrategy()),
        ResourceType(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            True,
            ServiceAccountStrategy(),
            short_names=("sa",),
        ),
        ResourceType("", "v1", "Event", "events", True, EventStrategy(), short_names=("ev",)),
        ResourceType(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            True,
            EventsV1Strategy(),
            short_names=("ev",),
            storage=GroupResource("", "events"),
            storage_api_version="v1",
        ),
        ResourceType(
            "batch", "v1", "Job", "jobs", True, JobStrategy(), categories=("all",), has_status=True
        ),
        ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True, LeaseStrategy()),
        ResourceType(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            False,
            CustomResourceDefinitionStrategy(),
            short_names=("crd", "crds"),
            categories=("api-extensions",),
            has_status=True,
        ),
        ResourceType(
            rbac,
            "v1",
            "ClusterRole",
            "clusterroles",
            False,
            RbacStrategy(binding=False, namespaced=False),
        ),
        ResourceType(
            rbac,
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            False,
            RbacStrategy(binding=True, namespaced=False),
        ),
        ResourceType(
            rbac, "v1", "Role", "roles", True, RbacStrategy(binding=False, namespaced=True)
        ),
        ResourceType(
            rbac,
            "v1",
            "RoleBinding",
            "rolebindings",
            True,
            RbacStrategy(binding=True, namespaced=True),
        ),
        *review_resource_types(),
    ]
