"""The conversion webhook: the apiserver POSTs ConversionReviews to /convert over HTTPS.

Every replica serves it, leader or not, because the apiserver reaches whichever pod its Service
picks. The conversion itself is pure (`api.conversion.review`); this module is only the transport:
a small HTTP/1.1 server over TLS, with the serving certificate read from WEBHOOK_CERT_DIR.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from pathlib import Path

from ..api.conversion import review

log = logging.getLogger(__name__)

CONVERT_PATH = "/convert"
MAX_BODY = 32 * 1024 * 1024  # the apiserver's own request size limit is 3 MiB per object
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
}


class ConversionWebhook:
    def __init__(self, cert_dir: Path, port: int, host: str = "0.0.0.0"):
        self._cert = cert_dir / "tls.crt"
        self._key = cert_dir / "tls.key"
        self._port = port
        self._host = host
        self._server: asyncio.base_events.Server | None = None
        self.serving = False

    async def run(self) -> None:
        """Wait for the certificate files, then serve until cancelled."""
        waited = 0
        while not (self._cert.exists() and self._key.exists()):
            if waited % 30 == 0:
                log.warning(
                    "Waiting for the webhook certificate %s and key %s", self._cert, self._key
                )
            await asyncio.sleep(1)
            waited += 1
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._cert, self._key)
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, ssl=context
        )
        self.serving = True
        log.info("Serving the conversion webhook on port %d (%s)", self._port, CONVERT_PATH)
        try:
            await self._server.serve_forever()
        finally:
            self.serving = False
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request on a keep-alive connection; False when the client is done."""
        request_line = await asyncio.wait_for(reader.readline(), 60)
        if not request_line:
            return False
        method, path, _ = [*request_line.decode("latin-1").split(" ", 2), "", ""][:3]
        headers = {}
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY:
            await _respond(writer, 413, {"error": "request too large"})
            return False
        body = await reader.readexactly(length) if length else b""
        if path.split("?", 1)[0] != CONVERT_PATH:
            await _respond(writer, 404, {"error": "not found"})
        elif method != "POST":
            await _respond(writer, 405, {"error": "method not allowed"})
        else:
            try:
                request = json.loads(body)
            except ValueError:
                await _respond(writer, 400, {"error": "the body is not JSON"})
                return headers.get("connection", "").lower() != "close"
            await _respond(writer, 200, review(request))
        return headers.get("connection", "").lower() != "close"


async def _respond(writer: asyncio.StreamWriter, status: int, payload: object) -> None:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
