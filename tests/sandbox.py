"""Processes for the local sandbox: the fake API server and the operator, as a user would run them.

Used by the integration tests, the demo and the benchmark, so all three exercise the operator exactly
as it runs in production: a separate process reading an ordinary kubeconfig.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATOR = [sys.executable, "-m", "reconciler.cli", "run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "LOCUST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class FakeKubeProcess:
    """`python -m tests.fakekube serve` in its own process (its own CPU, as a real apiserver has)."""

    def __init__(self, workdir: Path, *extra_args: str):
        self.kubeconfig = workdir / "kubeconfig"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fakekube", "serve", "--kubeconfig", str(self.kubeconfig),
             *extra_args],
            cwd=ROOT, env=_child_env({}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if "listening" not in line:
            self.proc.kill()
            raise RuntimeError(f"fake API server did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[-1].strip()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class OperatorProcess:
    """`locust-operator run` against a kubeconfig, with its log captured to a file."""

    def __init__(self, kubeconfig: Path, log_path: Path, env: Mapping[str, str] | None = None):
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_path
        settings = {
            "KUBECONFIG": str(kubeconfig),
            "HEALTH_PORT": str(self.health_port),
            "METRICS_PORT": str(self.metrics_port),
            **(env or {}),
        }
        self._log = open(log_path, "w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(OPERATOR, cwd=ROOT, env=_child_env(settings),
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port or self.health_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def wait_ready(self, timeout: float = 20.0) -> float:
        """Wait for /readyz; return seconds from process start to ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"operator not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, as Kubernetes and Pebble stop a service; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode
