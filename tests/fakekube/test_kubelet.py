"""The local kubelet: Jobs' pods run as processes, with the kubelet's and Job controller's semantics.

Most pods here run a tiny Python image (registered for these tests) so the lifecycle is fast and
exact; the Locust image is used where Locust's own behaviour is the point.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psutil
import pytest
from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig

from fakekube import FakeKube
from fakekube.containers import DEFAULT_IMAGES, LocalImage
from fakekube.fixtures import locust_processes
from fakekube.kubelet import KubeletSettings
from fakekube.sandbox import FakeKubeProcess

ROOT = Path(__file__).resolve().parents[2]
PYTHON = "fakekube/python:3"
IMAGES = {
    **DEFAULT_IMAGES,
    "fakekube/python": LocalImage(
        entrypoint=(sys.executable,), workdir="/app", env={"PYTHONUNBUFFERED": "1"}
    ),
    "fakekube/missing": LocalImage(entrypoint=("/nonexistent/entrypoint",), workdir="/"),
}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[FakeKube]:
    """A fake cluster whose Jobs run: the Job controller in auto mode and the local kubelet."""
    with FakeKube(kubelet=KubeletSettings(root=tmp_path / "node", images=IMAGES)) as kube:
        kube.jobs.auto = True
        yield kube


@pytest.fixture
def kubeconfig(node: FakeKube, tmp_path: Path) -> Path:
    return node.write_kubeconfig(tmp_path / "kubeconfig")


def container(name: str = "main", code: str = "", image: str = PYTHON, **fields: Any) -> dict:
    args = ["-c", code] if code else []
    return {"name": name, "image": image, "args": args, **fields}


def job(
    name: str, *containers: dict, namespace: str = "default", parallelism: int = 1, **pod: Any
) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "parallelism": parallelism,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"restartPolicy": "Never", "containers": list(containers), **pod},
            },
        },
    }


def pod_of(kube: FakeKube, job_name: str, namespace: str = "default") -> dict:
    (pod,) = kube.wait_for(lambda: kube.jobs.pods(namespace, job_name), message="the pod")
    return pod


def wait_phase(kube: FakeKube, pod: dict, *phases: str, timeout: float = 20) -> dict:
    meta = pod["metadata"]
    return kube.wait_for(
        lambda: (
            (p := kube.get("v1", "Pod", meta["name"], meta["namespace"]))
            and p["status"]["phase"] in phases
            and p
        ),
        timeout=timeout,
        message=f"pod {meta['name']} to be {phases}",
    )


def finished(kube: FakeKube, job_name: str, namespace: str = "default") -> dict:
    def condition() -> dict | None:
        status = (kube.get("batch/v1", "Job", job_name, namespace) or {}).get("status") or {}
        return next(
            (c for c in status.get("conditions") or () if c["type"] in ("Complete", "Failed")),
            None,
        )

    return kube.wait_for(condition, timeout=30, message=f"job {job_name} to finish")


def events(kube: FakeKube, pod: dict) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["reason"], e["message"])
        for e in kube.list("v1", "Event", pod["metadata"]["namespace"])
        if e["involvedObject"]["name"] == pod["metadata"]["name"]
    ]


LOCUSTFILE = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "lf", "namespace": "default"},
    "data": {
        "locustfile.py": "from locust import User, task\n\nclass U(User):\n    @task\n    def t(self):\n        pass\n"
    },
}


def main_state(pod: dict) -> dict:
    return pod["status"]["containerStatuses"][0]["state"]


# --- The lifecycle ----------------------------------------------------------------------------


def test_a_jobs_pod_runs_as_a_process_and_completes_the_job(node: FakeKube) -> None:
    node.create(job("hello", container(code="import time; print('hello'); time.sleep(1.5)")))

    pod = pod_of(node, "hello")
    running = wait_phase(node, pod, "Running")
    status = running["status"]
    assert running["spec"]["nodeName"] == "fakekube-node"
    assert status["podIP"].startswith("127.") and status["podIP"] != status["hostIP"]
    assert main_state(running)["running"]["startedAt"]
    assert status["containerStatuses"][0]["ready"] is True
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodReadyToStartContainers": "True",
        "Initialized": "True",
        "Ready": "True",
        "ContainersReady": "True",
        "PodScheduled": "True",
    }

    running_job = node.wait_for(
        lambda: (
            (j := node.get("batch/v1", "Job", "hello", "default"))
            and j.get("status", {}).get("ready") == 1
            and j
        )
    )
    assert running_job["status"]["active"] == 1 and running_job["status"]["startTime"]

    condition = finished(node, "hello")
    done = wait_phase(node, pod, "Succeeded")
    assert (condition["type"], condition["reason"]) == ("Complete", "CompletionsReached")
    terminated = main_state(done)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert "message" not in terminated
    assert next(c for c in done["status"]["conditions"] if c["type"] == "Ready")["reason"] == (
        "PodCompleted"
    )
    job_status = node.get("batch/v1", "Job", "hello", "default")["status"]
    assert job_status["succeeded"] == 1 and "active" not in job_status
    assert job_status["startTime"] <= job_status["completionTime"]
    assert node.kubelet.log("default", pod["metadata"]["name"]) == "hello\n"
    reasons = [reason for _, reason, _ in events(node, pod)]
    assert {"Scheduled", "Started"} <= set(reasons)


def test_every_pod_gets_an_address_of_its_own(node: FakeKube) -> None:
    node.create(job("many", container(code="import time; time.sleep(1)"), parallelism=3))

    def addresses() -> set[str] | None:
        pods = node.jobs.pods("default", "many")
        found = {p["status"].get("podIP") for p in pods} - {None}
        return found if len(pods) == 3 and len(found) == 3 else None

    assert len(node.wait_for(addresses)) == 3
    assert finished(node, "many")["type"] == "Complete"
    assert node.get("batch/v1", "Job", "many", "default")["status"]["succeeded"] == 3


def test_a_failing_container_fails_the_pod_and_the_job_with_the_tail_of_its_log(
    node: FakeKube,
) -> None:
    code = "import sys; [print(f'line {i}') for i in range(100)]; sys.exit(3)"
    node.create(job("bad", container(code=code, terminationMessagePolicy="FallbackToLogsOnError")))
    node.create(job("quiet", container(code=code)))

    condition = finished(node, "bad")
    assert (condition["type"], condition["reason"]) == ("Failed", "BackoffLimitExceeded")
    failed = wait_phase(node, pod_of(node, "bad"), "Failed")
    terminated = main_state(failed)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    # The kubelet keeps at most the last 80 lines (and 2048 bytes) of the log.
    assert terminated["message"].splitlines() == [f"line {i}" for i in range(20, 100)]
    assert node.get("batch/v1", "Job", "bad", "default")["status"]["failed"] == 1
    # With the default policy (File) the message comes only from /dev/termination-log.
    quiet = wait_phase(node, pod_of(node, "quiet"), "Failed")
    assert "message" not in main_state(quiet)["terminated"]


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["-f", "/lotest/src/locustfile.py", "--bogus-flag"], 2, "unrecognized arguments"),
        (["-f", "/lotest/src/missing.py"], 1, "Could not find '/"),
    ],
)
def test_locust_that_cannot_start_gives_a_failed_pod_with_its_exit_code_and_message(
    node: FakeKube, args: list[str], exit_code: int, message: str
) -> None:
    node.create(LOCUSTFILE)
    locust = container(
        image="locustio/locust:2.47.0",
        args=args,
        terminationMessagePolicy="FallbackToLogsOnError",
        volumeMounts=[{"name": "src", "mountPath": "/lotest/src"}],
    )
    node.create(job("locust", locust, volumes=[{"name": "src", "configMap": {"name": "lf"}}]))

    terminated = main_state(wait_phase(node, pod_of(node, "locust"), "Failed"))["terminated"]

    assert terminated["exitCode"] == exit_code
    assert message in terminated["message"]


def test_an_entrypoint_that_cannot_be_executed_is_a_start_error(node: FakeKube) -> None:
    node.create(job("noexec", container(image="fakekube/missing:1")))

    failed = wait_phase(node, pod_of(node, "noexec"), "Failed")

    terminated = main_state(failed)["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert "/nonexistent/entrypoint" in terminated["message"]
    assert finished(node, "noexec")["type"] == "Failed"


# --- Containers it does not run ---------------------------------------------------------------


def test_a_native_sidecar_it_cannot_run_is_reported_running_and_stops_with_the_main_container(
    node: FakeKube,
) -> None:
    exporter = {
        "name": "exporter",
        "image": "containersol/locust_exporter:v0.5.0",
        "restartPolicy": "Always",
    }
    node.create(
        job("sidecar", container(code="import time; time.sleep(1)"), initContainers=[exporter])
    )
    pod = pod_of(node, "sidecar")

    running = wait_phase(node, pod, "Running")
    (init,) = running["status"]["initContainerStatuses"]
    assert "running" in init["state"] and init["started"] is True

    done = wait_phase(node, pod, "Succeeded")
    (init,) = done["status"]["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0
    assert finished(node, "sidecar")["type"] == "Complete"


def test_pods_it_cannot_run_are_left_to_the_test(node: FakeKube) -> None:
    node.create(job("busybox", container(image="busybox:1.36")))
    node.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "bare", "namespace": "default"},
            "spec": {"containers": [container(code="print(1)")]},
        }
    )
    pod = pod_of(node, "busybox")
    # The kubelet takes pods in the order they are stored and binds each it runs before the next:
    # once a later pod it can run is bound, it has passed over the first two.
    node.create(job("runnable", container(code="print(1)")))
    later = node.wait_for(
        lambda: (p := node.get("v1", "Pod", pod_of(node, "runnable")["metadata"]["name"]))
        and p["spec"].get("nodeName")
        and p,
        message="the runnable pod to be bound",
    )

    for name in (pod["metadata"]["name"], "bare"):
        current = node.get("v1", "Pod", name, "default")
        assert "nodeName" not in current["spec"]
        assert current["status"]["phase"] == "Pending" and "podIP" not in current["status"]
    assert {p.pod for p in node.kubelet.processes()} <= {later["metadata"]["name"]}


def test_a_node_without_registry_access_fails_to_pull_unknown_images(tmp_path: Path) -> None:
    settings = KubeletSettings(root=tmp_path / "node", images=IMAGES, fail_unknown_images=True)
    with FakeKube(kubelet=settings) as kube:
        kube.jobs.auto = True
        kube.create(job("unpullable", container(image="registry.invalid/app:1")))
        pod = pod_of(kube, "unpullable")
        state = kube.wait_for(
            lambda: (p := kube.get("v1", "Pod", pod["metadata"]["name"], "default"))
            and (p["status"].get("containerStatuses") or [{}])[0].get("state", {}).get("waiting"),
            message="a waiting container",
        )
        assert state == {"reason": "ImagePullBackOff",
                         "message": 'Back-off pulling image "registry.invalid/app:1"'}
        current = kube.get("v1", "Pod", pod["metadata"]["name"], "default")
        assert current["status"]["phase"] == "Pending"
        message = 'Failed to pull image "registry.invalid/app:1": this node has no registry access'
        assert ("Warning", "Failed", message) in events(kube, pod)
        assert kube.kubelet.processes() == []


# --- Volumes ----------------------------------------------------------------------------------


def test_a_missing_config_map_holds_the_pod_in_container_creating_until_it_exists(
    node: FakeKube,
) -> None:
    # A path in args is mapped to the volume's folder (code inside `-c` is not an arg of its own).
    mounted = container(
        args=["-c", "import sys; print(open(sys.argv[1]).read())", "$(SCRIPTS)/locustfile.py"],
        env=[{"name": "SCRIPTS", "value": "/scripts"}],
        volumeMounts=[{"name": "scripts", "mountPath": "/scripts"}],
    )
    node.create(job("mounts", mounted, volumes=[{"name": "scripts", "configMap": {"name": "lf"}}]))
    pod = pod_of(node, "mounts")

    waiting = node.wait_for(
        lambda: (
            ("FailedMount" in {r for _, r, _ in events(node, pod)})
            and node.get("v1", "Pod", pod["metadata"]["name"], "default")
        )
    )
    assert waiting["status"]["phase"] == "Pending"
    assert main_state(waiting) == {"waiting": {"reason": "ContainerCreating"}}
    assert (
        "Warning",
        "FailedMount",
        'MountVolume.SetUp failed for volume "scripts" : configmap "lf" not found',
    ) in events(node, pod)

    node.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lf", "namespace": "default"},
            "data": {"locustfile.py": "# the test\n"},
        }
    )

    wait_phase(node, pod, "Succeeded")
    assert node.kubelet.log("default", pod["metadata"]["name"]) == "# the test\n\n"


def test_config_map_files_are_laid_out_as_the_kubelet_writes_them(node: FakeKube) -> None:
    node.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "lf", "namespace": "default"},
            "data": {"locustfile.py": "x = 1\n"},
        }
    )
    code = "import os, sys; print(sorted(os.listdir(sys.argv[1])), os.readlink(sys.argv[2]))"
    mounted = container(
        args=["-c", code, "/src", "/src/locustfile.py"],
        volumeMounts=[{"name": "src", "mountPath": "/src"}],
    )
    node.create(job("layout", mounted, volumes=[{"name": "src", "configMap": {"name": "lf"}}]))

    pod = wait_phase(node, pod_of(node, "layout"), "Succeeded")

    listing = node.kubelet.log("default", pod["metadata"]["name"])
    assert "'..data'" in listing and "'locustfile.py'" in listing
    assert listing.strip().endswith("..data/locustfile.py")


# --- Service names ----------------------------------------------------------------------------


def test_a_service_name_waits_for_a_pod_behind_it_then_maps_to_its_address(
    node: FakeKube,
) -> None:
    node.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "backend", "namespace": "default"},
            "spec": {"selector": {"app": "server"}, "ports": [{"port": 5557}]},
        }
    )
    client = container(args=["-c", "import sys; print(sys.argv[1])", "--master-host=backend"])
    node.create(job("client", client))
    waiting = pod_of(node, "client")

    def sandbox_ready(pod: dict) -> bool:
        conditions = pod["status"].get("conditions") or ()
        return any(
            c["type"] == "PodReadyToStartContainers" and c["status"] == "True" for c in conditions
        )

    # Its sandbox is up, so the kubelet got as far as the container's command, and held it there.
    held = node.wait_for(
        lambda: (p := node.get("v1", "Pod", waiting["metadata"]["name"], "default"))
        and sandbox_ready(p)
        and p,
        message="the client pod's sandbox",
    )
    assert held["status"]["phase"] == "Pending"
    assert main_state(held) == {"waiting": {"reason": "ContainerCreating"}}
    assert node.kubelet.processes() == []

    node.create(job("server", container(code="import time; time.sleep(2)")))
    server = wait_phase(node, pod_of(node, "server"), "Running")

    done = wait_phase(node, waiting, "Succeeded")
    log = node.kubelet.log("default", done["metadata"]["name"])
    assert log == f"--master-host={server['status']['podIP']}\n"


def test_an_outside_host_is_never_contacted(node: FakeKube) -> None:
    locust = container(image="locustio/locust:2.47.0", args=["--host", "https://docs.locust.io"])
    node.create(job("outside", locust))
    pod = pod_of(node, "outside")

    waiting = node.wait_for(
        lambda: (
            "waiting" in main_state(p := node.get("v1", "Pod", pod["metadata"]["name"], "default"))
            and main_state(p)["waiting"]["reason"] == "CreateContainerError"
            and p
        )
    )

    assert "docs.locust.io" in main_state(waiting)["waiting"]["message"]
    assert node.kubelet.processes() == []


# --- Deletion ---------------------------------------------------------------------------------

TRAP_SIGTERM = """
import signal, sys, time
def stop(*_):
    print('got SIGTERM', flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
time.sleep(60)
"""


def test_deleting_a_job_sends_sigterm_to_its_processes_and_removes_its_pods(
    node: FakeKube, tmp_path: Path
) -> None:
    node.create(job("long", container(code=TRAP_SIGTERM)))
    pod = wait_phase(node, pod_of(node, "long"), "Running")
    node.wait_for(lambda: "ready" in node.kubelet.log("default", pod["metadata"]["name"]))
    (process,) = node.kubelet.processes()

    node.delete("batch/v1", "Job", "long", "default", propagation="Background")

    node.wait_for(lambda: not node.get("v1", "Pod", pod["metadata"]["name"], "default"))
    node.wait_for(lambda: not psutil.pid_exists(process.pid), timeout=10)
    log = tmp_path / "node" / "default" / pod["metadata"]["name"] / "logs" / "main.log"
    assert log.read_text() == "ready\ngot SIGTERM\n"
    assert ("Normal", "Killing", "Stopping container") in events(node, pod)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(node: FakeKube) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    node.create(job("stubborn", container(code=code), terminationGracePeriodSeconds=1))
    pod = wait_phase(node, pod_of(node, "stubborn"), "Running")
    node.wait_for(lambda: "up" in node.kubelet.log("default", pod["metadata"]["name"]))
    (process,) = node.kubelet.processes()

    node.delete("v1", "Pod", pod["metadata"]["name"], "default")
    started = time.monotonic()

    node.wait_for(lambda: not psutil.pid_exists(process.pid), timeout=20)
    # It ignores SIGTERM, so only the SIGKILL ended it: not before the grace period (the kill is
    # timed from the deletion, just before `started`).
    assert time.monotonic() - started > 0.8


def test_stopping_the_server_stops_every_process(tmp_path: Path) -> None:
    kube = FakeKube(kubelet=KubeletSettings(root=tmp_path, images=IMAGES)).start()
    kube.jobs.auto = True
    kube.create(job("long", container(code="import time; time.sleep(60)")))
    kube.wait_for(lambda: kube.kubelet.processes())
    (process,) = kube.kubelet.processes()

    kube.stop()

    assert not psutil.pid_exists(process.pid)


# --- Logs -------------------------------------------------------------------------------------


def test_the_log_subresource_serves_a_containers_output(node: FakeKube, kubeconfig: Path) -> None:
    code = "[print(f'line {i}') for i in range(5)]"
    node.create(job("logs", container(code=code)))
    pod = wait_phase(node, pod_of(node, "logs"), "Succeeded")
    name = pod["metadata"]["name"]
    client = Client(config=KubeConfig.from_file(kubeconfig))
    try:
        assert list(client.log(name, namespace="default")) == [f"line {i}\n" for i in range(5)]
        tail = list(client.log(name, namespace="default", tail_lines=2))
        assert tail == ["line 3\n", "line 4\n"]
        with pytest.raises(ApiError) as raised:
            list(client.log(name, namespace="default", container="nope"))
        assert raised.value.status.code == 400
    finally:
        client.close()


def test_a_log_needs_a_container_name_when_the_pod_has_several(node: FakeKube) -> None:
    node.create(job("two", container("a", code="print('a')"), container("b", code="print('b')")))
    pod = wait_phase(node, pod_of(node, "two"), "Succeeded")
    url = f"{node.url}/api/v1/namespaces/default/pods/{pod['metadata']['name']}/log"

    assert httpx.get(url, params={"container": "b"}).text == "b\n"
    reply = httpx.get(url)
    assert reply.status_code == 400
    assert "a container name must be specified" in reply.json()["message"]


def test_discovery_lists_the_log_subresource_and_endpoint_slices(node: FakeKube) -> None:
    core = {r["name"] for r in httpx.get(f"{node.url}/api/v1").json()["resources"]}
    discovery = httpx.get(f"{node.url}/apis/discovery.k8s.io/v1").json()["resources"]

    assert "pods/log" in core
    assert [r["name"] for r in discovery] == ["endpointslices"]


# --- The standalone server --------------------------------------------------------------------


def test_serve_with_the_local_kubelet_runs_locust_jobs(tmp_path: Path) -> None:
    server = FakeKubeProcess(tmp_path, "--job-controller", "auto", "--kubelet", "local")
    try:
        url = server.url
        body = job("version", container(image="locustio/locust:2.47.0", args=["--version"]))
        assert httpx.post(f"{url}/apis/batch/v1/namespaces/default/jobs", json=body).is_success

        def complete() -> bool:
            found = httpx.get(f"{url}/apis/batch/v1/namespaces/default/jobs/version").json()
            conditions = (found.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Complete" for c in conditions)

        deadline = time.monotonic() + 30
        while not complete():
            assert time.monotonic() < deadline, "the Job never completed"
            time.sleep(0.1)
        (pod,) = httpx.get(f"{url}/api/v1/namespaces/default/pods").json()["items"]
        log = httpx.get(f"{url}/api/v1/namespaces/default/pods/{pod['metadata']['name']}/log")
        assert log.text.startswith("locust 2.")
        assert (tmp_path / "node" / "default" / pod["metadata"]["name"] / "logs").is_dir()
    finally:
        code = server.stop()
    assert code == 0
    assert locust_processes() == []
