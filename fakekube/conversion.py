"""Converters between a CRD's versions: strategy ``None``, or a conversion webhook.

A webhook is called the way the apiserver calls it: a ``ConversionReview`` (``v1``, or ``v1beta1``
if the CRD lists that first) POSTed as JSON over HTTPS to ``clientConfig.url``, or to
``https://<service>.<namespace>.svc:<port><path>``, with ``?timeout=30s``; the server certificate
is verified against ``caBundle`` for that host name. The answer is checked as the apiserver checks
it (the review's uid and result, the object count, each object's apiVersion, kind, name,
namespace and uid), and each object's ``metadata`` is replaced by the original's, keeping only the
webhook's labels and annotations. Every failure becomes the apiserver's error: ``500`` with ``conversion
webhook for <group/version>, Kind=<Kind> failed: ...``.

There is no cluster network, so a Service reference reaches a webhook through
``WebhookClient.service_resolver``: ``(namespace, name, port) -> (host, port)``, which a test sets
(``FakeKube.service_resolver``), e.g. ``lambda ns, name, port: ("127.0.0.1", 9443)``. TLS still
verifies the certificate for ``<name>.<namespace>.svc``. Only loopback addresses are ever called.

A call blocks the fake's event loop until the webhook answers (the request that needs the
conversion waits in the apiserver too): serve the webhook from another thread or process, never
from fakekube's own loop.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import socket
import ssl
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from .errors import StatusError
from .patch import clone
from .validation.meta import labels as validate_labels

ServiceResolver = Callable[[str, str, int], tuple[str, int]]
REVIEW_GROUP = "apiextensions.k8s.io"
REVIEW_VERSIONS = ("v1", "v1beta1")  # the ConversionReview versions the apiserver speaks
DEFAULT_TIMEOUT = 30.0  # conversion webhooks get the apiserver's fixed 30s, and are told so
_TIMEOUT_QUERY = "?timeout=30s"
# OpenSSL's codes for "no trusted issuer" (7: a CA of the same name did not sign it), which Go
# reports as one UnknownAuthorityError.
_UNKNOWN_AUTHORITY = {2, 7, 18, 19, 20, 21}


class Converter(Protocol):
    def convert(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        """New objects: ``objects`` (none in ``api_version`` yet) in ``api_version``, in order."""
        ...


class NoneConverter:
    """Strategy ``None``: only ``apiVersion`` changes."""

    def convert(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        # New objects, as a webhook's would be: what becomes of them must not touch the originals.
        return [{**clone(obj), "apiVersion": api_version} for obj in objects]


class WebhookCallError(Exception):
    """A failed call, worded as Go's HTTP client words it (``Post "<url>": <reason>``)."""


class ServiceReference(NamedTuple):
    namespace: str
    name: str
    port: int
    path: str

    @property
    def dns_name(self) -> str:
        return f"{self.name}.{self.namespace}.svc"


@dataclass(frozen=True)
class WebhookEndpoint:
    """Where a webhook listens, from a CRD's ``spec.conversion.webhook.clientConfig``."""

    ca_bundle: str  # base64 of PEM certificates; empty means the system's trust roots
    url: str | None = None
    service: ServiceReference | None = None

    @classmethod
    def from_client_config(cls, config: dict[str, Any]) -> WebhookEndpoint:
        ca_bundle = config.get("caBundle") or ""
        service = config.get("service")
        if service is None:
            return cls(ca_bundle, url=config["url"])
        reference = ServiceReference(
            service["namespace"],
            service["name"],
            service.get("port") or 443,
            service.get("path") or "",
        )
        return cls(ca_bundle, service=reference)

    @property
    def server_name(self) -> str:
        """The host name the certificate must be valid for."""
        if self.service is not None:
            return self.service.dns_name
        return urlsplit(self.url).hostname or ""

    @property
    def host(self) -> str:
        """The ``Host`` header: the Service's DNS name and port, or the URL's host."""
        if self.service is not None:
            return f"{self.service.dns_name}:{self.service.port}"
        return urlsplit(self.url).netloc

    @property
    def path(self) -> str:
        path = self.service.path if self.service is not None else urlsplit(self.url).path
        return f"{path or '/'}{_TIMEOUT_QUERY}"

    @property
    def address(self) -> str:
        """The URL as the apiserver reports it in errors."""
        if self.service is not None:
            return f"https://{self.host}{self.service.path}{_TIMEOUT_QUERY}"
        return f"{self.url}{_TIMEOUT_QUERY}"

    def tls_context(self) -> ssl.SSLContext:
        try:
            pem = base64.b64decode(self.ca_bundle, validate=True) if self.ca_bundle else None
            return ssl.create_default_context(cadata=pem.decode() if pem else None)
        except (ValueError, ssl.SSLError):
            raise WebhookCallError(
                "unable to load root certificates: unable to parse bytes as PEM block"
            ) from None


