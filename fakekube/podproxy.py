"""The ``pods/proxy`` subresource: HTTP to a pod's address, through the API server.

    GET /api/v1/namespaces/{ns}/pods/{name}[:{port}]/proxy[/{path}]   (any of the methods below)
    GET /api/v1/namespaces/{ns}/pods/http:{name}:{port}/proxy/{path}

As kube-apiserver serves it (the pod registry's ``ProxyREST`` and ``ResourceLocation``, then the
upgrade-aware proxy handler and its transport):

- The name segment is ``name``, ``name:port`` or ``scheme:name:port`` (scheme ``http`` or
  ``https``, or empty); anything else is 400 ``invalid pod request "<segment>"``. Without a port,
  the first port of the first container that declares one; without any, the address alone
  (port 80).
- The pod must exist (404 NotFound for pods) and have an address (``status.podIPs[0]``, else
  ``status.podIP``); without one: 400 BadRequest ``address not allowed``.
- Methods GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS are forwarded; others are 405. RBAC
  sees them as the verbs ``get`` (GET, HEAD), ``create``, ``update``, ``patch``, ``delete`` on
  ``pods/proxy`` with the name segment as the resource name (``master:8089``), as for any request.
- The path after ``/proxy`` is cleaned (``path.Join``: no ``.`` or ``..`` segments, no double
  slashes; a trailing slash kept), the query string, the body and the request headers are
  forwarded, except hop-by-hop headers and the credentials the apiserver consumed
  (``Authorization``, ``Impersonate-*``); ``X-Forwarded-For`` and ``X-Forwarded-Uri`` are
  added. ``.../proxy`` with no path at all answers 301 to ``.../proxy/``.
- The answer comes back as the pod sent it, streamed, with its status and headers (CORS headers
  removed, as the apiserver's transport removes them); redirects are passed on, not followed.
- When the pod cannot be reached: 503 ServiceUnavailable ``error trying to reach service: dial tcp
  127.0.0.5:8089: connect: connection refused`` (or ``... i/o timeout``, or ``EOF`` when the pod
  closes the connection without answering), the message Go's dialer and transport give.

Where the fake differs, on purpose:

- The real apiserver refuses addresses that are not global unicast (loopback among them) with
  ``address not allowed``; the fake's pods all have loopback addresses, so the fake dials only
  loopback addresses and answers any other address (such as the ``10.244.0.x`` the Job
  controller gives pods no kubelet runs) at once with 503 ``... i/o timeout``, as a real
  apiserver would after its 30 s dial timeout to an address nobody answers on.
- The real proxy waits for the pod's answer as long as the client does; the fake bounds the
  connection and every read by ``timeout`` (``FakeKube(proxy_timeout=...)``), and when the pod
  sends no response headers in time answers 503 ``error trying to reach service: net/http:
  timeout awaiting response headers`` (Go's wording for that case).
- The apiserver rewrites links in ``text/html`` answers to go through the proxy; the fake passes
  HTML unchanged. Upgrades (WebSockets) are not proxied.
"""

from __future__ import annotations

import asyncio
import ipaddress
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from .errors import GroupResource, StatusError

PODS = GroupResource("", "pods")
PROXY_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: The fake's bound on connecting to a pod and on each read of its answer, in seconds.
DEFAULT_TIMEOUT = 30.0
_SCHEMES = ("", "http", "https")
# Hop-by-hop headers (RFC 9110 section 7.6.1), which a proxy never forwards, and Host.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
# Consumed by the apiserver's authentication and impersonation filters before any handler runs.
_CREDENTIALS = ("authorization",)
_CREDENTIAL_PREFIXES = ("impersonate-",)
# What the apiserver's proxy transport strips from the pod's answer.
_CORS_HEADERS = frozenset(
    {
        "access-control-allow-credentials",
        "access-control-allow-headers",
        "access-control-allow-methods",
        "access-control-allow-origin",
        "access-control-expose-headers",
        "access-control-max-age",
    }
)


class ProxyTarget:
    """Where a proxy request goes: ``scheme://ip:port``."""

    def __init__(self, scheme: str, ip: str, port: str):
        self.scheme = scheme or "http"
        self.ip = ip
        self.port = port

    @property
    def dial_address(self) -> str:
        """How Go's dialer names the address in its errors."""
        return f"{self.ip}:{self.port or ('443' if self.scheme == 'https' else '80')}"


def split_scheme_name_port(segment: str) -> tuple[str, str, str]:
    """``utilnet.SplitSchemeNamePort``: ``name``, ``name:port`` or ``scheme:name:port``."""
    parts = segment.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, (name, port) = "", parts
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise StatusError.bad_request(f'invalid pod request "{segment}"')
    if not name or scheme not in _SCHEMES:
        raise StatusError.bad_request(f'invalid pod request "{segment}"')
    return scheme, name, port


