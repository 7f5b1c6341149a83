"""Requests lightkube has no call for, sent through its own connection and credentials: the
API server's `/version`, and GETs through the pod proxy."""

from __future__ import annotations

from typing import Any

import httpx2
from lightkube import AsyncClient


def _http(client: AsyncClient) -> httpx2.AsyncClient:
    # lightkube keeps its configured HTTP client (base URL, TLS, credentials) here.
    return client._client._client


async def get_json(client: AsyncClient, path: str, *, timeout: float) -> Any:
    """GET `path` from the API server and decode the JSON answer; raises httpx2 errors, and
    `httpx2.HTTPStatusError` for a non-2xx answer."""
    response = await _http(client).get(path, timeout=timeout)
    response.raise_for_status()
    return response.json()
