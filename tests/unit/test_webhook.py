"""The conversion webhook's HTTPS transport: ConversionReviews in, converted objects out."""

from __future__ import annotations

import asyncio
import json
import ssl

import pytest

from fakekube.sandbox import free_port
from reconciler.runtime.webhook import ConversionWebhook
from tests.certs import serving_certificate
from tests.unit.runtime_support import eventually, logs, messages

__all__ = ["logs"]  # fixture

V1_TEST = {
    "apiVersion": "locust.io/v1",
    "kind": "LocustTest",
    "metadata": {"name": "demo", "namespace": "default", "uid": "u-1"},
    "spec": {
        "image": "locustio/locust:2.47.0",
        "masterCommandSeed": "-f /lotest/src/a.py",
        "workerCommandSeed": "-f /lotest/src/a.py",
        "workerReplicas": 2,
    },
}


async def _post(port: int, ca: bytes, path: str, body: bytes, method: str = "POST") -> tuple:
    context = ssl.create_default_context(cadata=ca.decode())
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="locust-operator.model.svc"
    )
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


@pytest.fixture
async def webhook(tmp_path):
    certificate = serving_certificate("locust-operator.model.svc")
    server = ConversionWebhook(certificate.write(tmp_path), free_port(), host="127.0.0.1")
    task = asyncio.create_task(server.run())
    await eventually(lambda: server.serving or task.done(), "the webhook to serve")
    yield server, certificate.ca_pem
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_review_is_answered_with_the_converted_objects(webhook):
    server, ca = webhook
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "r-1", "desiredAPIVersion": "locust.io/v2", "objects": [V1_TEST]},
    }
    status, payload = await _post(server._port, ca, "/convert", json.dumps(review).encode())
    assert status == 200
    answer = json.loads(payload)
    assert answer["response"]["uid"] == "r-1"
    assert answer["response"]["result"]["status"] == "Success"
    (converted,) = answer["response"]["convertedObjects"]
    assert converted["apiVersion"] == "locust.io/v2"
    assert converted["spec"]["worker"]["replicas"] == 2


async def test_other_paths_methods_and_bodies_are_refused(webhook):
    server, ca = webhook
    assert (await _post(server._port, ca, "/other", b"{}"))[0] == 404
    assert (await _post(server._port, ca, "/convert", b"", method="GET"))[0] == 405
    assert (await _post(server._port, ca, "/convert", b"not json"))[0] == 400


async def test_it_waits_for_the_certificate_before_serving(tmp_path, logs):
    cert_dir = tmp_path / "certs"
    server = ConversionWebhook(cert_dir, free_port(), host="127.0.0.1")
    task = asyncio.create_task(server.run())
    try:
        # The warning is logged once the webhook has looked for the files and found none.
        await eventually(
            lambda: "Waiting for the webhook certificate" in messages(logs, "reconciler"),
            "the webhook to look for its certificate",
        )
        assert not server.serving
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", server._port)

        # Both files at once, as a Secret volume's atomic update delivers them.
        certificate = serving_certificate("locust-operator.model.svc")
        certificate.write(tmp_path / "staged").rename(cert_dir)
        await eventually(lambda: server.serving, "the webhook to serve")
        status, _ = await _post(server._port, certificate.ca_pem, "/convert", b"not json")
        assert status == 400
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
