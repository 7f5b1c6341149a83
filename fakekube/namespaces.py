"""The namespace controller: a deleted namespace empties itself, then goes away.

Deleting a namespace marks it ``Terminating``; this controller deletes everything in it and, once
nothing is left (objects with finalizers may take a while), clears the ``kubernetes`` finalizer
so the namespace is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import GroupResource, StatusError
from .patch import clone
from .watch import DELETED, WatchEvent

if TYPE_CHECKING:
    from .apiserver import ApiServer

NAMESPACES = GroupResource("", "namespaces")


class NamespaceController:
    def __init__(self, api: ApiServer):
        self._api = api
        self._terminating: set[str] = set()

    def observe(self, storage: GroupResource, event: WatchEvent) -> None:
        meta = event.object["metadata"]
        if storage == NAMESPACES:
            if event.type == DELETED:
                self._terminating.discard(meta["name"])
            elif meta.get("deletionTimestamp") and meta["name"] not in self._terminating:
                self._terminating.add(meta["name"])
                self._api.defer(self._finalize, meta["name"])
        elif event.type == DELETED and meta.get("namespace") in self._terminating:
            self._api.defer(self._finalize, meta["namespace"])

    def _finalize(self, name: str) -> None:
        namespace = self._api.store.get(NAMESPACES, "", name)
        if namespace is None or name not in self._terminating:
            return
        storages = self._api.resources.storages(namespaced=True)
        for storage in storages:
            rt = self._api.resources.for_storage(storage)
            for obj in self._api.store.list(storage, name):
                if not obj["metadata"].get("deletionTimestamp"):
                    try:
                        self._api.delete(rt, name, obj["metadata"]["name"])
                    except StatusError:
                        pass  # gone meanwhile
        if any(self._api.store.has_objects_in(storage, name) for storage in storages):
            return  # wait for objects held by finalizers
        finalized = clone(namespace)
        finalized["spec"]["finalizers"] = []
        self._api.update(
            self._api.resources.for_storage(NAMESPACES),
            None,
            name,
            finalized,
            subresource="finalize",
        )
