"""Helpers for the runtime's tests: a lightkube AsyncClient on the fake API server, and waiting
for observable state from inside the test's event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lightkube import AsyncClient
from lightkube.config.kubeconfig import KubeConfig

from fakekube.requestlog import RequestRecord
from fakekube.server import FakeKube

T = TypeVar("T")

# Generous: the machine is shared, and a test that waits longer than it needs costs nothing.
TIMEOUT = 20.0


@pytest.fixture
async def client(kubeconfig: Path) -> AsyncIterator[AsyncClient]:
    """lightkube's AsyncClient, configured from the fake API server's kubeconfig file."""
    kube = AsyncClient(config=KubeConfig.from_file(kubeconfig), field_manager="tests")
    yield kube
    await kube.close()


async def eventually(
    check: Callable[[], T], what: str, timeout: float = TIMEOUT, interval: float = 0.01
) -> T:
    """Poll `check` (letting the loop run in between) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


def requests_for(
    kube: FakeKube, resource: str, verb: str | None = None, **fields: Any
) -> list[RequestRecord]:
    """The fake API server's log of requests for `resource`, optionally of one verb."""
    return [
        r
        for r in kube.requests
        if r.resource == resource
        and (verb is None or r.verb == verb)
        and all(getattr(r, name) == value for name, value in fields.items())
    ]


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog, recording the operator's own loggers down to DEBUG."""
    caplog.set_level(logging.DEBUG, logger="reconciler")
    return caplog


def messages(caplog: pytest.LogCaptureFixture, logger: str, level: int = logging.DEBUG) -> str:
    """Every message `logger` (or a child of it) logged at `level` or above, one per line."""
    return "\n".join(
        r.getMessage()
        for r in caplog.records
        if (r.name == logger or r.name.startswith(f"{logger}.")) and r.levelno >= level
    )
