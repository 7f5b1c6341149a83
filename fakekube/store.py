"""The object store: etcd's role in the apiserver.

Objects are stored per resource, per namespace, by name, and are never mutated once stored (every
write stores a new dict), so watch history and readers can share them safely. Every write takes
the next value of one global, monotonic resourceVersion. A bounded history of events per resource
serves watches that resume from a resourceVersion; older versions answer 410 Gone.

Only the event-loop thread touches a store.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .errors import GroupResource, StatusError
from .watch import ADDED, DELETED, MODIFIED, Watcher, WatchEvent

Listener = Callable[[GroupResource, WatchEvent], None]


class ObjectStore:
    def __init__(self, history_limit: int = 10_000):
        self.resource_version = 0
        self._history_limit = history_limit
        self._objects: dict[GroupResource, dict[str, dict[str, dict[str, Any]]]] = defaultdict(
            dict
        )
        self._locations: dict[
            str, tuple[GroupResource, str, str]
        ] = {}  # uid -> (storage, ns, name)
        self._dependents: dict[str, set[str]] = defaultdict(set)  # owner uid -> dependent uids
        self._history: dict[GroupResource, deque[WatchEvent]] = defaultdict(deque)
        # The oldest resourceVersion a watch may still resume from, per resource.
        self._history_floor: dict[GroupResource, int] = defaultdict(int)
        self._compacted = 0
        self._watchers: dict[GroupResource, set[Watcher]] = defaultdict(set)
        self._listeners: list[Listener] = []

    # Reads.

    def get(self, storage: GroupResource, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects[storage].get(namespace or "", {}).get(name)

    def locate(self, uid: str) -> tuple[GroupResource, dict[str, Any]] | None:
        where = self._locations.get(uid)
        if where is None:
            return None
        storage, namespace, name = where
        return storage, self._objects[storage][namespace][name]

    def list(self, storage: GroupResource, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects in key order (namespace, then name), as etcd returns them."""
        by_namespace = self._objects[storage]
        if namespace is not None:
            bucket = by_namespace.get(namespace, {})
            return [bucket[name] for name in sorted(bucket)]
        return [
            by_namespace[ns][name]
            for ns in sorted(by_namespace)
            for name in sorted(by_namespace[ns])
        ]

    def has_objects_in(self, storage: GroupResource, namespace: str) -> bool:
        return bool(self._objects[storage].get(namespace))

    def dependents(self, owner_uid: str) -> list[tuple[GroupResource, dict[str, Any]]]:
        found = (self.locate(uid) for uid in self._dependents.get(owner_uid, ()))
        return [item for item in found if item is not None]

    # Writes. Each takes ownership of the dict it is given.

    def create(self, storage: GroupResource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        self._stamp(obj)
        namespace = meta.get("namespace", "")
        self._objects[storage].setdefault(namespace, {})[meta["name"]] = obj
        self._locations[meta["uid"]] = (storage, namespace, meta["name"])
        self._index_owners(meta["uid"], (), meta.get("ownerReferences") or ())
        self._emit(storage, WatchEvent(ADDED, obj, None, self.resource_version))
        return obj

    def update(self, storage: GroupResource, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        bucket = self._objects[storage][meta.get("namespace", "")]
        previous = bucket[meta["name"]]
        self._stamp(obj)
        bucket[meta["name"]] = obj
        self._index_owners(
            meta["uid"],
            previous["metadata"].get("ownerReferences") or (),
            meta.get("ownerReferences") or (),
        )
        self._emit(storage, WatchEvent(MODIFIED, obj, previous, self.resource_version))
        return obj

    def delete(self, storage: GroupResource, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove ``obj``; returns its last state stamped with the deletion's resourceVersion."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        bucket = self._objects[storage][namespace]
        current = bucket.pop(meta["name"])
        if not bucket:
            del self._objects[storage][namespace]
        self._locations.pop(meta["uid"], None)
        self._index_owners(meta["uid"], current["metadata"].get("ownerReferences") or (), ())
        removed = {**current, "metadata": dict(current["metadata"])}
        self._stamp(removed)
        self._emit(storage, WatchEvent(DELETED, removed, current, self.resource_version))
        return removed

    def reshape(
        self, storage: GroupResource, transform: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> None:
        """Rewrite stored objects in place, without a new resourceVersion or events."""
        for bucket in self._objects[storage].values():
            for name, obj in bucket.items():
                bucket[name] = transform({**obj, "metadata": dict(obj["metadata"])})

    def _stamp(self, obj: dict[str, Any]) -> None:
        self.resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self.resource_version)

    def _index_owners(
        self, uid: str, before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]]
    ) -> None:
        old = {ref.get("uid") for ref in before}
        new = {ref.get("uid") for ref in after}
        for owner in old - new:
            self._dependents[owner].discard(uid)
            if not self._dependents[owner]:
                del self._dependents[owner]
        for owner in new - old:
            self._dependents[owner].add(uid)

    # Watches.

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` after every write (in-server controllers; they must not write inline)."""
        self._listeners.append(listener)

    def _emit(self, storage: GroupResource, event: WatchEvent) -> None:
        history = self._history[storage]
        history.append(event)
        if len(history) > self._history_limit:
            self._history_floor[storage] = history.popleft().resource_version
        unservable = []
        for watcher in self._watchers[storage]:
            try:
                watcher.offer(event)
            except StatusError:
                unservable.append(watcher)
        for watcher in unservable:
            # The event cannot be served in the watcher's version (a conversion webhook failed):
            # the apiserver ends such a watch; the write itself stands.
            self.remove_watcher(storage, watcher)
            watcher.close()
        for listener in self._listeners:
            listener(storage, event)

    def oldest_resumable(self, storage: GroupResource) -> int:
        return max(self._compacted, self._history_floor[storage])

    def events_after(self, storage: GroupResource, resource_version: int) -> Iterator[WatchEvent]:
        """History after ``resource_version``; raises 410 Gone if it is no longer retained."""
        oldest = self.oldest_resumable(storage)
        if resource_version < oldest:
            raise StatusError.too_old_resource_version(resource_version, oldest)
        newer: list[WatchEvent] = []
        for event in reversed(self._history[storage]):
            if event.resource_version <= resource_version:
                break
            newer.append(event)
        return reversed(newer)

    def add_watcher(self, storage: GroupResource, watcher: Watcher) -> None:
        self._watchers[storage].add(watcher)

    def remove_watcher(self, storage: GroupResource, watcher: Watcher) -> None:
        self._watchers[storage].discard(watcher)

    def close_watches(self, storage: GroupResource | None = None) -> None:
        """End open watches (all of them, or one resource's) cleanly."""
        groups = [storage] if storage is not None else list(self._watchers)
        for key in groups:
            for watcher in self._watchers.pop(key, set()):
                watcher.close()

    def compact(self) -> None:
        """Forget all history, like an etcd compaction at the current revision."""
        self._compacted = self.resource_version
        self._history.clear()