class WebhookClient:
    """How fakekube reaches webhooks: service resolution, TLS verification, one POST per call."""

    def __init__(self) -> None:
        self.service_resolver: ServiceResolver | None = None
        self.timeout = DEFAULT_TIMEOUT

    def post(self, endpoint: WebhookEndpoint, body: dict[str, Any]) -> Any:
        """POST ``body`` as JSON; the decoded JSON answer, or WebhookCallError."""
        try:
            host, port = self._target(endpoint)
            status, payload = self._exchange(endpoint, host, port, json.dumps(body).encode())
        except WebhookCallError as error:
            raise WebhookCallError(f'Post "{endpoint.address}": {error}') from None
        if not 200 <= status < 300:
            raise WebhookCallError(_http_error(status, payload))
        try:
            return json.loads(payload)
        except ValueError as error:
            raise WebhookCallError(f"error decoding response: {error}") from None

    def _target(self, endpoint: WebhookEndpoint) -> tuple[str, int]:
        if endpoint.service is not None:
            namespace, name, port, _ = endpoint.service
            if self.service_resolver is None:
                raise WebhookCallError(
                    f'no route to service "{namespace}/{name}": set FakeKube.service_resolver'
                )
            host, port = self.service_resolver(namespace, name, port)
        else:
            parts = urlsplit(endpoint.url)
            host, port = parts.hostname or "", parts.port or 443
        host = "127.0.0.1" if host == "localhost" else host
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise WebhookCallError(
                f"fakekube only calls webhooks on loopback addresses, not {host}"
            )
        return host, port

    def _exchange(
        self, endpoint: WebhookEndpoint, host: str, port: int, body: bytes
    ) -> tuple[int, bytes]:
        context = endpoint.tls_context()
        try:
            raw = socket.create_connection((host, port), timeout=self.timeout)
        except ConnectionRefusedError:
            raise WebhookCallError(
                f"dial tcp {host}:{port}: connect: connection refused"
            ) from None
        except TimeoutError:
            raise WebhookCallError("context deadline exceeded") from None
        except OSError as error:
            raise WebhookCallError(f"dial tcp {host}:{port}: {error.strerror}") from None
        # Connect to the resolved address, but verify (and send SNI for) the Service's DNS name,
        # which the Host header names too, as in the apiserver's request.
        connection = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            connection.sock = context.wrap_socket(raw, server_hostname=endpoint.server_name)
            connection.request(
                "POST",
                endpoint.path,
                body,
                {
                    "Host": endpoint.host,
                    "Content-Type": "application/json",
                    "Accept": "application/json, */*",
                },
            )
            response = connection.getresponse()
            return response.status, response.read()
        except ssl.SSLCertVerificationError as error:
            reason = (
                "certificate signed by unknown authority"
                if error.verify_code in _UNKNOWN_AUTHORITY
                else error.verify_message
            )
            raise WebhookCallError(f"tls: failed to verify certificate: x509: {reason}") from None
        except TimeoutError:
            raise WebhookCallError("context deadline exceeded") from None
        except (OSError, http.client.HTTPException) as error:
            raise WebhookCallError(str(error) or error.__class__.__name__) from None
        finally:
            connection.close()
            raw.close()


