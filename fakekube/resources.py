"""Resource types, their per-kind rules ("strategies") and the registry that routes URLs to them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import FieldError, GroupKind, GroupResource
from .patch import ATOMIC, ListStrategy
from .validation.names import name_is_dns_subdomain

READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete", "deletecollection")
STANDARD_VERBS = READ_VERBS + WRITE_VERBS

BACKGROUND, FOREGROUND, ORPHAN = "Background", "Foreground", "Orphan"
ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"


class Strategy:
    """Per-kind behaviour of the generic registry, as Kubernetes' REST strategies define it.

    Every hook works in place on JSON-shaped dicts; the defaults suit a kind without special rules
    (ConfigMap, Lease, RBAC objects ...).
    """

    #: ``metadata.generation`` starts at 1 and rises on every change of the desired state.
    tracks_generation = False
    #: The ``propagationPolicy`` a DELETE without one gets.
    default_propagation = BACKGROUND
    #: A DELETE answers with the deleted object (else with a ``Status`` of success).
    returns_deleted_object = False
    #: PATCH with ``application/strategic-merge-patch+json`` is accepted.
    supports_strategic_merge = True
    #: Fields a ``fieldSelector`` may use besides metadata.name and metadata.namespace.
    selectable_fields: frozenset[str] = frozenset()
    #: ``validate`` checks the metadata itself, as the kind's own validation does; otherwise
    #: the registry applies ``ValidateObjectMeta`` with ``validate_name`` first.
    validates_metadata = False

    @staticmethod
    def validate_name(name: str, prefix: bool = False) -> list[str]:
        """The kind's ``ValidateNameFunc`` (``prefix``: a generateName)."""
        return name_is_dns_subdomain(name, prefix)

    def default(self, obj: dict[str, Any]) -> None:
        """Versioned defaulting, run whenever an object is decoded from a request."""

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        """Reset or fill fields a client may not set on create."""

    def prepare_for_update(self, new: dict[str, Any], old: dict[str, Any]) -> None:
        """Carry over fields a client may not change on update."""

    def prepare_for_delete(self, obj: dict[str, Any]) -> None:
        """Adjust an object that enters graceful deletion (it has finalizers to wait for)."""

    def finalizers_on_delete(self, obj: dict[str, Any]) -> list[str]:
        """Finalizers the registry itself adds when the object is deleted."""
        return []

    def pending_finalization(self, obj: dict[str, Any]) -> bool:
        """Whether a deleting object must stay until someone clears what blocks it."""
        return bool(obj["metadata"].get("finalizers"))

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        return []

    def desired_state_changed(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        return new.get("spec") != old.get("spec")

    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        """How a strategic merge patch or an apply merges the list at ``path``."""
        return ATOMIC

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
        """Convert between served versions that share one storage (no-op conversion by default)."""
        return {**obj, "apiVersion": api_version}

    def convert_all(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        """Convert a list's objects; a kind whose conversion is a remote call does it in one go."""
        return [
            obj if obj.get("apiVersion") == api_version else self.convert(obj, api_version)
            for obj in objects
        ]


@dataclass(eq=False)
class ResourceType:
    """One served group/version/resource, e.g. ``batch/v1 jobs``."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    strategy: Strategy = field(default_factory=Strategy)
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    #: Read-only subresources served besides status (``log`` for pods).
    get_subresources: tuple[str, ...] = ()
    #: Connect subresources that forward any method somewhere else (``proxy`` for pods).
    connect_subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    #: Where the objects live when another group serves them too (events.k8s.io Events).
    storage: GroupResource | None = None
    #: The apiVersion objects are stored in (this type's own unless it shares storage).
    storage_api_version: str = ""
    #: CRD ``additionalPrinterColumns`` for Table output; None means Name and Age.
    printer_columns: tuple[dict[str, Any], ...] | None = None
    is_custom: bool = False
    #: The CRD serving this type, for custom resources.
    crd_name: str = ""
    #: Sent as a ``Warning`` header with every response for this version (deprecated versions).
    deprecation_warning: str | None = None

    def __post_init__(self) -> None:
        self.singular = self.singular or self.kind.lower()
        self.storage_api_version = self.storage_api_version or self.api_version

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def storage_key(self) -> GroupResource:
        return self.storage or self.group_resource

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def present(self, stored: dict[str, Any]) -> dict[str, Any]:
        """The stored object as this version serves it."""
        if stored.get("apiVersion") == self.api_version:
            return stored
        return self.strategy.convert(stored, self.api_version)

    def present_all(self, stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Stored objects as this version serves them (a list is converted in one request)."""
        if all(obj.get("apiVersion") == self.api_version for obj in stored):
            return stored
        return self.strategy.convert_all(stored, self.api_version)

    def to_storage(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("apiVersion") == self.storage_api_version:
            return obj
        return self.strategy.convert(obj, self.storage_api_version)


class ResourceRegistry:
    """Every served resource type, indexed by URL path, by kind and by storage."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._group_versions: dict[str, list[str]] = {}

    def register(self, rt: ResourceType) -> None:
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._by_kind[(rt.api_version, rt.kind)] = rt
        versions = self._group_versions.setdefault(rt.group, [])
        if rt.version not in versions:
            versions.append(rt.version)

    def unregister(self, rt: ResourceType) -> None:
        self._by_path.pop((rt.group, rt.version, rt.plural), None)
        self._by_kind.pop((rt.api_version, rt.kind), None)
        if not any(g == rt.group and v == rt.version for g, v, _ in self._by_path):
            versions = self._group_versions.get(rt.group, [])
            if rt.version in versions:
                versions.remove(rt.version)
            if not versions:
                self._group_versions.pop(rt.group, None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def for_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def for_storage(self, key: GroupResource) -> ResourceType:
        """The type serving ``key`` in its storage version (used by in-server controllers), or
        another version serving it when a CRD does not serve its storage version."""
        serving = [rt for rt in self._by_path.values() if rt.storage_key == key]
        for rt in serving:
            if rt.api_version == rt.storage_api_version:
                return rt
        if serving:
            return serving[0]
        raise KeyError(key)

    def custom_types(self, crd_name: str) -> list[ResourceType]:
        return [rt for rt in self._by_path.values() if rt.crd_name == crd_name]

    def storages(self, *, namespaced: bool) -> set[GroupResource]:
        return {rt.storage_key for rt in self._by_path.values() if rt.namespaced == namespaced}

    def groups(self) -> dict[str, list[str]]:
        """Group name to served versions, by Kubernetes version priority: preferred first."""
        return {
            group: sorted(versions, key=version_priority)
            for group, versions in self._group_versions.items()
        }

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for (g, v, _), rt in self._by_path.items() if g == group and v == version]


_KUBE_VERSION = re.compile(r"^v([1-9][0-9]*)(?:(alpha|beta)([1-9][0-9]*))?$")
_STABILITY = {None: 0, "beta": 1, "alpha": 2}


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key for ``version.CompareKubeAwareVersionStrings``, highest priority first: GA, then
    beta, then alpha (newer major, then newer minor, first), then other names alphabetically."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (3, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], -int(major), -int(minor or 0), "")
