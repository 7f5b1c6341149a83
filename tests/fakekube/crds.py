"""CustomResourceDefinitions and the custom resources they serve.

A CRD write registers one resource type per served version. As in apiextensions-apiserver, the
naming and establishing controllers then set ``NamesAccepted`` and ``Established`` in a status
write of their own, and deleting a CRD first deletes every custom resource it serves (the
``customresourcecleanup`` finalizer) before the CRD itself goes away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import FieldError, GroupResource, StatusError
from .meta import now
from .patch import ATOMIC, ListStrategy, clone
from .resources import ResourceType, Strategy
from .schema import Schema, apply_defaults, list_merge_key, prune, validate
from .watch import DELETED, WatchEvent

if TYPE_CHECKING:
    from .apiserver import ApiServer

CRD_GROUP = "apiextensions.k8s.io"
CRD_STORAGE = GroupResource(CRD_GROUP, "customresourcedefinitions")
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"

# Without additionalPrinterColumns a custom resource prints its age (apiextensions defaulting).
DEFAULT_PRINTER_COLUMNS = (
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)


def _metadata_list_strategy(path: tuple[str, ...]) -> ListStrategy | None:
    if path == ("metadata", "finalizers"):
        return ("set", None)
    if path == ("metadata", "ownerReferences"):
        return ("map", "uid")
    return None


def storage_version(crd: dict[str, Any]) -> str | None:
    return next((v["name"] for v in crd["spec"].get("versions") or () if v.get("storage")), None)


class CustomResourceDefinitionStrategy(Strategy):
    tracks_generation = True

    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        if path[-1:] == ("conditions",):
            return ("map", "type")
        return _metadata_list_strategy(path) or ATOMIC

    def default(self, obj: dict[str, Any]) -> None:
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if kind := names.get("kind"):
            names.setdefault("singular", kind.lower())
            names.setdefault("listKind", f"{kind}List")
        spec.setdefault("conversion", {"strategy": "None"})

    def prepare_for_create(self, obj: dict[str, Any]) -> None:
        obj["status"] = {"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []}
        if version := storage_version(obj):
            obj["status"]["storedVersions"] = [version]

    def finalizers_on_delete(self, obj: dict[str, Any]) -> list[str]:
        return [CLEANUP_FINALIZER]

    def prepare_for_delete(self, obj: dict[str, Any]) -> None:
        status = obj.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or () if c["type"] != "Terminating"]
        conditions.append(
            _condition(
                "Terminating",
                "True",
                "InstanceDeletionPending",
                "CustomResourceDefinition marked for deletion; "
                "CustomResource deletion will begin soon",
            )
        )
        status["conditions"] = conditions

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        group = spec.get("group", "")
        errors: list[FieldError] = []
        if not group:
            errors.append(FieldError.required("spec.group"))
        elif "." not in group:
            errors.append(
                FieldError.invalid("spec.group", group, "should be a domain with at least one dot")
            )
        for required in ("plural", "kind"):
            if not names.get(required):
                errors.append(FieldError.required(f"spec.names.{required}"))
        expected = f"{names.get('plural', '')}.{group}"
        if obj["metadata"].get("name") != expected:
            errors.append(
                FieldError.invalid(
                    "metadata.name",
                    obj["metadata"].get("name"),
                    'must be spec.names.plural+"."+spec.group',
                )
            )
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            errors.append(
                FieldError.not_supported(
                    "spec.scope", spec.get("scope"), ["Cluster", "Namespaced"]
                )
            )
        versions = spec.get("versions") or []
        if not versions:
            errors.append(
                FieldError.required(
                    "spec.versions", "must have exactly one version marked as storage version"
                )
            )
        elif sum(1 for v in versions if v.get("storage")) != 1:
            errors.append(
                FieldError.invalid(
                    "spec.versions",
                    versions,
                    "must have exactly one version marked as storage version",
                )
            )
        for index, version in enumerate(versions):
            if not (version.get("schema") or {}).get("openAPIV3Schema"):
                errors.append(
                    FieldError.required(
                        f"spec.versions[{index}].schema.openAPIV3Schema", "schemas are required"
                    )
                )
        if old is not None:
            for immutable in ("group", "scope"):
                if spec.get(immutable) != old["spec"].get(immutable):
                    errors.append(
                        FieldError.invalid(
                            f"spec.{immutable}", spec.get(immutable), "field is immutable"
                        )
                    )
        return errors


class CustomResourceStrategy(Strategy):
    """Custom resources: schema pruning, defaulting and validation; no strategic merge."""

    tracks_generation = True
    returns_deleted_object = True
    supports_strategic_merge = False

    def __init__(self, schema: Schema, has_status: bool):
        self.schema = schema
        self.has_status = has_status

    def default(self, obj: dict[str, Any]) -> None:
        prune(obj, self.schema, root=True)
        apply_defaults(obj, self.schema)

    def desired_state_changed(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        # Everything but metadata (and status, when it has its own endpoint) is desired state.
        ignored = {"metadata", "status"} if self.has_status else {"metadata"}
        return {k: v for k, v in new.items() if k not in ignored} != {
            k: v for k, v in old.items() if k not in ignored
        }

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        return validate(obj, self.schema)

    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        return _metadata_list_strategy(path) or list_merge_key(self.schema, path)


def custom_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One resource type per served version of ``crd``."""
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    stored = storage_version(crd)
    types = []
    for version in spec.get("versions") or ():
        if not version.get("served", True):
            continue
        schema = (version.get("schema") or {}).get("openAPIV3Schema") or {}
        has_status = "status" in (version.get("subresources") or {})
        columns = version.get("additionalPrinterColumns")
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope") == "Namespaced",
                strategy=CustomResourceStrategy(schema, has_status),
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status=has_status,
                storage_api_version=f"{group}/{stored}",
                printer_columns=tuple(columns) if columns else DEFAULT_PRINTER_COLUMNS,
                is_custom=True,
                crd_name=crd["metadata"]["name"],
            )
        )
    return types


