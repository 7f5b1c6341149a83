"""A Job controller that tests drive step by step (or that runs by itself with ``auto``).

It follows the Job docs for non-indexed Jobs: pods are made from the template and owned by the Job;
``status.active/succeeded/failed`` count them by phase and ``status.ready`` counts the active
ones whose ``Ready`` condition is True (a pod can run before it is ready); more failures than ``backoffLimit`` fail the
Job (``FailureTarget`` then ``Failed``, reason ``BackoffLimitExceeded``, remaining pods deleted);
enough successes complete it (``SuccessCriteriaMet`` then ``Complete``, with ``completionTime``).
With ``completions`` unset (the work-queue pattern) the Job completes once any pod has succeeded
and none is still active.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GroupResource, StatusError
from .meta import controller_of, now, random_hex
from .patch import clone
from .watch import ADDED, DELETED, WatchEvent

if TYPE_CHECKING:
    from .apiserver import ApiServer

JOBS = GroupResource("batch", "jobs")
PODS = GroupResource("", "pods")
ACTIVE_PHASES = ("Pending", "Running")
TERMINAL_PHASES = ("Succeeded", "Failed")


class JobController:
    def __init__(self, api: ApiServer):
        self._api = api
        #: Create pods for new Jobs and resync Jobs when their pods change, like the real controller.
        self.auto = False
        self._pending_syncs: set[tuple[str, str]] = set()
        #: Job uid -> uids of its pods deleted before they ended. The real controller keeps a
        #: finalizer on its pods until it has counted them, and counts a pod deleted while
        #: Pending or Running as failed; the fake removes pods at once, so it remembers them.
        self._deleted_unfinished: dict[str, set[str]] = {}

    def observe(self, storage: GroupResource, event: WatchEvent) -> None:
        if not self.auto:
            return
        meta = event.object["metadata"]
        if storage == JOBS and event.type == ADDED and not event.object["spec"].get("suspend"):
            self._api.defer(self._start, meta["namespace"], meta["name"])
        elif storage == JOBS and event.type == DELETED:
            self._deleted_unfinished.pop(meta.get("uid"), None)
        elif (
            storage == PODS
            and (owner := controller_of(event.object))
            and owner.get("kind") == "Job"
        ):
            key = (meta["namespace"], owner["name"])
            phase = (event.object.get("status") or {}).get("phase")
            if event.type == DELETED and phase not in TERMINAL_PHASES:
                self._deleted_unfinished.setdefault(owner["uid"], set()).add(meta["uid"])
            if key not in self._pending_syncs:
                self._pending_syncs.add(key)
                self._api.defer(self._resync, key)

    def _start(self, namespace: str, job_name: str) -> None:
        try:
            self.create_pods(namespace, job_name)
        except StatusError:
            pass  # the Job was deleted meanwhile

    def _resync(self, key: tuple[str, str]) -> None:
        self._pending_syncs.discard(key)
        try:
            self.sync_job(*key)
        except StatusError:
            pass  # the Job was deleted meanwhile

    def _job(self, namespace: str, name: str) -> dict[str, Any]:
        return self._api.get(self._api.resources.for_storage(JOBS), namespace, name)

    def pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        """Pods controlled by ``job`` (matched by its uid), oldest first."""
        uid = job["metadata"]["uid"]
        pods = [
            obj
            for storage, obj in self._api.store.dependents(uid)
            if storage == PODS and (controller_of(obj) or {}).get("uid") == uid
        ]
        return sorted(pods, key=lambda pod: int(pod["metadata"]["resourceVersion"]))

    def create_pods(
        self, namespace: str, job_name: str, count: int | None = None, node_name: str | None = None
    ) -> list[dict[str, Any]]:
        """Create ``count`` (default ``spec.parallelism``) Pending pods from the Job's template."""
        job = self._job(namespace, job_name)
        template = job["spec"]["template"]
        pod_type = self._api.resources.for_storage(PODS)
        created = []
        for _ in range(job["spec"].get("parallelism", 1) if count is None else count):
            metadata = clone(template.get("metadata") or {})
            metadata.update(
                generateName=f"{job_name}-",
                namespace=namespace,
                ownerReferences=[
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": job_name,
                        "uid": job["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            )
            spec = clone(template.get("spec") or {})
            if node_name:
                spec["nodeName"] = node_name
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
            created.append(self._api.create(pod_type, namespace, pod))
        return created

    def set_pod_phase(
        self,
        namespace: str,
        pod_name: str,
        phase: str,
        exit_code: int | None = None,
        reason: str | None = None,
        message: str | None = None,
        ready: bool | None = None,
    ) -> dict[str, Any]:
        """Move a pod to ``phase`` with container statuses as the kubelet reports them.

        A Running pod is Ready unless ``ready=False``: its containers run but are not ready yet
        (still starting, or failing a readiness probe)."""
        pod_type = self._api.resources.for_storage(PODS)
        pod = clone(self._api.get(pod_type, namespace, pod_name))
        status = pod.setdefault("status", {})
        status["phase"] = phase
        timestamp = now()
        if phase != "Pending":
            status.setdefault("startTime", timestamp)
            status.setdefault("hostIP", "10.0.0.1")
            status.setdefault("podIP", f"10.244.0.{int(random_hex(2), 16) % 250 + 2}")
        ready = phase == "Running" and ready is not False
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": timestamp,
            },
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "lastProbeTime": None,
                "lastTransitionTime": timestamp,
            },
        ]
        if phase in ("Running", *TERMINAL_PHASES):
            code = exit_code if exit_code is not None else (0 if phase == "Succeeded" else 1)
            status["containerStatuses"] = [
                self._container_status(
                    container, phase, code, timestamp, status["startTime"], ready
                )
                for container in pod["spec"].get("containers") or ()
            ]
        for key, value in (("reason", reason), ("message", message)):
            if value is not None:
                status[key] = value
        return self._api.update(pod_type, namespace, pod_name, pod, subresource="status")

    @staticmethod
    def _container_status(
        container: dict[str, Any],
        phase: str,
        exit_code: int,
        timestamp: str,
        started: str,
        ready: bool,
    ) -> dict[str, Any]:
        if phase == "Running":
            state: dict[str, Any] = {"running": {"startedAt": started}}
        else:
            state = {
                "terminated": {
                    "exitCode": exit_code,
                    "reason": "Completed" if exit_code == 0 else "Error",
                    "startedAt": started,
                    "finishedAt": timestamp,
                    "containerID": f"containerd://{random_hex(64)}",
                }
            }
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "containerID": f"containerd://{random_hex(64)}",
            "ready": ready,
            "started": phase == "Running",
            "restartCount": 0,
            "state": state,
        }

    def sync_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        """Recompute the Job's status from its pods, and finish it when the docs say it is done."""
        job_type = self._api.resources.for_storage(JOBS)
        job = clone(self._job(namespace, job_name))
        spec = job["spec"]
        status = job.setdefault("status", {})
        if _finished(status):
            return job
        pods = self.pods_of(job)
        active = [
            p
            for p in pods
            if p["status"]["phase"] in ACTIVE_PHASES and not p["metadata"].get("deletionTimestamp")
        ]
        succeeded = sum(1 for p in pods if p["status"]["phase"] == "Succeeded")
        failed = sum(1 for p in pods if p["status"]["phase"] == "Failed")
        failed += len(self._deleted_unfinished.get(job["metadata"]["uid"], ()))
        timestamp = now()
        if not spec.get("suspend"):
            status.setdefault("startTime", timestamp)
        completions = spec.get("completions")
        conditions = status.setdefault("conditions", [])
        if failed > spec.get("backoffLimit", 6):
            self._delete_pods(namespace, active)
            active = []
            for kind in ("FailureTarget", "Failed"):
                conditions.append(
                    _condition(
                        kind,
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                        timestamp,
                    )
                )
        elif (
            (succeeded >= completions)
            if completions is not None
            else (succeeded > 0 and not active)
        ):
            self._delete_pods(namespace, active)
            active = []
            for kind in ("SuccessCriteriaMet", "Complete"):
                conditions.append(
                    _condition(
                        kind,
                        "CompletionsReached",
                        "Reached expected number of succeeded pods",
                        timestamp,
                    )
                )
            status["completionTime"] = timestamp
        if not conditions:
            del status["conditions"]
        # active/succeeded/failed are omitempty in JobStatus; ready and terminating are not.
        for key, value in (("active", len(active)), ("succeeded", succeeded), ("failed", failed)):
            if value:
                status[key] = value
            else:
                status.pop(key, None)
        # As the real controller counts them: active pods with the Ready condition.
        status["ready"] = sum(1 for p in active if _pod_ready(p))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        return self._api.update(job_type, namespace, job_name, job, subresource="status")

    def _delete_pods(self, namespace: str, pods: list[dict[str, Any]]) -> None:
        pod_type = self._api.resources.for_storage(PODS)
        for pod in pods:
            try:
                self._api.delete(pod_type, namespace, pod["metadata"]["name"])
            except StatusError:
                pass  # already gone

    def complete_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        """Run the Job to success: every active pod (one is created if none exists) succeeds."""
        job = self._job(namespace, job_name)
        pods = self.pods_of(job) or self.create_pods(namespace, job_name, count=1)
        for pod in pods:
            if pod["status"]["phase"] in ACTIVE_PHASES:
                self.set_pod_phase(namespace, pod["metadata"]["name"], "Succeeded", exit_code=0)
        return self.sync_job(namespace, job_name)

    def fail_job(self, namespace: str, job_name: str) -> dict[str, Any]:
        """Run the Job to failure: its active pods fail, and the Job is marked Failed as when
        the backoff limit is exceeded (even if the limit would allow retries)."""
        job = self._job(namespace, job_name)
        pods = self.pods_of(job) or self.create_pods(namespace, job_name, count=1)
        for pod in pods:
            if pod["status"]["phase"] in ACTIVE_PHASES:
                self.set_pod_phase(
                    namespace, pod["metadata"]["name"], "Failed", exit_code=1, reason="Error"
                )
        synced = self.sync_job(namespace, job_name)
        if _finished(synced.get("status") or {}):
            return synced
        forced = clone(synced)
        status = forced["status"]
        timestamp = now()
        status["conditions"] = status.get("conditions", []) + [
            _condition(
                kind,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
                timestamp,
            )
            for kind in ("FailureTarget", "Failed")
        ]
        self._delete_pods(
            namespace, [p for p in self.pods_of(forced) if p["status"]["phase"] in ACTIVE_PHASES]
        )
        status.pop("active", None)
        status["ready"] = 0
        return self._api.update(
            self._api.resources.for_storage(JOBS),
            namespace,
            job_name,
            forced,
            subresource="status",
        )


def _condition(kind: str, reason: str, message: str, timestamp: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": timestamp,
        "lastTransitionTime": timestamp,
        "reason": reason,
        "message": message,
    }


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def _finished(status: dict[str, Any]) -> bool:
    return any(
        c["type"] in ("Complete", "Failed") and c["status"] == "True"
        for c in status.get("conditions") or ()
    )
