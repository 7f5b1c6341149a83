"""The health and metrics endpoints answer as kubelet probes and Prometheus expect."""

import asyncio

from reconciler.runtime.metrics import CONTROLLER, RECONCILE_TOTAL
from reconciler.runtime.probes import Probes
from fakekube.sandbox import free_port


async def _get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = (await reader.read()).decode()
    writer.close()
    head, _, body = response.partition("\r\n\r\n")
    return int(head.split()[1]), body


async def test_readyz_follows_the_readiness_check_and_healthz_stays_up():
    state = {"ready": False}
    probes = Probes(
        alive=lambda: (True, "ok"),
        ready=lambda: (state["ready"], "ok" if state["ready"] else "waiting"),
    )
    health, metrics = free_port(), free_port()
    await probes.start(health, metrics, host="127.0.0.1")
    try:
        assert await _get(health, "/healthz") == (200, "ok\n")
        assert await _get(health, "/readyz") == (503, "waiting\n")
        state["ready"] = True
        assert await _get(health, "/readyz") == (200, "ok\n")
        assert (await _get(health, "/metrics"))[0] == 404  # metrics live on their own port
        assert (await _get(health, "/readyz", method="POST"))[0] == 405
    finally:
        await probes.stop()


async def test_metrics_use_controller_runtime_names():
    RECONCILE_TOTAL.labels(CONTROLLER, "success").inc()
    probes = Probes(alive=lambda: (True, "ok"), ready=lambda: (True, "ok"))
    port = free_port()
    await probes.start(0, port, host="127.0.0.1")
    try:
        status, body = await _get(port, "/metrics")
    finally:
        await probes.stop()
    assert status == 200
    assert 'controller_runtime_reconcile_total{controller="locusttest",result="success"}' in body
    assert "# TYPE controller_runtime_reconcile_time_seconds histogram" in body


async def test_one_port_can_serve_health_and_metrics():
    probes = Probes(alive=lambda: (True, "ok"), ready=lambda: (True, "ok"))
    port = free_port()
    await probes.start(port, port, host="127.0.0.1")
    try:
        assert (await _get(port, "/healthz"))[0] == 200
        assert (await _get(port, "/metrics"))[0] == 200
    finally:
        await probes.stop()
