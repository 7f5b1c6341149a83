"""Processes for the local sandbox: the fake API server and the operator, as a user would run them.

Used by the integration tests, the end-to-end tests, the demo, `make sandbox` and the benchmark, so
all of them exercise the operator exactly as it runs in production: a separate process reading an
ordinary kubeconfig. The operator is only ever started as a command (`python -m reconciler.cli
run`), never imported: the fake cluster stays independent of the product it tests. Also the system under test of the end-to-end runs: a small HTTP server the Locust pods
load, reachable in the fake cluster through a Service.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

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
    """`python -m fakekube serve` in its own process (its own CPU, as a real apiserver has)."""

    def __init__(self, workdir: Path, *extra_args: str):
        self.kubeconfig = workdir / "kubeconfig"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fakekube", "serve", "--kubeconfig", str(self.kubeconfig),
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


# --- The system under test ----------------------------------------------------------------------


def free_loopback_address(port: int) -> str:
    """A loopback address of its own (127.253.x.y) where ``port`` is free.

    The local kubelet gives pods addresses from 127.16-250.x.y, so a target here never takes a
    pod's port, and two sandboxes on one machine do not meet.
    """
    for _ in range(100):
        address = f"127.253.{random.randint(0, 255)}.{random.randint(1, 254)}"
        with socket.socket() as sock:
            try:
                sock.bind((address, port))
            except OSError:
                continue
        return address
    raise RuntimeError(f"no free loopback address for port {port}")


class TargetServer:
    """A small HTTP server that answers 200 to every GET and counts requests per path; the paths
    in ``delays`` answer only after that many seconds (a slow endpoint).

    It listens on a loopback address of its own at the port its Service exposes, so the kubelet's
    name mapping (which keeps ports) takes Locust straight to it. ``service_manifests`` registers it
    in the cluster the Kubernetes way for a backend outside the cluster: a Service without a
    selector and an EndpointSlice with the server's address.
    """

    def __init__(self, port: int = 8080, delays: Mapping[str, float] | None = None):
        self._requests: Counter[str] = Counter()
        slow = dict(delays or {})
        self._lock = lock = threading.Lock()
        counts = self._requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Locust's HttpUser uses it

            def do_GET(self) -> None:
                with lock:
                    counts[self.path] += 1
                if self.path in slow:
                    time.sleep(slow[self.path])
                body = b"ok\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                # A Locust that stops mid-request hangs up on a slow answer: no traceback.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.address = free_loopback_address(port)
        self.port = port
        self._server = Server((self.address, port), Handler)
        self._server.daemon_threads = True
        # Locust's keep-alive connections would otherwise hold up close().
        self._server.block_on_close = False
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="target", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def requests(self) -> Counter[str]:
        """Requests so far, per path (a copy)."""
        with self._lock:
            return Counter(self._requests)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def service_manifests(self, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        """A Service without a selector and its EndpointSlice, pointing at this server."""
        port = {"name": "http", "port": self.port, "protocol": "TCP"}
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"ports": [port]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-local",
                    "namespace": namespace,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [self.address], "conditions": {"ready": True}}],
                "ports": [port],
            },
        ]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TargetServer:  # noqa: PYI034 - never subclassed
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def locust_stats(pod_ip: str, timeout: float = 2.0) -> dict[str, Any]:
    """``/stats/requests`` from a Locust master's web port at its pod address."""
    with urllib.request.urlopen(f"http://{pod_ip}:8089/stats/requests", timeout=timeout) as reply:
        return json.load(reply)
