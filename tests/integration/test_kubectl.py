"""The real kubectl against the fake cluster: apply, explain and diff as on a real cluster, and
the `make sandbox` script a user runs kubectl against."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import yaml

from fakekube.server import FakeKube
from reconciler.crds import version_schema

from .conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture
def fakekube() -> Iterator[FakeKube]:
    """Over HTTPS: kubectl sends its credentials only over TLS, and the integration cluster
    authorizes every request."""
    with FakeKube(authorization="RBAC", tls=True) as server:
        yield server


def kubectl(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # A HOME of its own: kubectl caches discovery and OpenAPI under ~/.kube/cache.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HOME": str(kubeconfig.parent)}
    return subprocess.run(
        [KUBECTL or "kubectl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def bad_test(tmp_path: Path, name: str) -> Path:
    """The example LocustTest under another name, with a field its schema does not have."""
    manifest = next(
        doc
        for doc in yaml.safe_load_all((EXAMPLES / "locusttest.yaml").read_text())
        if doc["kind"] == "LocustTest"
    )
    manifest["metadata"]["name"] = name
    manifest["spec"]["foo"] = "bar"
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return path


def test_apply_creates_the_examples_with_server_side_field_validation(
    cluster: FakeKube, kubeconfig: Path
) -> None:
    result = kubectl(kubeconfig, "apply", "-f", str(EXAMPLES))
    assert result.returncode == 0, result.stderr
    assert "configmap/demo-locustfile created" in result.stdout
    assert "locusttest.locust.io/demo.smoke created" in result.stdout
    test = cluster.get("locust.io/v2", "LocustTest", "demo.smoke", "default")
    assert test is not None and test["spec"]["worker"]["replicas"] == 2
    assert cluster.get("v1", "ConfigMap", "demo-locustfile", "default") is not None
    creates = [r for r in cluster.requests if r.method == "POST" and r.resource == "locusttests"]
    assert [r.query.get("fieldValidation") for r in creates] == ["Strict"]

    again = kubectl(kubeconfig, "apply", "-f", str(EXAMPLES))
    assert again.returncode == 0, again.stderr
    assert "locusttest.locust.io/demo.smoke unchanged" in again.stdout


def test_apply_refuses_an_unknown_field_and_warns_when_asked_to(
    cluster: FakeKube, kubeconfig: Path, tmp_path: Path
) -> None:
    refused = kubectl(kubeconfig, "apply", "-f", str(bad_test(tmp_path, "strict")))
    assert refused.returncode != 0
    assert "Error from server (BadRequest)" in refused.stderr
    assert 'strict decoding error: unknown field "spec.foo"' in refused.stderr
    assert cluster.get("locust.io/v2", "LocustTest", "strict", "default") is None

    warned = kubectl(
        kubeconfig, "apply", "--validate=warn", "-f", str(bad_test(tmp_path, "warned"))
    )
    assert warned.returncode == 0, warned.stderr
    assert 'Warning: unknown field "spec.foo"' in warned.stderr
    stored = cluster.get("locust.io/v2", "LocustTest", "warned", "default")
    assert stored is not None and "foo" not in stored["spec"]


def test_explain_shows_the_crd_descriptions(cluster: FakeKube, kubeconfig: Path) -> None:
    master = version_schema("v2")["properties"]["spec"]["properties"]["master"]
    result = kubectl(kubeconfig, "explain", "locusttest.spec.master")
    assert result.returncode == 0, result.stderr
    assert "KIND:       LocustTest" in result.stdout
    assert "VERSION:    v2" in result.stdout
    assert "FIELD: master <Object>" in result.stdout
    assert " ".join(master["description"].split()) in " ".join(result.stdout.split())
    assert "command\t<string> -required-" in result.stdout

    built_in = kubectl(kubeconfig, "explain", "configmap.data")
    assert built_in.returncode == 0, built_in.stderr
    assert "FIELD: data <map[string]string>" in built_in.stdout


def test_diff_compares_with_a_server_side_dry_run(
    cluster: FakeKube, kubeconfig: Path, tmp_path: Path
) -> None:
    assert kubectl(kubeconfig, "apply", "-f", str(EXAMPLES)).returncode == 0
    before = cluster.get("locust.io/v2", "LocustTest", "demo.smoke", "default")

    same = kubectl(kubeconfig, "diff", "-f", str(EXAMPLES))
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""

    changed = tmp_path / "examples"
    shutil.copytree(EXAMPLES, changed)
    manifest = changed / "locusttest.yaml"
    manifest.write_text(manifest.read_text().replace("--users 20", "--users 25"))
    cluster.clear_requests()
    different = kubectl(kubeconfig, "diff", "-f", str(changed))
    assert different.returncode == 1, different.stderr  # 1: differences found
    assert "-      --users 20 --spawn-rate 5 --run-time 20s" in different.stdout
    assert "+      --users 25 --spawn-rate 5 --run-time 20s" in different.stdout
    changed_lines = [line for line in different.stdout.splitlines() if line[:1] in "+-"]
    assert not [line for line in changed_lines if "resourceVersion" in line]
    patches = [r for r in cluster.requests if r.method == "PATCH"]
    assert patches and all(r.query.get("dryRun") == "All" for r in patches)
    assert cluster.get("locust.io/v2", "LocustTest", "demo.smoke", "default") == before


# --- make sandbox -------------------------------------------------------------------------------


def _read_line(stream, timeout: float) -> str:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not lines:
        raise TimeoutError(f"no line on stdout within {timeout}s")
    return lines[0]


def _locust_processes(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for child in root.children(recursive=True):
        try:
            if "locust" in child.cmdline():
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.timeout(300)
def test_sandbox_serves_kubectl_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    stderr = open(tmp_path / "sandbox.err", "w")  # noqa: SIM115 - closed below
    sandbox = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "sandbox.py")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    started: list[psutil.Process] = []
    try:
        assert sandbox.stdout is not None
        line = _read_line(sandbox.stdout, 120)
        assert line.startswith("export KUBECONFIG="), line
        kubeconfig = Path(line.strip().partition("=")[2])
        assert kubeconfig.is_file()

        applied = kubectl(kubeconfig, "apply", "-f", str(EXAMPLES))
        assert applied.returncode == 0, applied.stderr
        listed = kubectl(kubeconfig, "get", "lotest")
        assert listed.returncode == 0, listed.stderr
        assert "demo.smoke" in listed.stdout

        # The operator turns the test into Jobs; the kubelet runs their pods as Locust.
        root = psutil.Process(sandbox.pid)
        wait_until(lambda: _locust_processes(root), 120, "the Locust processes")
        started = root.children(recursive=True)

        sandbox.send_signal(signal.SIGTERM)
        assert sandbox.wait(90) == 0
        assert sandbox.stdout.read() == ""  # exactly one line on stdout
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()
        stderr.close()
    deadline = time.monotonic() + 10
    left = [p for p in started if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if _alive(p)]
    for process in left:
        process.kill()  # so a failure does not leave load running on the machine
    assert left == [], (tmp_path / "sandbox.err").read_text()
    assert not kubeconfig.parent.exists()  # its temporary folder is removed