def _condition(
    kind: str, status: str, reason: str, message: str, since: str | None = None
) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": since or now(),
        "reason": reason,
        "message": message,
    }


class CrdController:
    """Serves CRDs' resources, marks them established, and cleans up after deleted CRDs."""

    def __init__(self, api: ApiServer):
        self._api = api
        self._schemas: dict[str, Any] = {}
        self._terminating: dict[GroupResource, str] = {}

    def is_terminating(self, crd_name: str) -> bool:
        return crd_name in self._terminating.values()

    def sync(self, crd: dict[str, Any]) -> None:
        """Bring routing and status in line with ``crd`` (runs after every CRD write)."""
        name = crd["metadata"]["name"]
        if crd["metadata"].get("deletionTimestamp"):
            self._terminating[
                GroupResource(crd["spec"]["group"], crd["spec"]["names"]["plural"])
            ] = name
            self._api.defer(self._clean_up, name)
            return
        registry = self._api.resources
        for old in registry.custom_types(name):
            registry.unregister(old)
        types = custom_resource_types(crd)
        for rt in types:
            registry.register(rt)
        schemas = {
            rt.version: rt.strategy.schema
            for rt in types
            if isinstance(rt.strategy, CustomResourceStrategy)
        }
        if name in self._schemas and self._schemas[name] != schemas and types:
            # Defaults also apply when objects are read back from storage: re-default stored objects.
            stored = registry.for_storage(types[0].storage_key)
            self._api.store.reshape(stored.storage_key, lambda obj: _redefault(stored, obj))
        self._schemas[name] = schemas
        status = self._desired_status(crd)
        if status != crd.get("status"):
            crd_type = registry.for_storage(CRD_STORAGE)
            self._api.update(crd_type, None, name, {**crd, "status": status}, subresource="status")

    @staticmethod
    def _desired_status(crd: dict[str, Any]) -> dict[str, Any]:
        current = crd.get("status") or {}
        previous = {c["type"]: c for c in current.get("conditions") or ()}

        def keep(kind: str, reason: str, message: str) -> dict[str, Any]:
            old = previous.get(kind)
            since = old["lastTransitionTime"] if old and old.get("status") == "True" else None
            return _condition(kind, "True", reason, message, since)

        names = crd["spec"]["names"]
        stored = list(current.get("storedVersions") or ())
        if (version := storage_version(crd)) and version not in stored:
            stored.append(version)
        return {
            "acceptedNames": {
                k: names[k]
                for k in ("plural", "singular", "shortNames", "kind", "listKind", "categories")
                if k in names
            },
            "conditions": [
                keep("NamesAccepted", "NoConflicts", "no conflicts found"),
                keep(
                    "Established", "InitialNamesAccepted", "the initial names have been accepted"
                ),
            ],
            "storedVersions": stored,
        }

    def observe(self, storage: GroupResource, event: WatchEvent) -> None:
        if event.type == DELETED and storage in self._terminating:
            self._api.defer(self._clean_up, self._terminating[storage])

    def _clean_up(self, name: str) -> None:
        """The customresourcecleanup finalizer: delete every instance, then release the CRD."""
        crd = self._api.store.get(CRD_STORAGE, "", name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        storage = GroupResource(crd["spec"]["group"], crd["spec"]["names"]["plural"])
        types = self._api.resources.custom_types(name)
        if types:
            rt = self._api.resources.for_storage(storage)
            for obj in self._api.store.list(storage):
                if not obj["metadata"].get("deletionTimestamp"):
                    meta = obj["metadata"]
                    try:
                        self._api.delete(rt, meta.get("namespace"), meta["name"])
                    except StatusError:
                        pass  # already gone
        if self._api.store.list(storage):
            return  # instances with finalizers of their own: wait for their DELETED events
        self._api.store.close_watches(storage)
        for rt in types:
            self._api.resources.unregister(rt)
        self._terminating.pop(storage, None)
        self._schemas.pop(name, None)
        released = clone(crd)
        released["metadata"]["finalizers"] = [
            f for f in crd["metadata"].get("finalizers") or () if f != CLEANUP_FINALIZER
        ]
        self._api.update(self._api.resources.for_storage(CRD_STORAGE), None, name, released)


def _redefault(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    rt.strategy.default(obj)
    return obj
