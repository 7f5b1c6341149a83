"""The operator's small HTTP endpoints: /healthz, /readyz and /metrics.

A few lines of asyncio instead of a web framework: the endpoints answer GETs with short bodies, and
the operator's memory budget is better spent elsewhere.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

Check = Callable[[], "tuple[bool, str]"]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class Probes:
    """Serves health on one port and metrics on another (or both on one)."""

    def __init__(self, *, alive: Check, ready: Check):
        self._alive = alive
        self._ready = ready
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self, health_port: int, metrics_port: int, host: str = "0.0.0.0") -> None:
        ports: dict[int, set[str]] = {}
        if health_port:
            ports.setdefault(health_port, set()).update({"/healthz", "/readyz"})
        if metrics_port:
            ports.setdefault(metrics_port, set()).add("/metrics")
        for port, paths in ports.items():
            server = await asyncio.start_server(
                functools.partial(self._handle, paths=paths), host, port
            )
            self._servers.append(server)
            log.info("Serving %s on port %d", ", ".join(sorted(paths)), port)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, paths: set[str]
    ) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 10)
            while (await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
                pass  # headers carry nothing these endpoints need
            method, _, rest = request_line.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            status, content_type, body = self._respond(method, path, paths)
            head = (
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (body if method != "HEAD" else b""))
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _respond(self, method: str, path: str, paths: set[str]) -> tuple[int, str, bytes]:
        if path not in paths:
            return 404, "text/plain", b"not found\n"
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"method not allowed\n"
        if path == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest()
        ok, detail = (self._alive if path == "/healthz" else self._ready)()
        return (200 if ok else 503), "text/plain", f"{detail}\n".encode()