def resource_location(pod: dict[str, Any], scheme: str, port: str) -> ProxyTarget:
    """``pod.ResourceLocation`` once the pod is found: its address and the port to use."""
    if not port:
        for container in (pod.get("spec") or {}).get("containers") or ():
            if ports := container.get("ports"):
                port = str(ports[0].get("containerPort", ""))
                break
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    ip = (ips[0].get("ip") if ips else None) or status.get("podIP") or ""
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise StatusError.bad_request("address not allowed") from None
    return ProxyTarget(scheme, ip, port)


def join_path(subpath: str) -> str:
    """``net.JoinPreservingTrailingSlash("", subpath)``, as an absolute path."""
    cleaned = posixpath.normpath("/" + subpath) if subpath else "/"
    cleaned = "/" + cleaned.lstrip("/")
    if subpath.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def _unreachable(message: str) -> StatusError:
    return StatusError(503, "ServiceUnavailable", f"error trying to reach service: {message}")


def _forwarded_headers(request: web.Request, uri: str) -> list[tuple[str, str]]:
    headers = [
        (key, value)
        for key, value in request.headers.items()
        if key.lower() not in _HOP_BY_HOP
        and key.lower() not in _CREDENTIALS
        and not key.lower().startswith(_CREDENTIAL_PREFIXES)
    ]
    peer = request.remote or ""
    prior = request.headers.get("X-Forwarded-For")
    headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
    headers.append(("X-Forwarded-For", f"{prior}, {peer}" if prior else peer))
    headers.append(("X-Forwarded-Uri", uri))
    return headers


class PodProxy:
    """Forwards proxy requests to pods; one connection pool, on the server's loop."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # Bytes pass through as the pod encoded them (Content-Encoding and all).
            self._session = aiohttp.ClientSession(
                auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(
        self,
        request: web.Request,
        target: ProxyTarget,
        subpath: str | None,
        answering: Callable[[int], None] = lambda status: None,
    ) -> web.StreamResponse:
        """Send the request on to the pod and stream its answer back; ``answering`` is called
        with the status just before the answer starts to go out."""
        if subpath is None:
            # The upgrade-aware handler redirects an empty location path to the URL plus "/".
            query = (
                f"?{request.rel_url.raw_query_string}" if request.rel_url.raw_query_string else ""
            )
            return web.Response(status=301, headers={"Location": f"{request.path}/{query}"})
        if request.method not in PROXY_METHODS:
            raise StatusError.method_not_allowed()
        if not ipaddress.ip_address(target.ip).is_loopback:
            raise _unreachable(f"dial tcp {target.dial_address}: i/o timeout")
        if target.port and not target.port.isdigit():
            raise _unreachable(f"dial tcp: lookup tcp/{target.port}: unknown port")
        path = quote(join_path(subpath), safe="/:@!$&'()*+,;=-._~")
        host = f"[{target.ip}]" if ":" in target.ip else target.ip
        url = f"{target.scheme}://{host}{':' + target.port if target.port else ''}{path}"
        if request.rel_url.raw_query_string:
            url += f"?{request.rel_url.raw_query_string}"
        body = await request.read() if request.can_read_body else None
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout, sock_read=self.timeout
        )
        try:
            upstream = await self._client().request(
                request.method,
                aiohttp.client.URL(url, encoded=True),
                headers=_forwarded_headers(request, request.path),
                data=body,
                allow_redirects=False,
                timeout=timeout,
                ssl=False,
            )
        except aiohttp.ClientConnectorError as error:
            cause = error.os_error
            if isinstance(cause, ConnectionRefusedError):
                raise _unreachable(
                    f"dial tcp {target.dial_address}: connect: connection refused"
                ) from None
            reason = cause.strerror or str(cause)
            raise _unreachable(f"dial tcp {target.dial_address}: connect: {reason}") from None
        except aiohttp.ConnectionTimeoutError:
            raise _unreachable(f"dial tcp {target.dial_address}: i/o timeout") from None
        except (aiohttp.SocketTimeoutError, asyncio.TimeoutError):
            raise _unreachable("net/http: timeout awaiting response headers") from None
        except aiohttp.ServerDisconnectedError:
            raise _unreachable("EOF") from None
        except aiohttp.ClientError as error:
            raise _unreachable(str(error)) from None
        async with upstream:
            return await self._relay(request, upstream, answering)

    @staticmethod
    async def _relay(
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        answering: Callable[[int], None],
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            lowered = key.lower()
            if lowered in _HOP_BY_HOP or lowered in _CORS_HEADERS or lowered == "content-length":
                continue
            response.headers.add(key, value)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        answering(upstream.status)
        try:
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            # The pod broke off mid-answer, or the client went away: the proxy breaks off too,
            # as the apiserver's does, without a word in its log.
            if request.transport is not None:
                request.transport.abort()
        return response
