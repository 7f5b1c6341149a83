"""The garbage collector: kube-controller-manager's ownerReference machinery.

* A dependent whose owners (matched by uid) are all gone is deleted in the background; deleting it
  in turn makes its own dependents eligible, so deletion cascades through any number of levels.
* A dependent that still has a live owner only loses its references to owners that are gone.
* An owner deleted with ``propagationPolicy=Orphan`` carries the ``orphan`` finalizer until its
  dependents no longer reference it.
* An owner deleted with ``Foreground`` carries ``foregroundDeletion`` until every dependent that
  references it with ``blockOwnerDeletion: true`` is gone; its dependents are deleted meanwhile.

Work is queued by store events and done in a later loop iteration: asynchronously, but promptly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GroupResource, StatusError
from .patch import clone
from .resources import BACKGROUND, FOREGROUND, FOREGROUND_FINALIZER, ORPHAN, ORPHAN_FINALIZER
from .watch import DELETED, WatchEvent

if TYPE_CHECKING:
    from .apiserver import ApiServer


class GarbageCollector:
    def __init__(self, api: ApiServer):
        self._api = api
        self._dependents_to_check: set[str] = set()
        self._owners_to_finalize: set[str] = set()
        self._scheduled = False

    def observe(self, storage: GroupResource, event: WatchEvent) -> None:
        meta = event.object["metadata"]
        if event.type == DELETED:
            self._dependents_to_check.update(
                dependent["metadata"]["uid"]
                for _, dependent in self._api.store.dependents(meta["uid"])
            )
            # A foreground-deleting owner may be waiting for exactly this dependent.
            self._owners_to_finalize.update(
                ref["uid"] for ref in meta.get("ownerReferences") or ()
            )
        else:
            refs = meta.get("ownerReferences")
            previous_refs = (
                event.previous["metadata"].get("ownerReferences") if event.previous else None
            )
            if refs and refs != previous_refs:
                self._dependents_to_check.add(meta["uid"])
            if meta.get("deletionTimestamp") and {ORPHAN_FINALIZER, FOREGROUND_FINALIZER} & set(
                meta.get("finalizers") or ()
            ):
                self._owners_to_finalize.add(meta["uid"])
        if (self._dependents_to_check or self._owners_to_finalize) and not self._scheduled:
            self._scheduled = True
            self._api.defer(self._run)

    def _run(self) -> None:
        self._scheduled = False
        while self._owners_to_finalize or self._dependents_to_check:
            if self._owners_to_finalize:
                self._finalize_owner(self._owners_to_finalize.pop())
            else:
                self._check_dependent(self._dependents_to_check.pop())

    def _owner_state(self, dependent: dict[str, Any], ref: dict[str, Any]) -> str:
        """ "absent", "waiting" (foreground-deleting) or "solid", as the real collector classifies owners."""
        found = self._api.store.locate(ref.get("uid", ""))
        if found is None:
            return "absent"
        owner = found[1]["metadata"]
        # A namespaced owner must live in the dependent's namespace.
        if owner.get("namespace") and owner["namespace"] != dependent["metadata"].get("namespace"):
            return "absent"
        if owner.get("deletionTimestamp") and FOREGROUND_FINALIZER in (
            owner.get("finalizers") or ()
        ):
            return "waiting"
        return "solid"

    def _check_dependent(self, uid: str) -> None:
        found = self._api.store.locate(uid)
        if found is None:
            return
        storage, obj = found
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        if not refs or meta.get("deletionTimestamp"):
            return
        states = [self._owner_state(obj, ref) for ref in refs]
        rt = self._api.resources.for_storage(storage)
        if "solid" in states:
            kept = [ref for ref, state in zip(refs, states) if state == "solid"]
            if len(kept) != len(refs):
                self._set_metadata(storage, obj, "ownerReferences", kept)
            return
        finalizers = meta.get("finalizers") or ()
        if "waiting" in states or FOREGROUND_FINALIZER in finalizers:
            policy = FOREGROUND
        elif ORPHAN_FINALIZER in finalizers:
            policy = ORPHAN
        else:
            policy = BACKGROUND
        try:
            self._api.delete(rt, meta.get("namespace"), meta["name"], propagation=policy)
        except StatusError:
            pass  # deleted meanwhile

    def _finalize_owner(self, uid: str) -> None:
        found = self._api.store.locate(uid)
        if found is None:
            return
        storage, owner = found
        finalizers = owner["metadata"].get("finalizers") or ()
        if not owner["metadata"].get("deletionTimestamp"):
            return
        dependents = self._api.store.dependents(uid)
        if ORPHAN_FINALIZER in finalizers:
            for dependent_storage, dependent in dependents:
                refs = [
                    r
                    for r in dependent["metadata"].get("ownerReferences") or ()
                    if r.get("uid") != uid
                ]
                self._set_metadata(dependent_storage, dependent, "ownerReferences", refs)
            self._remove_finalizer(storage, owner, ORPHAN_FINALIZER)
        elif FOREGROUND_FINALIZER in finalizers:
            blocking = False
            for _, dependent in dependents:
                ref = next(
                    r for r in dependent["metadata"]["ownerReferences"] if r.get("uid") == uid
                )
                blocking = blocking or bool(ref.get("blockOwnerDeletion"))
                self._dependents_to_check.add(dependent["metadata"]["uid"])
            if not blocking:
                self._remove_finalizer(storage, owner, FOREGROUND_FINALIZER)

    def _remove_finalizer(
        self, storage: GroupResource, obj: dict[str, Any], finalizer: str
    ) -> None:
        remaining = [f for f in obj["metadata"].get("finalizers") or () if f != finalizer]
        self._set_metadata(storage, obj, "finalizers", remaining)

    def _set_metadata(
        self, storage: GroupResource, obj: dict[str, Any], key: str, value: list[Any]
    ) -> None:
        """Update one metadata list through the API (an empty list removes the field)."""
        updated = clone(obj)
        meta = updated["metadata"]
        if value:
            meta[key] = value
        else:
            meta.pop(key, None)
        try:
            self._api.update(
                self._api.resources.for_storage(storage),
                meta.get("namespace"),
                meta["name"],
                updated,
            )
        except StatusError:
            pass  # changed or deleted meanwhile; the resulting event queues another look
