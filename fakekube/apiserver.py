"""The generic registry: create, read, update, patch and delete with Kubernetes semantics.

``ApiServer`` is transport-free: the HTTP layer and the Python test helpers both call it, always on
the event-loop thread. Methods take and return objects in storage form (``ResourceType.present``
turns them into the version a client asked for) and raise ``StatusError`` for API failures.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from .authn import SERVICE_ACCOUNTS, Authenticator, UserInfo
from .builtins import builtin_resource_types
from .crds import CRD_STORAGE, CrdController
from .discovery import DEFAULT_KUBERNETES_VERSION
from .errors import FieldError, GroupResource, StatusError
from .fieldvalidation import FieldChecker, FieldValidation
from .gc import GarbageCollector
from .jobcontroller import JobController
from .kubelet import KubeletSettings, LocalKubelet
from .meta import OBJECT_META_FIELDS, SYSTEM_META_FIELDS, now, random_suffix
from .namespaces import NamespaceController
from .ownerrefs import OwnerReferencesPermissionEnforcement
from .patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    clone,
    json_patch,
    merge_patch,
    strategic_merge,
)
from .rbac import ALWAYS_ALLOW, Authorizer, bootstrap_policy
from .resources import (
    BACKGROUND,
    FOREGROUND,
    FOREGROUND_FINALIZER,
    ORPHAN,
    ORPHAN_FINALIZER,
    ResourceRegistry,
    ResourceType,
)
from .reviews import ReviewStrategy
from .selectors import FieldSelector, LabelSelector
from .store import ObjectStore
from .validation.decode import DecodeError, decode, has_schema
from .validation.decode_failures import PatchSource, decode_failure
from .validation.meta import object_meta, object_meta_update
from .validation.names import path_segment_name

NAMESPACES = GroupResource("", "namespaces")


BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# What each writable subresource may change: status, and a namespace's finalizers (in its spec).
SUBRESOURCE_FIELDS = {"status": "status", "finalize": "spec"}
# etcd's default --max-request-bytes; the apiserver passes etcd's refusal on as a plain error.
ETCD_MAX_REQUEST_BYTES = 1536 * 1024


class ApiServer:
    """``authorization`` is ``AlwaysAllow`` or ``RBAC``; ``enforce_owner_references`` (default:
    with RBAC) runs the OwnerReferencesPermissionEnforcement admission plugin.

    Writes take the requesting ``user``; None is the server itself (its controllers and the test
    helpers), which admission does not check, as it does not check kube-apiserver's loopback
    client.
    """

    def __init__(
        self,
        *,
        history_limit: int = 10_000,
        authorization: str = ALWAYS_ALLOW,
        enforce_owner_references: bool | None = None,
    ):
        self.resources = ResourceRegistry()
        # What /version reports: tests of version checks set an older one.
        self.kubernetes_version = DEFAULT_KUBERNETES_VERSION
        for rt in builtin_resource_types():
            self.resources.register(rt)
        self.store = ObjectStore(history_limit)
        #: Unknown and duplicate fields in what clients write (see ``fieldvalidation``).
        self.fields = FieldChecker()
        self.authorizer = Authorizer(authorization, self.store)
        self.authenticator = Authenticator(self._service_account_uid)
        if enforce_owner_references is None:
            enforce_owner_references = self.authorizer.enforcing
        self.owner_references = (
            OwnerReferencesPermissionEnforcement(self.authorizer, self.resources)
            if enforce_owner_references
            else None
        )
        self.crds = CrdController(self)
        self.gc = GarbageCollector(self)
        self.namespaces = NamespaceController(self)
        self.jobs = JobController(self)
        for controller in (self.crds, self.gc, self.namespaces, self.jobs):
            self.store.subscribe(controller.observe)
        #: Runs pods as local processes, once enabled (it needs the running event loop).
        self.kubelet: LocalKubelet | None = None
        namespace_type = self.resources.for_storage(NAMESPACES)
        for name in BOOTSTRAP_NAMESPACES:
            self.create(
                namespace_type,
                None,
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            )
        if self.authorizer.enforcing:
            for obj in bootstrap_policy():
                self.create(self.resource_for(obj["apiVersion"], obj["kind"]), None, obj)

    def _service_account_uid(self, namespace: str, name: str) -> str | None:
        account = self.store.get(SERVICE_ACCOUNTS, namespace, name)
        return account["metadata"]["uid"] if account else None

    def enable_kubelet(self, settings: KubeletSettings) -> LocalKubelet:
        if self.kubelet is None:
            self.kubelet = LocalKubelet(self, settings)
        return self.kubelet

    def pod_log(
        self,
        namespace: str,
        name: str,
        container: str | None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
    ) -> bytes:
        """The pods/log subresource; without a kubelet no container has written anything."""
        if self.kubelet is None:
            self.get(self.resources.for_storage(GroupResource("", "pods")), namespace, name)
            return b""
        return self.kubelet.log(namespace, name, container, tail_lines, limit_bytes)

    @staticmethod
    def defer(callback: Callable[..., Any], *args: Any) -> None:
        """Run in-server controller work soon, after the current request's writes."""
        asyncio.get_running_loop().call_soon(callback, *args)

    # Lookups.

    def resource_for(self, api_version: str, kind: str) -> ResourceType:
        rt = self.resources.for_kind(api_version, kind)
        if rt is None:
            group = api_version.rpartition("/")[0]
            raise StatusError(
                404,
                "NotFound",
                f'no matches for kind "{kind}" in version "{api_version}"',
                {"group": group, "kind": kind},
            )
        return rt

    def _get_or_404(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.storage_key, (namespace or "") if rt.namespaced else "", name)
        if obj is None:
            raise StatusError.not_found(rt.group_resource, name)
        return obj

    # Reads.

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return self._get_or_404(rt, namespace, name)

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector | None = None,
        fields: FieldSelector | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Matching objects and the resourceVersion the list is consistent with."""
        scope = namespace if rt.namespaced else None
        pinned = fields.names_exactly() if fields else None
        if pinned is not None and scope is not None:
            found = self.store.get(rt.storage_key, scope, pinned)
            candidates = [found] if found else []
        else:
            candidates = self.store.list(rt.storage_key, scope)
        items = [
            obj
            for obj in candidates
            if (labels is None or labels.matches(obj["metadata"].get("labels")))
            and (fields is None or fields.matches(rt.present(obj)))
        ]
        return items, self.store.resource_version

    # Writes.

    def _decode(
        self,
        rt: ResourceType,
        body: Any,
        patch: PatchSource | None = None,
    ) -> dict[str, Any]:
        """Check the body names this resource, decode it into the kind's type (built-in kinds),
        default it and convert it to the storage version. ``patch`` says how the body was made
        from a patch, for the error a body that does not decode gets. Unknown fields were
        reported and dropped before, as the request's ``fieldValidation`` asks (see
        ``fieldvalidation``); decoding drops any left."""
        if not isinstance(body, dict):
            raise StatusError.bad_request(f"the body of the request is not a {rt.kind} object")
        obj = clone(body)
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if rt.is_custom and not (api_version and kind):
            raise StatusError.bad_request("Object 'Kind' is missing in '" + str(body)[:200] + "'")
        if api_version and api_version != rt.api_version:
            raise StatusError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
            )
        if kind and kind != rt.kind:
            raise StatusError.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if not rt.is_custom and has_schema(rt.group, rt.version, rt.kind):
            obj = self._decode_typed(rt, obj, patch)
        meta = obj.get("metadata")
        obj["metadata"] = (
            {k: v for k, v in meta.items() if k in OBJECT_META_FIELDS}
            if isinstance(meta, dict)
            else {}
        )
        rt.strategy.default(obj)
        return rt.to_storage(obj)

    @staticmethod
    def _decode_typed(
        rt: ResourceType, obj: dict[str, Any], patch: PatchSource | None
    ) -> dict[str, Any]:
        try:
            decoded, _ = decode(rt.group, rt.version, rt.kind, obj)
        except DecodeError as error:
            raise decode_failure(rt, obj, str(error), patch) from None
        return decoded

    def _kind_errors(
        self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> list[FieldError]:
        """The kind's own validation (``strategy.Validate`` / ``ValidateUpdate``)."""
        errors: list[FieldError] = []
        if not rt.strategy.validates_metadata:
            errors = object_meta(
                obj["metadata"],
                namespaced=rt.namespaced,
                name_rule=rt.strategy.validate_name,
                kube_finalizers=False,
            )
            if old is not None:
                errors += object_meta_update(
                    obj["metadata"], old["metadata"], kube_finalizers=False
                )
        return errors + rt.strategy.validate(obj, old)

    @staticmethod
    def _common_meta_errors(rt: ResourceType, meta: dict[str, Any]) -> list[FieldError]:
        """What the generic registry checks of every kind: names usable as path segments."""
        return object_meta(
            meta, namespaced=rt.namespaced, name_rule=path_segment_name, kube_finalizers=False
        )

    @staticmethod
    def _check_stored_size(obj: dict[str, Any]) -> None:
        if len(msgspec.json.encode(obj)) > ETCD_MAX_REQUEST_BYTES:
            raise StatusError.unknown(500, "etcdserver: request is too large")

    def _invalid(
        self, rt: ResourceType, obj: dict[str, Any], errors: list[FieldError]
    ) -> StatusError:
        return StatusError.invalid(rt.group_kind, obj["metadata"].get("name", ""), errors)

    def _require_active_namespace(self, rt: ResourceType, namespace: str) -> None:
        found = self.store.get(NAMESPACES, "", namespace)
        if found is None:
            raise StatusError.not_found(NAMESPACES, namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise StatusError.forbidden(
                rt.group_resource,
                "",
                f"unable to create new content in namespace {namespace} because it is "
                f"being terminated",
            )

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool = False,
        user: UserInfo | None = None,
        patch: PatchSource | None = None,
    ) -> dict[str, Any]:
        obj = self._decode(rt, body, patch)
        meta = obj["metadata"]
        if rt.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            if meta.get("namespace", namespace) != namespace:
                raise StatusError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
            self._require_active_namespace(rt, namespace)
        else:
            meta.pop("namespace", None)
        if rt.crd_name and self.crds.is_terminating(rt.crd_name):
            raise StatusError(
                405,
                "MethodNotAllowed",
                "create not allowed while custom resource definition is terminating",
            )
        if meta.get("resourceVersion"):
            raise StatusError.internal(
                "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"][:58] + random_suffix()
        for system_field in (*SYSTEM_META_FIELDS, "managedFields", "selfLink"):
            meta.pop(system_field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if rt.strategy.tracks_generation:
            meta["generation"] = 1
        if rt.has_status:
            obj.pop("status", None)
        rt.strategy.prepare_for_create(obj)
        # As BeforeCreate: the kind's validation, and only when it passes the generic checks.
        errors = self._kind_errors(rt, obj, None)
        if errors:
            raise self._invalid(rt, obj, errors)
        errors = self._common_meta_errors(rt, meta)
        if errors:
            raise self._invalid(rt, obj, errors)
        self._admit(user, rt, None, obj, None)
        self._check_stored_size(obj)
        if self.store.get(rt.storage_key, meta.get("namespace", ""), meta["name"]) is not None:
            raise StatusError.already_exists(rt.group_resource, meta["name"])
        if dry_run:
            return obj
        stored = self.store.create(rt.storage_key, obj)
        self._after_write(rt, stored)
        return stored

    def review(
        self, rt: ResourceType, namespace: str | None, body: Any, user: UserInfo
    ) -> dict[str, Any]:
        """Create an access review (see ``reviews``): answered, never stored."""
        obj = self._decode(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace", namespace) != namespace:
                raise StatusError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        assert isinstance(rt.strategy, ReviewStrategy)
        return rt.strategy.review(self.authorizer, user, namespace, obj)

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        user: UserInfo | None = None,
    ) -> dict[str, Any]:
        old = self._get_or_404(rt, namespace, name)
        new = self._decode(rt, body)
        meta = new["metadata"]
        if meta.get("name", name) != name:
            raise StatusError.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace", namespace) != namespace:
            raise StatusError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return self._update(rt, old, new, subresource=subresource, dry_run=dry_run, user=user)

    def _admit(
        self,
        user: UserInfo | None,
        rt: ResourceType,
        subresource: str | None,
        new: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Validating admission, after the object passed validation and before it is stored."""
        if user is None or self.owner_references is None:
            return
        namespace = new["metadata"].get("namespace", "") if rt.namespaced else ""
        self.owner_references.validate(user, rt, subresource or "", namespace, new, old)

    def _update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        subresource: str | None,
        dry_run: bool,
        user: UserInfo | None = None,
    ) -> dict[str, Any]:
        meta, old_meta = new["metadata"], old["metadata"]
        name = old_meta["name"]
        requested_version = meta.get("resourceVersion")
        if requested_version and requested_version != old_meta["resourceVersion"]:
            raise StatusError.stale_update(rt.group_resource, name)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise StatusError.conflict(
                rt.group_resource,
                name,
                f"Precondition failed: UID in precondition: {meta['uid']}, "
                f"UID in object meta: {old_meta['uid']}",
            )
        if subresource in SUBRESOURCE_FIELDS:
            # A subresource endpoint changes its one field and nothing else.
            field = SUBRESOURCE_FIELDS[subresource]
            candidate = {k: v for k, v in old.items() if k != field}
            candidate["metadata"] = dict(old_meta)
            if field in new:
                candidate[field] = new[field]
        else:
            candidate = new
            for key in ("name", "namespace", *SYSTEM_META_FIELDS):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta.pop("managedFields", None)
            meta.pop("selfLink", None)
            if rt.has_status:
                candidate.pop("status", None)
                if "status" in old:
                    candidate["status"] = old["status"]
            rt.strategy.prepare_for_update(candidate, old)
            if rt.strategy.tracks_generation and rt.strategy.desired_state_changed(candidate, old):
                meta["generation"] = old_meta.get("generation", 1) + 1
        candidate["metadata"].pop("resourceVersion", None)
        # As BeforeUpdate: the generic checks of old against new, then the kind's validation
        # (a built-in kind's status subresource only gets the generic checks here).
        errors = self._common_meta_errors(rt, candidate["metadata"])
        errors += object_meta_update(candidate["metadata"], old_meta, kube_finalizers=False)
        if subresource is None or rt.is_custom:
            errors += self._kind_errors(rt, candidate, old)
        if errors:
            raise self._invalid(rt, candidate, errors)
        self._admit(user, rt, subresource, candidate, old)
        unchanged = {
            **old,
            "metadata": {k: v for k, v in old_meta.items() if k != "resourceVersion"},
        }
        if candidate == unchanged:
            return old  # a no-op write: no new resourceVersion, no event
        self._check_stored_size(candidate)
        if dry_run:
            # Nothing is written, so the object keeps the resourceVersion it has.
            candidate["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
            return candidate
        if candidate["metadata"].get("deletionTimestamp") and not rt.strategy.pending_finalization(
            candidate
        ):
            return self.store.delete(rt.storage_key, old)
        stored = self.store.update(rt.storage_key, candidate)
        self._after_write(rt, stored)
        return stored

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
        dry_run: bool = False,
        validation: FieldValidation | None = None,
        patch_problems: list[str] | None = None,
        user: UserInfo | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Apply a patch; returns the result and whether it created the object (apply only).

        With ``validation``, the patched object's unknown fields (after ``patch_problems``, what
        is wrong in the patch itself) are reported to it, then dropped.

        ``force`` is accepted for apply requests; field ownership is not tracked, so an apply never
        conflicts with another manager and there is nothing to force.
        """
        if patch_type == APPLY_PATCH:
            return self._apply(
                rt,
                namespace,
                name,
                patch,
                subresource=subresource,
                field_manager=field_manager,
                dry_run=dry_run,
                user=user,
            )
        old = self._get_or_404(rt, namespace, name)
        current = rt.present(old)
        if patch_type == MERGE_PATCH:
            if not isinstance(patch, dict):
                raise StatusError.bad_request("json: cannot unmarshal non-object into merge patch")
            patched = merge_patch(current, patch)
        elif patch_type == JSON_PATCH:
            patched = json_patch(current, patch)
        elif patch_type == STRATEGIC_MERGE_PATCH and rt.strategy.supports_strategic_merge:
            if not isinstance(patch, dict):
                raise StatusError.bad_request(
                    "json: cannot unmarshal non-object into strategic merge patch"
                )
            patched = strategic_merge(current, patch, rt.strategy.list_strategy)
        else:
            raise StatusError.unsupported_media_type(patch_type, self.patch_types(rt))
        if validation is not None:
            validation.report([*(patch_problems or ()), *self.fields.unknown_fields(rt, patched)])
            self.fields.drop_unknown(rt, patched)
        source = PatchSource(patch_type, patch, patched)
        return self._update(
            rt,
            old,
            self._decode(rt, patched, source),
            subresource=subresource,
            dry_run=dry_run,
            user=user,
        ), False

    @staticmethod
    def patch_types(rt: ResourceType) -> list[str]:
        types = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
        return types + [STRATEGIC_MERGE_PATCH] if rt.strategy.supports_strategic_merge else types

    def _apply(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        applied: Any,
        *,
        subresource: str | None,
        field_manager: str | None,
        dry_run: bool,
        user: UserInfo | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply: create when missing, else merge the applied configuration."""
        if not field_manager:
            raise StatusError.bad_request(
                "PATCH, application/apply-patch+yaml requests must include fieldManager in the query string"
            )
        if not isinstance(applied, dict):
            raise StatusError.bad_request("apply patch must be an object")
        for key, expected in (("apiVersion", rt.api_version), ("kind", rt.kind)):
            if applied.get(key) != expected:
                raise StatusError.bad_request(
                    f"{key} must be set to {expected!r} in an apply configuration"
                )
        applied_name = (applied.get("metadata") or {}).get("name")
        if applied_name != name:
            raise StatusError.bad_request(
                f"the name of the object ({applied_name}) does not match the name on the URL ({name})"
            )
        old = self.store.get(rt.storage_key, (namespace or "") if rt.namespaced else "", name)
        if old is None:
            if subresource:
                raise StatusError.not_found(rt.group_resource, name)
            return self.create(
                rt,
                namespace,
                applied,
                dry_run=dry_run,
                user=user,
                patch=PatchSource(APPLY_PATCH, applied, applied),
            ), True
        merged = strategic_merge(rt.present(old), applied, rt.strategy.list_strategy)
        source = PatchSource(APPLY_PATCH, applied, merged)
        return self._update(
            rt,
            old,
            self._decode(rt, merged, source),
            subresource=subresource,
            dry_run=dry_run,
            user=user,
        ), False

    def bind_pod(self, namespace: str, name: str, node_name: str) -> dict[str, Any]:
        """The ``pods/binding`` subresource: how a scheduler assigns a pod to a node (an update
        may not change ``spec.nodeName``)."""
        rt = self.resources.for_storage(GroupResource("", "pods"))
        old = self._get_or_404(rt, namespace, name)
        assigned = old["spec"].get("nodeName")
        if assigned:
            raise StatusError.conflict(
                GroupResource("", "pods/binding"),
                name,
                f'pod {name} is already assigned to node "{assigned}"',
            )
        bound = clone(old)
        bound["spec"]["nodeName"] = node_name
        stored = self.store.update(rt.storage_key, bound)
        self._after_write(rt, stored)
        return stored

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete or start deleting; returns the object and whether it is gone already."""
        old = self._get_or_404(rt, namespace, name)
        meta = old["metadata"]
        preconditions = preconditions or {}
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            if preconditions.get(key) and preconditions[key] != meta.get(key):
                raise StatusError.conflict(
                    rt.group_resource,
                    name,
                    f"Precondition failed: {label} in precondition: {preconditions[key]}, "
                    f"{label} in object meta: {meta.get(key)}",
                )
        policy = propagation or rt.strategy.default_propagation
        if policy not in (BACKGROUND, FOREGROUND, ORPHAN):
            raise StatusError.bad_request(f"unsupported propagationPolicy {policy!r}")
        if meta.get("deletionTimestamp"):
            return old, False  # already being deleted
        finalizers = [
            f
            for f in meta.get("finalizers") or ()
            if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)
        ]
        if policy == ORPHAN:
            finalizers.append(ORPHAN_FINALIZER)
        elif policy == FOREGROUND:
            finalizers.append(FOREGROUND_FINALIZER)
        finalizers += [f for f in rt.strategy.finalizers_on_delete(old) if f not in finalizers]
        deleting = {
            **old,
            "metadata": {
                **meta,
                "deletionTimestamp": now(),
                "deletionGracePeriodSeconds": 0,
                "finalizers": finalizers,
            },
        }
        if not finalizers:
            del deleting["metadata"]["finalizers"]
        if rt.strategy.pending_finalization(deleting):
            rt.strategy.prepare_for_delete(deleting)
            if dry_run:
                return deleting, False
            stored = self.store.update(rt.storage_key, deleting)
            self._after_write(rt, stored)
            return stored, False
        if dry_run:
            return old, True
        return self.store.delete(rt.storage_key, old), True

    def _after_write(self, rt: ResourceType, stored: dict[str, Any]) -> None:
        # CRDs are established synchronously so their resources are served as soon as the
        # create returns; the status write still comes as a separate MODIFIED event.
        if rt.storage_key == CRD_STORAGE:
            self.crds.sync(stored)
