"""Under Pebble, the operator raises a custom notice when a test's phase or verdict changes: the
charm refreshes the `load-test` relation on it at once instead of at the next update-status.

Pebble's API is played by a small HTTP server on a unix socket, answering `POST /v1/notices`
as Pebble does; the operator finds it through `PEBBLE_SOCKET`, as under Juju."""

from __future__ import annotations

import json
import shutil
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime.notices import TEST_CHANGED
from tests.integration.conftest import wait_until
from tests.integration.objects import create, locusttest, status, wait_for_children


class _UnixHTTPServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    notices: list[dict[str, Any]]


class _PebbleNotices(BaseHTTPRequestHandler):
    server: _UnixHTTPServer

    def address_string(self) -> str:  # a unix socket has no client address
        return "pebble-client"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.path == "/v1/notices" and body.get("action") == "add"
        if ok:
            self.server.notices.append(body)
        answer = json.dumps(
            {"type": "sync", "status-code": 200, "result": {"id": str(len(self.server.notices))}}
            if ok
            else {"type": "error", "status-code": 400, "result": {"message": "bad request"}}
        ).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def pebble() -> Iterator[tuple[_UnixHTTPServer, str]]:
    folder = Path(tempfile.mkdtemp(prefix="pebble-", dir="/tmp"))  # socket paths are short
    path = folder / "pebble.socket"
    server = _UnixHTTPServer(str(path), _PebbleNotices)
    server.notices = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, str(path)
    server.shutdown()
    server.server_close()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_new_phase_raises_a_custom_notice_naming_the_test(
    client, start_operator, cluster, pebble
):
    server, socket = pebble
    start_operator(PEBBLE_SOCKET=socket)

    create(client, locusttest("shop.notified"))
    wait_for_children(client, "shop.notified")
    wait_until(lambda: status(client, "shop.notified").get("phase") == "Pending", what="Pending")
    first = wait_until(lambda: list(server.notices), what="a notice for the new test")
    assert first[0]["type"] == "custom"
    assert first[0]["key"] == TEST_CHANGED
    assert first[0]["data"] == {"namespace": "default", "name": "shop.notified"}

    for pod in cluster.jobs.create_pods("default", "shop-notified-master"):
        cluster.jobs.set_pod_phase("default", pod["metadata"]["name"], "Running")
    cluster.jobs.sync_job("default", "shop-notified-master")
    wait_until(lambda: status(client, "shop.notified").get("phase") == "Running", what="Running")
    wait_until(lambda: len(server.notices) > len(first), what="a notice for Running")
