"""Requests lightkube has no call for, sent through its own connection and credentials: the
API server's `/version`, and requests through the pod proxy; plus `LocustWebApi`, one Locust
master's web API, read through the pod proxy or straight from the pod's address."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx2
from lightkube import AsyncClient

#: The Locust master's web UI and API port (Locust's default, and the master container's).
LOCUST_WEB_PORT = 8089
_UNREACHABLE = "WebApiUnreachable"
_INVALID = "InvalidResponse"


def _http(client: AsyncClient) -> httpx2.AsyncClient:
    # lightkube keeps its configured HTTP client (base URL, TLS, credentials) here.
    return client._client._client


async def get_json(client: AsyncClient, path: str, *, timeout: float) -> Any:
    """GET `path` from the API server and decode the JSON answer; raises httpx2 errors, and
    `httpx2.HTTPStatusError` for a non-2xx answer."""
    response = await _http(client).get(path, timeout=timeout)
    response.raise_for_status()
    return response.json()


def pod_proxy_path(namespace: str, pod: str, port: int, path: str) -> str:
    """`/api/v1/namespaces/<ns>/pods/<pod>:<port>/proxy/<path>`."""
    return (
        f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}:{port}"
        f"/proxy/{path.lstrip('/')}"
    )


async def pod_proxy(
    client: AsyncClient,
    method: str,
    namespace: str,
    pod: str,
    port: int,
    path: str,
    *,
    timeout: float,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """Send `method path` to the pod's `port` through the API server's pod proxy (RBAC: the
    verb of the method on `pods/proxy`). Raises httpx2's transport errors; any answer, 2xx or
    not, is returned as it is (the API server's own refusals are `Status` objects)."""
    return await _http(client).request(
        method,
        pod_proxy_path(namespace, pod, port, path),
        content=content,
        headers=headers,
        timeout=timeout,
    )


async def direct(
    http: httpx2.AsyncClient,
    method: str,
    pod_ip: str,
    port: int,
    path: str,
    *,
    timeout: float,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx2.Response:
    """The same request straight to the pod's address (in-cluster: no API server, no
    credentials). `http` is a plain client the caller shares between pods."""
    return await http.request(
        method, pod_url(pod_ip, port, path), content=content, headers=headers, timeout=timeout
    )


def pod_url(pod_ip: str, port: int, path: str) -> str:
    """`http://<pod IP>:<port>/<path>`, an IPv6 address in brackets."""
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"http://{host}:{port}/{path.lstrip('/')}"


class WebApiError(Exception):
    """A Locust web API request that gave no usable answer. `reason` is a condition reason:
    `WebApiUnreachable` (no answer from the master, or the API server refused or could not
    reach it) or `InvalidResponse` (the master answered, but not with what was asked for)."""

    def __init__(self, reason: str, message: str, status_code: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status_code = status_code


def _api_server_status(response: httpx2.Response) -> str | None:
    """The message of a `Status` the API server answered with instead of the pod, if it is one."""
    if response.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("apiVersion") == "v1":
        return str(body.get("message") or body.get("reason") or "")
    return None


class LocustWebApi:
    """One Locust master's web API (`/stats/requests`, `/stop`, `/stats/report`).

    `via_proxy=True` (the default) goes through the API server's pod proxy with `client`'s
    credentials, which needs `get` and `create` on `pods/proxy`; `via_proxy=False` goes to
    `pod_ip` directly with `http` (a plain client, shared between masters), which needs the
    operator to run in the cluster's network. Every method raises `WebApiError` when there
    is no usable answer, with a one-line message naming the pod and the path.
    """

    def __init__(
        self,
        namespace: str,
        pod: str,
        *,
        client: AsyncClient | None = None,
        pod_ip: str | None = None,
        http: httpx2.AsyncClient | None = None,
        via_proxy: bool = True,
        port: int = LOCUST_WEB_PORT,
        timeout: float = 10.0,
    ):
        if via_proxy and client is None:
            raise ValueError("LocustWebApi: via_proxy needs the API client")
        if not via_proxy and (http is None or not pod_ip):
            raise ValueError("LocustWebApi: without the proxy it needs http and pod_ip")
        self.namespace = namespace
        self.pod = pod
        self.via_proxy = via_proxy
        self.port = port
        self.timeout = timeout
        self._client = client
        self._pod_ip = pod_ip or ""
        self._plain = http

    def _endpoint(self, path: str) -> tuple[httpx2.AsyncClient, str]:
        """The client and URL a request for `path` goes through."""
        if self.via_proxy:
            assert self._client is not None
            return _http(self._client), pod_proxy_path(self.namespace, self.pod, self.port, path)
        assert self._plain is not None
        return self._plain, pod_url(self._pod_ip, self.port, path)

    def _where(self, path: str) -> str:
        return f"{self.namespace}/{self.pod}:{self.port}/{path.lstrip('/')}"

    async def request(
        self, method: str, path: str, content: bytes | None = None, form: bool = False
    ) -> httpx2.Response:
        """The answer to `method path`, whatever its status; `WebApiError` when there is none,
        or when the API server answered instead of the master."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else None
        http, url = self._endpoint(path)
        try:
            response = await http.request(
                method, url, content=content, headers=headers, timeout=self.timeout
            )
        except httpx2.TimeoutException:
            raise WebApiError(
                _UNREACHABLE, f"{self._where(path)}: no answer within {self.timeout:g}s"
            ) from None
        except httpx2.TransportError as error:
            raise WebApiError(
                _UNREACHABLE, f"{self._where(path)}: {type(error).__name__}: {error}"
            ) from None
        if self.via_proxy and not response.is_success:
            refused = _api_server_status(response)
            if refused is not None:
                raise WebApiError(
                    _UNREACHABLE,
                    f"{self._where(path)}: HTTP {response.status_code}: {refused}",
                    response.status_code,
                )
        return response

    async def _ok(self, method: str, path: str, content: bytes | None = None) -> httpx2.Response:
        response = await self.request(method, path, content, form=content is not None)
        if not response.is_success:
            raise WebApiError(
                _INVALID,
                f"{self._where(path)}: the master answered HTTP {response.status_code}",
                response.status_code,
            )
        return response

    async def get_json(self, path: str) -> Any:
        """GET `path` and decode its JSON body (`/stats/requests`)."""
        response = await self._ok("GET", path)
        try:
            return response.json()
        except ValueError:
            raise WebApiError(
                _INVALID, f"{self._where(path)}: the answer is not JSON", response.status_code
            ) from None

    async def get_bytes(self, path: str) -> bytes:
        """GET `path` and return its body as sent (`/stats/report`)."""
        return (await self._ok("GET", path)).content

    async def post(self, path: str, content: bytes = b"") -> httpx2.Response:
        """POST `path` with a form body (`/stop` takes none); the 2xx answer."""
        return await self._ok("POST", path, content)
