"""CustomResourceDefinitions and the custom resources they serve.

A CRD write registers one resource type per served version. As in apiextensions-apiserver, the
naming and establishing controllers then set ``NamesAccepted`` and ``Established`` in a status
write of their own, and deleting a CRD first deletes every custom resource it serves (the
``customresourcecleanup`` finalizer) before the CRD itself goes away.

Objects are stored in the storage version they were written in. A request names its version in
the URL: what it writes is pruned, defaulted and validated (schema and CEL rules) against that
version's schema, then converted to the storage version; what it reads is converted back, and
pruned against the requested schema, as the apiserver does with every conversion's output.
Conversion follows ``spec.conversion`` (``None``, or a webhook: see ``conversion``). A deprecated
version answers every request with a ``Warning`` header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .cel import CelValidator
from .celschema import schema_rule_errors
from .conversion import (
    REVIEW_VERSIONS,
    Converter,
    NoneConverter,
    WebhookClient,
    WebhookConverter,
    WebhookEndpoint,
    conversion_failure,
)
from .errors import FieldError, GroupResource, StatusError
from .meta import now
from .patch import ATOMIC, ListStrategy, clone
from .resources import ResourceType, Strategy, version_priority
from .schema import Schema, apply_defaults, list_merge_key, prune, validate
from .structural import metadata_errors
from .validation.names import is_dns1035_label
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
        conversion = spec.setdefault("conversion", {"strategy": "None"})
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)

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
        errors += _conversion_errors(spec.get("conversion") or {})
        errors += _schema_errors(versions, old)
        if old is not None:
            for immutable in ("group", "scope"):
                if spec.get(immutable) != old["spec"].get(immutable):
                    errors.append(
                        FieldError.invalid(
                            f"spec.{immutable}", spec.get(immutable), "field is immutable"
                        )
                    )
        return errors


def _conversion_errors(conversion: dict[str, Any]) -> list[FieldError]:
    """``validateCustomResourceConversion``; fields are named as in the internal API."""
    path = "spec.conversion"
    strategy = conversion.get("strategy")
    webhook = conversion.get("webhook") or {}
    client_config, review_versions = (
        webhook.get("clientConfig"),
        webhook.get("conversionReviewVersions"),
    )
    if strategy not in ("None", "Webhook"):
        return [FieldError.not_supported(f"{path}.strategy", strategy, ["None", "Webhook"])]
    if strategy == "None":
        return [
            FieldError.forbidden(
                f"{path}.{name}", "should not be set when strategy is not set to Webhook"
            )
            for name, value in (
                ("webhookClientConfig", client_config),
                ("conversionReviewVersions", review_versions),
            )
            if value
        ]
    errors: list[FieldError] = []
    config_path = f"{path}.webhookClientConfig"
    if not isinstance(client_config, dict):
        errors.append(FieldError.required(config_path, "required when strategy is set to Webhook"))
    elif ("url" in client_config) == ("service" in client_config):
        errors.append(
            FieldError.required(config_path, "exactly one of url or service is required")
        )
    elif "url" in client_config:
        errors += _webhook_url_errors(f"{config_path}.url", client_config["url"])
    else:
        errors += _webhook_service_errors(f"{config_path}.service", client_config["service"])
    errors += _review_version_errors(f"{path}.conversionReviewVersions", review_versions or [])
    return errors


def _webhook_url_errors(path: str, url: str) -> list[FieldError]:
    form = "; desired format: https://host[/path]"
    parts = urlsplit(url)
    checks = (
        (parts.scheme != "https", parts.scheme, "'https' is the only allowed URL scheme" + form),
        (not parts.netloc, parts.netloc, "host must be specified" + form),
        (
            "@" in parts.netloc,
            parts.netloc.rpartition("@")[0],
            "user information is not permitted in the URL",
        ),
        (bool(parts.fragment), parts.fragment, "fragments are not permitted in the URL"),
        (bool(parts.query), parts.query, "query parameters are not permitted in the URL"),
    )
    return [FieldError.invalid(path, value, detail) for failed, value, detail in checks if failed]


def _webhook_service_errors(path: str, service: dict[str, Any]) -> list[FieldError]:
    errors = [
        FieldError.required(f"{path}.{key}", f"service {key} is required")
        for key in ("name", "namespace")
        if not service.get(key)
    ]
    port = service.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append(
            FieldError.invalid(
                f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"
            )
        )
    url_path = service.get("path")
    if url_path and url_path != "/" and not url_path.startswith("/"):
        errors.append(FieldError.invalid(f"{path}.path", url_path, "must start with a '/'"))
    return errors


def _review_version_errors(path: str, versions: list[str]) -> list[FieldError]:
    if not versions:
        return [FieldError.required(path)]
    errors = []
    for index, version in enumerate(versions):
        if version in versions[:index]:
            errors.append(FieldError.invalid(f"{path}[{index}]", version, "duplicate version"))
        errors += [
            FieldError.invalid(f"{path}[{index}]", version, p) for p in is_dns1035_label(version)
        ]
    if not set(versions) & set(REVIEW_VERSIONS):
        errors.append(
            FieldError.invalid(path, versions, "must include at least one of v1, v1beta1")
        )
    return errors


def _schema_errors(versions: list[dict[str, Any]], old: dict[str, Any] | None) -> list[FieldError]:
    """Metadata and CEL rule problems, named as the apiserver names them: identical per-version
    schemas are hoisted to ``spec.validation`` in the internal API, so errors name that path
    instead. On update, a version keeping its schema is spared the per-expression cost budget."""
    schemas = [(v.get("schema") or {}).get("openAPIV3Schema") or {} for v in versions]
    previous = _schemas_by_version(old) if old is not None else {}
    unchanged = [
        v.get("name") in previous and previous[v.get("name")] == schema
        for v, schema in zip(versions, schemas)
    ]
    if schemas and all(schema == schemas[0] for schema in schemas):
        return _one_schema_errors(schemas[0], "spec.validation.openAPIV3Schema", unchanged[0])
    return [
        error
        for index, schema in enumerate(schemas)
        for error in _one_schema_errors(
            schema, f"spec.versions[{index}].schema.openAPIV3Schema", unchanged[index]
        )
    ]


def _one_schema_errors(schema: dict[str, Any], path: str, unchanged: bool) -> list[FieldError]:
    # As in the apiserver, CEL rules are only checked in a structurally valid schema.
    return metadata_errors(schema, path) or schema_rule_errors(schema, path, unchanged=unchanged)


def _schemas_by_version(crd: dict[str, Any]) -> dict[Any, Any]:
    return {
        v.get("name"): (v.get("schema") or {}).get("openAPIV3Schema")
        for v in (crd.get("spec") or {}).get("versions") or ()
    }


class CustomResourceVersions:
    """One CRD's versions: their schemas and CEL rules, and how objects move between them."""

    def __init__(self, crd: dict[str, Any], webhooks: WebhookClient):
        spec = crd["spec"]
        self.group = spec["group"]
        self.storage_api_version = f"{self.group}/{storage_version(crd)}"
        self.schemas: dict[str, Schema] = {
            version["name"]: (version.get("schema") or {}).get("openAPIV3Schema") or {}
            for version in spec.get("versions") or ()
        }
        self.rules = {
            name: CelValidator.for_schema(schema) for name, schema in self.schemas.items()
        }
        self._converter = _converter(spec.get("conversion") or {}, webhooks)

    def version_of(self, obj: dict[str, Any]) -> str:
        return obj["apiVersion"].rpartition("/")[2]

    def default(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Prune and default ``obj`` against the schema of its own version. In place."""
        schema = self.schemas.get(self.version_of(obj))
        if schema is not None:
            prune(obj, schema, root=True)
            apply_defaults(obj, schema)
        return obj

    def convert(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        """``objects`` in ``api_version``; only those in another version go to the converter."""
        for obj in objects:
            if self.version_of(obj) not in self.schemas:
                raise conversion_failure(
                    f"request to convert CR from an invalid group/version: {obj['apiVersion']}"
                )
        pending = [obj for obj in objects if obj["apiVersion"] != api_version]
        if not pending:
            return objects
        converted = iter(self._converter.convert(pending, api_version))
        return [
            obj if obj["apiVersion"] == api_version else self._coerce(next(converted))
            for obj in objects
        ]

    def _coerce(self, converted: dict[str, Any]) -> dict[str, Any]:
        """The apiserver prunes whatever a conversion returns against the target version's
        schema. Stored objects also get their version's defaults, which the apiserver applies on
        every read from storage."""
        schema = self.schemas[self.version_of(converted)]
        prune(converted, schema, root=True)
        if converted["apiVersion"] == self.storage_api_version:
            apply_defaults(converted, schema)
        return converted


def _converter(conversion: dict[str, Any], webhooks: WebhookClient) -> Converter:
    if conversion.get("strategy") != "Webhook":
        return NoneConverter()
    webhook = conversion["webhook"]
    return WebhookConverter(
        webhooks,
        WebhookEndpoint.from_client_config(webhook["clientConfig"]),
        webhook["conversionReviewVersions"],
    )


class CustomResourceStrategy(Strategy):
    """One served version of a custom resource: its schema's pruning, defaulting and validation;
    no strategic merge."""

    tracks_generation = True
    returns_deleted_object = True
    supports_strategic_merge = False

    def __init__(self, version: str, versions: CustomResourceVersions, has_status: bool):
        self.api_version = f"{versions.group}/{version}"
        self.versions = versions
        self.schema = versions.schemas[version]
        self.rules = versions.rules[version]
        self.has_status = has_status

    def default(self, obj: dict[str, Any]) -> None:
        self.versions.default(obj)

    def desired_state_changed(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        # Everything but metadata (and status, when it has its own endpoint) is desired state.
        ignored = {"metadata", "status"} if self.has_status else {"metadata"}
        return {k: v for k, v in new.items() if k not in ignored} != {
            k: v for k, v in old.items() if k not in ignored
        }

    def validate(self, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
        # The registry hands over objects in storage form, but validation is in the requested
        # version, so they go back to it. (The apiserver validates the request before converting
        # it; the two differ only where a conversion loses fields.)
        obj = self.convert(obj, self.api_version)
        errors = validate(obj, self.schema)
        if self.rules is not None:
            previous = self.convert(old, self.api_version) if old is not None else None
            errors += self.rules.validate(obj, previous, errors)
        return errors

    def convert(self, obj: dict[str, Any], api_version: str) -> dict[str, Any]:
        return self.versions.convert([obj], api_version)[0]

    def convert_all(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        return self.versions.convert(objects, api_version)

    def list_strategy(self, path: tuple[str, ...]) -> ListStrategy:
        return _metadata_list_strategy(path) or list_merge_key(self.schema, path)


def _deprecation_warning(crd_spec: dict[str, Any], version: dict[str, Any]) -> str | None:
    """The warning a deprecated version sends: its own, or ``defaultDeprecationWarning``'s."""
    if not version.get("deprecated"):
        return None
    if version.get("deprecationWarning") is not None:
        return version["deprecationWarning"]
    group, kind, name = crd_spec["group"], crd_spec["names"]["kind"], version["name"]
    newer = sorted(
        (
            v["name"]
            for v in crd_spec["versions"]
            if v.get("served")
            and not v.get("deprecated")
            and version_priority(v["name"]) < version_priority(name)
        ),
        key=version_priority,
    )
    warning = f"{group}/{name} {kind} is deprecated"
    return f"{warning}; use {group}/{newer[0]} {kind}" if newer else warning


def custom_resource_types(
    crd: dict[str, Any], versions: CustomResourceVersions
) -> list[ResourceType]:
    """One resource type per served version of ``crd``."""
    spec = crd["spec"]
    names = spec["names"]
    group = spec["group"]
    stored = storage_version(crd)
    types = []
    for version in spec.get("versions") or ():
        if not version.get("served", True):
            continue
        has_status = "status" in (version.get("subresources") or {})
        columns = version.get("additionalPrinterColumns")
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope") == "Namespaced",
                strategy=CustomResourceStrategy(version["name"], versions, has_status),
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status=has_status,
                storage_api_version=f"{group}/{stored}",
                printer_columns=tuple(columns) if columns else DEFAULT_PRINTER_COLUMNS,
                is_custom=True,
                crd_name=crd["metadata"]["name"],
                deprecation_warning=_deprecation_warning(spec, version),
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
        #: How conversion webhooks are reached (tests set its ``service_resolver``).
        self.webhooks = WebhookClient()
        self._schemas: dict[str, dict[str, Schema]] = {}
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
        versions = CustomResourceVersions(crd, self.webhooks)
        for rt in custom_resource_types(crd, versions):
            registry.register(rt)
        if name in self._schemas and self._schemas[name] != versions.schemas:
            # Defaults also apply when objects are read back from storage (each in its own
            # version's schema): re-default stored objects.
            storage = GroupResource(crd["spec"]["group"], crd["spec"]["names"]["plural"])
            self._api.store.reshape(storage, versions.default)
        self._schemas[name] = versions.schemas
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
