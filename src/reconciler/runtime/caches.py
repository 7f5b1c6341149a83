"""The operator's view of the cluster: LocustTests and the Services, Jobs and pods it made."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from lightkube import AsyncClient
from lightkube.core.client import LabelSelector
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod, Service

from ..api.naming import ObjectKey
from ..api.types import LocustTestV2
from ..controller import TestKey
from ..resources.labels import MANAGED_BY
from .informer import Informer


class Caches:
    """The operator's view of the cluster: LocustTests and the Services, Jobs and pods it made.

    Children are cached only through the operator's own `managed-by` label, and every change to
    one wakes the test that owns it, so phases follow Job and pod events rather than polling.
    """

    def __init__(
        self, client: AsyncClient, namespaces: tuple[str, ...], wake: Callable[[TestKey], None]
    ):
        self._wake = wake
        self._pods_by_job: dict[ObjectKey, dict[ObjectKey, dict[str, Any]]] = defaultdict(dict)
        scopes = namespaces or (None,)
        selector: LabelSelector = {MANAGED_BY[0]: MANAGED_BY[1]}
        self.tests = [
            Informer(client, LocustTestV2, self._test_changed, namespace=ns) for ns in scopes
        ]
        self.services = [
            Informer(
                client,
                Service,
                self._child_changed,
                namespace=ns,
                labels=selector,
                transform=_metadata_only,
            )
            for ns in scopes
        ]
        self.jobs = [
            Informer(
                client,
                Job,
                self._child_changed,
                namespace=ns,
                labels=selector,
                transform=_metadata_and_status,
            )
            for ns in scopes
        ]
        self.pods_informers = [
            Informer(
                client,
                Pod,
                self._pod_changed,
                namespace=ns,
                labels=selector,
                transform=_pod_essentials,
            )
            for ns in scopes
        ]

    @property
    def child_informers(self) -> list[Informer]:
        return [*self.services, *self.jobs, *self.pods_informers]

    @property
    def informers(self) -> list[Informer]:
        return [*self.tests, *self.child_informers]

    def all_tests(self) -> list[dict[str, Any]]:
        return [test for informer in self.tests for test in informer.cache.values()]

    def test(self, key: TestKey) -> dict[str, Any] | None:
        return _lookup(self.tests, key)

    def service(self, key: ObjectKey) -> dict[str, Any] | None:
        return _lookup(self.services, key)

    def job(self, key: ObjectKey) -> dict[str, Any] | None:
        return _lookup(self.jobs, key)

    def pods(self, namespace: str, job_names: Sequence[str]) -> list[dict[str, Any]]:
        return [
            pod
            for job in job_names
            for pod in self._pods_by_job.get(ObjectKey(namespace, job), {}).values()
        ]

    def _test_changed(
        self, key: ObjectKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        # Deletions need no work (garbage collection removes the children), and our own status
        # writes do not change what the test asks for: only new tests and new generations count.
        if new is None:
            return
        if old is None or old["metadata"].get("generation") != new["metadata"].get("generation"):
            self._wake(TestKey(*key))

    def _child_changed(
        self, key: ObjectKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        owner = _test_owner(new or old)
        if owner:
            self._wake(TestKey(key.namespace, owner))

    def _pod_changed(
        self, key: ObjectKey, old: dict[str, Any] | None, new: dict[str, Any] | None
    ) -> None:
        pod = new or old
        job = _pod_job(pod) if pod else None
        if job is None:
            return
        job_key = ObjectKey(key.namespace, job)
        if new is None:
            self._pods_by_job[job_key].pop(key, None)
            if not self._pods_by_job[job_key]:
                del self._pods_by_job[job_key]
        else:
            self._pods_by_job[job_key][key] = new
        owner = _test_owner(self.job(job_key))
        if owner:
            self._wake(TestKey(key.namespace, owner))


# The caches keep only what the controller reads: a test can have hundreds of pods, and a Job's
# pod template is most of its size.


def _metadata_only(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = dict(obj["metadata"])
    metadata.pop("managedFields", None)
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": metadata}


def _metadata_and_status(obj: dict[str, Any]) -> dict[str, Any]:
    return {**_metadata_only(obj), "status": obj.get("status") or {}}


def _pod_essentials(obj: dict[str, Any]) -> dict[str, Any]:
    sidecars = [
        {"name": c["name"], "restartPolicy": c.get("restartPolicy")}
        for c in (obj.get("spec") or {}).get("initContainers") or ()
    ]
    return {**_metadata_and_status(obj), "spec": {"initContainers": sidecars}}


def _lookup(informers: list[Informer], key: ObjectKey) -> dict[str, Any] | None:
    for informer in informers:
        found = informer.cache.get(key)
        if found is not None:
            return found
    return None


def _test_owner(obj: dict[str, Any] | None) -> str | None:
    for owner in ((obj or {}).get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("controller") and owner.get("kind") == "LocustTest":
            return owner.get("name")
    return None


def _pod_job(pod: dict[str, Any]) -> str | None:
    for owner in (pod.get("metadata") or {}).get("ownerReferences") or ():
        if owner.get("controller") and owner.get("kind") == "Job":
            return owner.get("name")
    return None