def _http_error(status: int, payload: bytes) -> str:
    """client-go's errors for a non-2xx answer."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("kind") == "Status" and document.get("message"):
        return str(document["message"])
    if status == 404:
        return "the server could not find the requested resource"
    if payload:
        text = payload.decode(errors="replace").strip()
        return f'an error on the server ("{text}") has prevented the request from succeeding'
    return (
        f"the server responded with the status code {status} but did not return more information"
    )


class WebhookConverter:
    """Strategy ``Webhook``: one ConversionReview per conversion, however many objects it holds."""

    def __init__(
        self,
        client: WebhookClient,
        endpoint: WebhookEndpoint,
        review_versions: list[str],
    ):
        self._client = client
        self._endpoint = endpoint
        # The apiserver sends the first ConversionReview version of the CRD's list it speaks.
        self._review_version = next(v for v in review_versions if v in REVIEW_VERSIONS)

    def convert(self, objects: list[dict[str, Any]], api_version: str) -> list[dict[str, Any]]:
        source = f"{objects[0]['apiVersion']}, Kind={objects[0]['kind']}"
        uid = str(uuid.uuid4())
        review = {
            "kind": "ConversionReview",
            "apiVersion": f"{REVIEW_GROUP}/{self._review_version}",
            "request": {"uid": uid, "desiredAPIVersion": api_version, "objects": objects},
            "response": {"uid": "", "convertedObjects": None, "result": {"metadata": {}}},
        }
        try:
            answer = self._client.post(self._endpoint, review)
            converted = self._converted_objects(answer, uid)
        except WebhookCallError as error:
            raise conversion_failure(f"conversion webhook for {source} failed: {error}") from None
        if len(converted) != len(objects):
            raise conversion_failure(
                f"conversion webhook for {source} returned {len(converted)} objects, "
                f"expected {len(objects)}"
            )
        single = len(objects) == 1
        results = []
        # The apiserver numbers list positions from 1 in these errors (it counts, then reports).
        for position, (original, result) in enumerate(zip(objects, converted), start=1):
            at = "object at index 0" if single else f"converted object at index {position}"
            if not isinstance(result, dict):
                raise conversion_failure(f"conversion webhook for {source} returned invalid {at}")
            if problem := _type_problem(original, result, api_version):
                raise conversion_failure(
                    f"conversion webhook for {source} returned invalid {at}: {problem}"
                )
            if problem := _identity_problem(original, result):
                where = "object" if single else at
                raise conversion_failure(
                    f"conversion webhook for {source} returned invalid {where}: {problem}"
                )
            try:
                results.append(_restore_metadata(original, result))
            except _MetadataError as error:
                where = "metadata" if single else f"metadata in object at index {position}"
                raise conversion_failure(
                    f"conversion webhook for {source} returned invalid {where}: {error}"
                ) from None
        return results

    def _converted_objects(self, answer: Any, uid: str) -> list[Any]:
        if not isinstance(answer, dict):
            raise WebhookCallError("unrecognized response")
        if self._review_version == "v1":
            expected = f"{REVIEW_GROUP}/v1, Kind=ConversionReview"
            got = f"{answer.get('apiVersion', '')}, Kind={answer.get('kind', '')}"
            if got != expected:
                raise WebhookCallError(f"expected webhook response of {expected}, got {got}")
        response = answer.get("response")
        if not isinstance(response, dict):
            raise WebhookCallError("no response provided")
        if self._review_version == "v1" and response.get("uid") != uid:
            raise WebhookCallError(
                f'expected response.uid="{uid}", got "{response.get("uid", "")}"'
            )
        result = response.get("result") or {}
        if result.get("status") != "Success":
            raise WebhookCallError(
                result.get("message")
                or f"response.result.status was '{result.get('status', '')}', not 'Success'"
            )
        return list(response.get("convertedObjects") or ())


def conversion_failure(message: str) -> StatusError:
    # The apiserver passes conversion errors on as they are: 500, with no reason.
    return StatusError(500, "", message)


def _type_problem(original: dict[str, Any], result: dict[str, Any], api_version: str) -> str:
    if result.get("apiVersion") != api_version:
        received = result.get("apiVersion", "")
        return f"invalid groupVersion (expected {api_version}, received {received})"
    if result.get("kind") != original["kind"]:
        return f"invalid kind (expected {original['kind']}, received {result.get('kind', '')})"
    return ""


def _identity_problem(original: dict[str, Any], result: dict[str, Any]) -> str:
    """``validateConvertedObject``: a webhook may not rename or move an object."""
    before, after = original["metadata"], result.get("metadata") or {}
    for key, label in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        if before.get(key, "") != after.get(key, ""):
            return f"must have the same {label}: {before.get(key, '')} != {after.get(key, '')}"
    return ""


class _MetadataError(Exception):
    """Metadata a webhook may not return."""


def _restore_metadata(original: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """``restoreObjectMeta``: the original's metadata, with the webhook's labels and annotations."""
    returned = result.get("metadata")
    if not isinstance(returned, dict):
        raise _MetadataError("missing metadata in converted object")
    metadata = {
        k: v for k, v in original["metadata"].items() if k not in ("labels", "annotations")
    }
    for key in ("labels", "annotations"):
        values = returned.get(key)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise _MetadataError(f"invalid metadata.{key} type: {type(values).__name__}")
        for name, value in values.items():
            if not isinstance(value, str):
                raise _MetadataError(
                    f"metadata.{key}[{name}] must be a string, but is {type(value).__name__}"
                )
        if key == "labels" and (errors := validate_labels(values, "metadata.labels")):
            raise _MetadataError(", ".join(map(str, errors)))
        metadata[key] = values
    return {**result, "metadata": metadata}
