"""Capture the Locust master's `/stats/requests` answers that tests/unit/test_results.py reads.

Runs a target with a fast and a slow endpoint, a Locust master with one worker (as the operator
runs them, with --autostart and --autoquit), and saves the master's answer while the test runs
and once it has stopped and settled. Only 127.0.0.1 traffic. Usage:

    python tests/data/locust-stats/capture.py   # writes locust-<version>-{running,stopped}.json
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import locust

HERE = Path(__file__).parent
LOCUSTFILE = """
from locust import HttpUser, constant, task

class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task(3)
    def fast(self):
        self.client.get("/fast")

    @task(1)
    def slow(self):
        self.client.get("/slow")

    @task(1)
    def missing(self):
        self.client.post("/missing", name="POST missing item")
"""


class Target(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.2)
        self._answer(200)

    def do_POST(self) -> None:
        self._answer(404)

    def _answer(self, code: int) -> None:
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stats(web_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/requests", timeout=5) as r:
        return json.load(r)


def main() -> None:
    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    host = f"http://127.0.0.1:{target.server_port}"
    web_port, master_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        locustfile = Path(tmp, "locustfile.py")
        locustfile.write_text(LOCUSTFILE)
        common = [sys.executable, "-m", "locust", "-f", str(locustfile), "--host", host]
        master = subprocess.Popen(
            [
                *common,
                *("--master", "--master-bind-host", "127.0.0.1"),
                *("--master-bind-port", str(master_port), "--expect-workers", "1"),
                *("--web-host", "127.0.0.1", "--web-port", str(web_port)),
                *("--autostart", "--autoquit", "30", "-u", "4", "-r", "4", "-t", "6s"),
            ]
        )
        worker = subprocess.Popen(
            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(master_port)]
        )
        try:
            version = locust.__version__
            running = _wait(web_port, lambda s: s["state"] == "running" and _requests(s) > 20)
            (HERE / f"locust-{version}-running.json").write_text(json.dumps(running, indent=1))
            _wait(web_port, lambda s: s["state"] == "stopped")
            # Workers send their last numbers after the master says stopped: wait until settled.
            previous, current = None, stats(web_port)
            while previous is None or _requests(previous) != _requests(current):
                time.sleep(2)
                previous, current = current, stats(web_port)
            (HERE / f"locust-{version}-stopped.json").write_text(json.dumps(current, indent=1))
        finally:
            for process in (worker, master):
                process.terminate()
                process.wait(timeout=30)
            target.shutdown()


def _requests(answer: dict) -> int:
    return answer["stats"][-1]["num_requests"]


def _wait(web_port: int, ready) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = stats(web_port)
        except OSError:
            answer = None
        if answer is not None and ready(answer):
            return answer
        time.sleep(0.5)
    raise SystemExit("Locust never reached the expected state")


if __name__ == "__main__":
    main()
