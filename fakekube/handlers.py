"""HTTP in front of ``ApiServer``: the apiserver's URL layout, query parameters and content types."""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import yaml
from aiohttp import web

from .apiserver import ApiServer
from .authn import UserInfo, impersonated_user, impersonation_requests
from .discovery import (
    DEFAULT_KUBERNETES_VERSION,
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    version_info,
)
from .errors import REASON_FOR_CODE, StatusError
from .faults import FaultInjector, FaultRule
from .fieldvalidation import FieldValidation
from .openapi import Document, OpenApiPublisher
from .patch import APPLY_PATCH, JSON_PATCH
from .podproxy import PodProxy, resource_location, split_scheme_name_port
from .protobuf import PROTOBUF
from .protobuf import decode as decode_protobuf
from .rbac import Attributes, forbidden
from .requestlog import RequestInfo, RequestLog, is_true
from .resources import BACKGROUND, ORPHAN, ResourceType
from .reviews import ReviewStrategy
from .selectors import FieldSelector, LabelSelector
from .tables import to_table, wants_table
from .watch import BOOKMARK, ERROR, Watcher, event_line

JSON = "application/json"
BODY_TYPES = (JSON, "application/yaml")
# Set on a request whose log entry was written early (a watch is logged when its stream opens).
LOGGED = web.RequestKey("logged", bool)
# Set on a request to a deprecated version: its warning goes out with whatever the answer is.
DEPRECATION = web.RequestKey("deprecation", str)
# Who the request runs as, once authenticated (and impersonation applied).
USER = web.RequestKey("user", UserInfo)
# --max-request-body-bytes' default: larger bodies are refused before they are decoded.
MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024
# Without timeoutSeconds the apiserver ends a watch after a random 30-60 minutes.
DEFAULT_WATCH_SECONDS = 1800
_encode = msgspec.json.encode


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # Exactly "application/json", no charset: lightkube raises ApiError only for that content type.
    return web.Response(
        body=_encode(body), status=status, headers={"Content-Type": JSON, **(headers or {})}
    )


def _warning_header(text: str) -> str:
    """``net.NewWarningHeader(299, "-", text)``: quoted, with quotes and backslashes escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'299 - "{escaped}"'


async def _send_deprecation_warning(request: web.Request, response: web.StreamResponse) -> None:
    if warning := request.get(DEPRECATION):
        # The deprecation warning is recorded before the request is decoded: it comes first.
        others = response.headers.getall("Warning", [])
        response.headers["Warning"] = _warning_header(warning)
        for other in others:
            response.headers.add("Warning", other)


def _with_warnings(response: web.Response, validation: FieldValidation) -> web.Response:
    for warning in validation.warnings:
        response.headers.add("Warning", _warning_header(warning))
    return response


def status_response(error: StatusError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.status, error.code, headers)


def _dry_run(query: Any) -> bool:
    values = query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise StatusError.bad_request(
                f'Invalid dryRun value: "{value}"; supported values: "All"'
            )
    return bool(values)


def _accepts_json(request: web.Request) -> bool:
    """Whether the Accept header admits JSON, the only encoding of OpenAPI the fake has (the
    apiserver also has protobuf, and answers 406 when neither is acceptable)."""
    for clause in (request.headers.get("Accept") or "*/*").split(","):
        media_range, *params = (part.strip() for part in clause.split(";"))
        quality = next((p[2:] for p in params if p.startswith("q=")), "1")
        try:
            refused = float(quality) == 0
        except ValueError:
            refused = False
        if not refused and media_range.lower() in (JSON, "application/*", "*/*"):
            return True
    return False


def _document_response(
    request: web.Request, document: Document, headers: dict[str, str] | None = None
) -> web.Response:
    """An OpenAPI document with its ETag; 304 when the client already has it."""
    etag = f'"{document.etag}"'
    headers = {"ETag": etag, **(headers or {})}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=document.body, headers={"Content-Type": JSON, **headers})


def _media_type(request: web.Request) -> str | None:
    header = request.headers.get("Content-Type")
    return header.split(";", 1)[0].strip().lower() if header else None


def user_name(request: web.Request) -> str:
    """The name of the user the request runs as, for the request log ("" before authentication)."""
    user = request.get(USER)
    return user.name if user is not None else ""


async def _read_limited(request: web.Request) -> bytes:
    raw = await request.read()
    if len(raw) > MAX_REQUEST_BODY_BYTES:
        raise StatusError.request_entity_too_large(f"limit is {MAX_REQUEST_BODY_BYTES}")
    return raw


class ApiHandler:
    """Routes every request: discovery, health, then resource requests by verb."""

    def __init__(self, api: ApiServer, log: RequestLog, faults: FaultInjector, proxy: PodProxy):
        self._api = api
        self._log = log
        self._faults = faults
        self._proxy = proxy
        # The documents describe the fake's own version, whatever /version is set to report.
        own = version_info(DEFAULT_KUBERNETES_VERSION)
        self._openapi = OpenApiPublisher(api.resources, int(own["minor"]), own["gitVersion"])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        info = RequestInfo.parse(request.method, request.path, request.query)
        try:
            self._authenticate(request)
        except StatusError as error:
            response = status_response(error)
            self._log.record(
                request.method, info, response.status, user_name(request), request.query
            )
            return response
        rule = self._faults.take(request.method, info)
        if rule is not None:
            injected = await self._inject(request, info, rule)
            if injected is not None:
                return injected
        try:
            self._authorize(Attributes.of_request(request[USER], info))
            response = await self._serve(request, info)
        except StatusError as error:
            response = status_response(error)
        if not request.get(LOGGED):
            self._log.record(
                request.method, info, response.status, user_name(request), request.query
            )
        return response

    def _authenticate(self, request: web.Request) -> None:
        """Authentication, then impersonation: who the request runs as, in ``request[USER]``."""
        requestor = self._api.authenticator.authenticate(request.headers.get("Authorization", ""))
        request[USER] = requestor
        wanted = impersonation_requests(
            request.headers, lambda key: request.headers.getall(key, [])
        )
        for item in wanted:
            self._authorize(
                Attributes(
                    requestor,
                    "impersonate",
                    True,
                    item.api_group,
                    item.resource,
                    item.extra_key,
                    item.namespace,
                    item.name,
                )
            )
        if wanted:
            request[USER] = impersonated_user(wanted)

    def _authorize(self, attrs: Attributes) -> None:
        decision = self._api.authorizer.authorize(attrs)
        if not decision.allowed:
            raise forbidden(attrs, decision.reason)

    async def _inject(
        self, request: web.Request, info: RequestInfo, rule: FaultRule
    ) -> web.StreamResponse | None:
        if rule.delay:
            await asyncio.sleep(rule.delay)
        if rule.drop:
            self._log.record(request.method, info, None, user_name(request), request.query)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on an aborted connection
        if rule.status is None:
            return None
        self._log.record(request.method, info, rule.status, user_name(request), request.query)
        reason = REASON_FOR_CODE.get(rule.status, "Unknown")
        message = rule.message or f"fakekube injected fault: {reason}"
        details = {"retryAfterSeconds": rule.retry_after} if rule.retry_after else None
        headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after else None
        return status_response(StatusError(rule.status, reason, message, details), headers)

    async def _serve(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if request.method != "GET" and not info.is_resource_request:
            raise StatusError.method_not_allowed()
        if path == "/version":
            return json_response(version_info(self._api.kubernetes_version))
        if path == "/api":
            return json_response(api_versions(request.host))
        if path == "/apis":
            return json_response(api_group_list(self._api.resources))
        if path == "/openapi/v2" or path == "/openapi/v3" or path.startswith("/openapi/v3/"):
            return self._openapi_document(request, path)
        if not info.is_resource_request:
            parts = path.strip("/").split("/")
            document = None
            if parts[0] == "api" and len(parts) == 2:
                document = api_resource_list(self._api.resources, "", parts[1])
            elif parts[0] == "apis" and len(parts) == 2:
                document = api_group(self._api.resources, parts[1])
            elif parts[0] == "apis" and len(parts) == 3:
                document = api_resource_list(self._api.resources, parts[1], parts[2])
            if document is None:
                raise StatusError.no_such_route()
            return json_response(document)
        return await self._serve_resource(request, info)

    def _openapi_document(self, request: web.Request, path: str) -> web.Response:
        if path == "/openapi/v3":
            return _document_response(request, self._openapi.v3_index())
        if not _accepts_json(request):
            return web.Response(status=406)
        if path == "/openapi/v2":
            return _document_response(request, self._openapi.v2_document())
        key = path.removeprefix("/openapi/v3/")
        document = self._openapi.v3_document(key)
        if document is None:
            return web.Response(status=404)  # the aggregator knows no such group-version
        headers = {"Vary": "Accept"}
        if wanted := request.query.get("hash"):
            if wanted != document.etag:
                # An old hash: the document changed since the client read the index.
                location = f"/openapi/v3/{key}?hash={document.etag}"
                return web.Response(status=301, headers={"Location": location})
            expires = datetime.now(timezone.utc) + timedelta(days=365)
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = expires.strftime("%a, %d %b %Y %H:%M:%S UTC")
        return _document_response(request, document, headers)

    def _resource(self, info: RequestInfo) -> tuple[ResourceType, str | None]:
        rt = self._api.resources.lookup(info.api_group, info.version, info.resource)
        if rt is None:
            raise StatusError.no_such_route()
        namespace: str | None = info.namespace or None
        if not rt.namespaced:
            # /api/v1/namespaces/{name} names the namespace itself; any other namespaced path is wrong.
            if namespace and not (info.resource == "namespaces" and info.path_name == namespace):
                raise StatusError.no_such_route()
            namespace = None
        elif namespace is None and (info.path_name or info.verb not in ("list", "watch")):
            raise StatusError.no_such_route()
        allowed = {"status": rt.has_status, "finalize": info.resource == "namespaces", "": True}
        allowed.update(dict.fromkeys(rt.get_subresources, True))
        allowed.update(dict.fromkeys(rt.connect_subresources, True))
        if not allowed.get(info.subresource, False):
            raise StatusError.no_such_route()
        return rt, namespace

    async def _serve_resource(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        rt, namespace = self._resource(info)
        if rt.deprecation_warning:
            request[DEPRECATION] = rt.deprecation_warning
        method, name = request.method, info.path_name
        if info.subresource in rt.connect_subresources:
            return await self._pod_proxy(request, info, rt, namespace or "")
        if info.subresource and method not in ("GET", "PUT", "PATCH"):
            raise StatusError.method_not_allowed()
        if info.verb not in rt.verbs:
            raise StatusError.method_not_allowed()
        if info.subresource in rt.get_subresources:
            if method != "GET":
                raise StatusError.method_not_allowed()
            return self._pod_log(request, namespace or "", name)
        if method == "GET":
            if info.verb == "watch":
                return await self._watch(request, info, rt, namespace)
            return (
                self._get(request, rt, namespace, name)
                if name
                else self._list(request, rt, namespace)
            )
        if method == "POST" and not name and isinstance(rt.strategy, ReviewStrategy):
            answer = self._api.review(
                rt, namespace, await self._review_body(request), request[USER]
            )
            return json_response(answer, 201)
        if method == "POST" and not name:
            validation = FieldValidation.from_query(request.query, "CreateOptions")
            body = await self._checked_body(request, rt, validation)
            created = self._api.create(
                rt, namespace, body, dry_run=_dry_run(request.query), user=request[USER]
            )
            return _with_warnings(json_response(rt.present(created), 201), validation)
        if method == "PUT" and name:
            validation = FieldValidation.from_query(request.query, "UpdateOptions")
            body = await self._checked_body(request, rt, validation)
            updated = self._api.update(
                rt,
                namespace,
                name,
                body,
                subresource=info.subresource or None,
                dry_run=_dry_run(request.query),
                user=request[USER],
            )
            return _with_warnings(json_response(rt.present(updated)), validation)
        if method == "PATCH" and name:
            return await self._patch(request, rt, namespace, name, info.subresource or None)
        if method == "DELETE":
            return await (
                self._delete(request, rt, namespace, name)
                if name
                else self._delete_collection(request, rt, namespace)
            )
        raise StatusError.method_not_allowed()

    async def _pod_proxy(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str
    ) -> web.StreamResponse:
        """``pods/<name>[:<port>]/proxy/<path>``: see ``podproxy``."""
        scheme, name, port = split_scheme_name_port(info.path_name)
        target = resource_location(self._api.get(rt, namespace, name), scheme, port)
        prefix = f"/api/v1/namespaces/{namespace}/pods/{info.path_name}/proxy"
        rest = request.path[len(prefix) :] if request.path.startswith(prefix) else ""
        subpath = rest[1:] if rest.startswith("/") else None

        def answering(status: int) -> None:
            # Logged as the answer starts: a client that has it finds it in the log.
            self._log.record(request.method, info, status, user_name(request), request.query)
            request[LOGGED] = True

        return await self._proxy.forward(request, target, subpath, answering)

    def _pod_log(self, request: web.Request, namespace: str, name: str) -> web.Response:
        """``GET pods/<name>/log``: plain text, ``container``, ``tailLines`` and ``limitBytes``.

        ``follow`` is accepted but answers with the log so far, without waiting for more.
        """
        numbers = {}
        for key in ("tailLines", "limitBytes"):
            value = request.query.get(key)
            if value is not None:
                try:
                    numbers[key] = int(value)
                except ValueError:
                    raise StatusError.bad_request(
                        f'strconv.ParseInt: parsing "{value}": invalid syntax'
                    ) from None
        body = self._api.pod_log(
            namespace,
            name,
            request.query.get("container") or None,
            numbers.get("tailLines"),
            numbers.get("limitBytes"),
        )
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def _review_body(self, request: web.Request) -> Any:
        """An access review's body: JSON, YAML, or protobuf as client-go's typed clients send."""
        raw = await _read_limited(request)
        if _media_type(request) == PROTOBUF:
            return decode_protobuf(raw)
        return self._decode_body(request, raw)

    async def _checked_body(
        self, request: web.Request, rt: ResourceType, validation: FieldValidation
    ) -> Any:
        """The body of a create or update, after strict decoding: refused, or with its
        unknown fields dropped (and reported, unless the client asked to ignore them)."""
        raw = await _read_limited(request)
        body = self._decode_body(request, raw)
        if isinstance(body, dict):
            kind = body.get("kind") or rt.kind
            version = str(body.get("apiVersion") or rt.api_version).rpartition("/")[2]
            validation.report(
                self._api.fields.body_problems(rt, raw, body),
                f'{kind} in version "{version}" cannot be handled as a {rt.kind}: ',
            )
            self._api.fields.drop_unknown(rt, body)
        return body

    @staticmethod
    def _decode_body(request: web.Request, raw: bytes) -> Any:
        media_type = _media_type(request)
        if media_type not in (None, *BODY_TYPES):
            raise StatusError.unsupported_media_type(
                media_type, [*BODY_TYPES, "application/vnd.kubernetes.protobuf"]
            )
        try:
            return (
                yaml.safe_load(raw)
                if media_type == "application/yaml"
                else msgspec.json.decode(raw)
            )
        except (msgspec.DecodeError, yaml.YAMLError) as error:
            raise StatusError.bad_request(f"error decoding request body: {error}") from None

    @staticmethod
    def _selectors(request: web.Request, rt: ResourceType) -> tuple[LabelSelector, FieldSelector]:
        supported = (
            frozenset({"metadata.name", "metadata.namespace"}) | rt.strategy.selectable_fields
        )
        return (
            LabelSelector.parse(request.query.get("labelSelector")),
            FieldSelector.parse(request.query.get("fieldSelector"), supported),
        )

    def _get(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str
    ) -> web.Response:
        obj = rt.present(self._api.get(rt, namespace, name))
        if wants_table(request.headers.get("Accept", "")):
            return json_response(to_table(rt, [obj], obj["metadata"]["resourceVersion"]))
        return json_response(obj)

    def _list(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.Response:
        labels, fields = self._selectors(request, rt)
        # Filtering by field converts each object to the served version (for a custom resource,
        # maybe a webhook call each): skip it when no fieldSelector asks for it.
        selected = fields if request.query.get("fieldSelector") else None
        items, resource_version = self._api.list(rt, namespace, labels, selected)
        metadata: dict[str, Any] = {"resourceVersion": str(resource_version)}
        if token := request.query.get("continue"):
            try:
                start = json.loads(base64.urlsafe_b64decode(token))["start"]
            except (ValueError, KeyError):
                raise StatusError.bad_request("continue key is not valid") from None
            items = [
                obj
                for obj in items
                if [obj["metadata"].get("namespace", ""), obj["metadata"]["name"]] > start
            ]
        limit = int(request.query.get("limit") or 0)
        if 0 < limit < len(items):
            last = items[limit - 1]["metadata"]
            start = [last.get("namespace", ""), last["name"]]
            metadata["continue"] = base64.urlsafe_b64encode(
                json.dumps({"rv": resource_version, "start": start}).encode()
            ).decode()
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        presented = rt.present_all(items)
        if wants_table(request.headers.get("Accept", "")):
            return json_response(to_table(rt, presented, str(resource_version)))
        if not rt.is_custom:
            # Typed lists do not repeat apiVersion and kind on their items.
            presented = [
                {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
                for obj in presented
            ]
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": metadata,
                "items": presented,
            }
        )

    async def _patch(
        self,
        request: web.Request,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
    ) -> web.Response:
        media_type = _media_type(request) or ""
        if media_type not in self._api.patch_types(rt):
            raise StatusError.unsupported_media_type(media_type, self._api.patch_types(rt))
        raw = await _read_limited(request)
        try:
            patch = yaml.safe_load(raw) if media_type == APPLY_PATCH else msgspec.json.decode(raw)
        except (msgspec.DecodeError, yaml.YAMLError) as error:
            raise StatusError.bad_request(f"error decoding patch: {error}") from None
        validation = FieldValidation.from_query(request.query, "PatchOptions")
        if media_type == JSON_PATCH:
            problems = self._api.fields.json_patch_problems(raw)
        else:
            problems = self._api.fields.patch_duplicates(raw)
        result, created = self._api.patch(
            rt,
            namespace,
            name,
            media_type,
            patch,
            subresource=subresource,
            field_manager=request.query.get("fieldManager"),
            force=is_true(request.query.get("force")),
            dry_run=_dry_run(request.query),
            validation=None if media_type == APPLY_PATCH else validation,
            patch_problems=problems,
            user=request[USER],
        )
        return _with_warnings(
            json_response(rt.present(result), 201 if created else 200), validation
        )

    @staticmethod
    async def _delete_options(request: web.Request) -> dict[str, Any]:
        raw = await _read_limited(request)
        options = msgspec.json.decode(raw) if raw.strip() else {}
        if not isinstance(options, dict):
            raise StatusError.bad_request("DeleteOptions must be an object")
        if policy := request.query.get("propagationPolicy"):
            options["propagationPolicy"] = policy
        if "orphanDependents" in request.query:
            options["orphanDependents"] = is_true(request.query["orphanDependents"])
        if "orphanDependents" in options and "propagationPolicy" not in options:
            options["propagationPolicy"] = ORPHAN if options["orphanDependents"] else BACKGROUND
        if options.get("dryRun"):
            options["dryRun"] = options["dryRun"] == ["All"]
        else:
            options["dryRun"] = _dry_run(request.query)
        return options

    async def _delete(
        self, request: web.Request, rt: ResourceType, namespace: str | None, name: str
    ) -> web.Response:
        options = await self._delete_options(request)
        obj, gone = self._api.delete(
            rt,
            namespace,
            name,
            propagation=options.get("propagationPolicy"),
            preconditions=options.get("preconditions"),
            dry_run=options["dryRun"],
        )
        if gone and not rt.strategy.returns_deleted_object:
            details = {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": obj["metadata"]["uid"],
            }
            return json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {k: v for k, v in details.items() if v},
                }
            )
        return json_response(rt.present(obj))

    async def _delete_collection(
        self, request: web.Request, rt: ResourceType, namespace: str | None
    ) -> web.Response:
        options = await self._delete_options(request)
        labels, fields = self._selectors(request, rt)
        items, _ = self._api.list(rt, namespace, labels, fields)
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            with suppress(StatusError):  # deleted meanwhile
                result, _ = self._api.delete(
                    rt,
                    meta.get("namespace"),
                    meta["name"],
                    propagation=options.get("propagationPolicy"),
                    dry_run=options["dryRun"],
                )
                deleted.append(result)
        return json_response(
            {
                "kind": rt.list_kind,
                "apiVersion": rt.api_version,
                "metadata": {"resourceVersion": str(self._api.store.resource_version)},
                "items": rt.present_all(deleted),
            }
        )

    async def _watch(
        self, request: web.Request, info: RequestInfo, rt: ResourceType, namespace: str | None
    ) -> web.StreamResponse:
        query, name = request.query, info.path_name
        labels, fields = self._selectors(request, rt)
        if name:  # watching one object is a watch with a metadata.name field selector
            supported = (
                frozenset({"metadata.name", "metadata.namespace"}) | rt.strategy.selectable_fields
            )
            selector = ",".join(
                filter(None, [f"metadata.name={name}", query.get("fieldSelector")])
            )
            fields = FieldSelector.parse(selector, supported)
        try:
            timeout = float(query.get("timeoutSeconds") or DEFAULT_WATCH_SECONDS)
        except ValueError:
            raise StatusError.bad_request("timeoutSeconds must be a number") from None
        watcher = Watcher(rt, namespace, labels, fields)
        store = self._api.store
        since = query.get("resourceVersion", "")
        # Everything up to add_watcher runs without yielding to the loop: no event can slip between
        # the snapshot (or the replayed history) and the live stream.
        if since in ("", "0"):
            for obj in store.list(rt.storage_key, namespace):
                if watcher.matches(obj):
                    watcher.send("ADDED", obj)
            if is_true(query.get("sendInitialEvents")) and is_true(
                query.get("allowWatchBookmarks")
            ):
                watcher.lines.put_nowait(self._bookmark(rt, {"k8s.io/initial-events-end": "true"}))
            store.add_watcher(rt.storage_key, watcher)
        else:
            if not since.isdigit():
                raise StatusError.bad_request(f'invalid resource version "{since}"')
            try:
                for event in store.events_after(rt.storage_key, int(since)):
                    watcher.offer(event)
                store.add_watcher(rt.storage_key, watcher)
            except StatusError as gone:
                # A watch reports 410 in the stream, as an ERROR event, not as an HTTP status.
                watcher.lines.put_nowait(event_line(ERROR, gone.status))
                watcher.close()
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        self._log.record(request.method, info, 200, user_name(request), request.query)
        request[LOGGED] = True
        try:
            await response.prepare(request)
            await self._stream(response, watcher, timeout)
            if is_true(query.get("allowWatchBookmarks")):
                await response.write(self._bookmark(rt))
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            store.remove_watcher(rt.storage_key, watcher)
        return response

    @staticmethod
    async def _stream(response: web.StreamResponse, watcher: Watcher, timeout: float) -> None:
        """Send queued lines as they come, each batch flushed at once, until the end or timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                line = await asyncio.wait_for(watcher.lines.get(), remaining)
            except TimeoutError:
                return
            batch = []
            while line is not None:
                batch.append(line)
                if watcher.lines.empty():
                    break
                line = watcher.lines.get_nowait()
            if batch:
                await response.write(b"".join(batch))
            if line is None:
                return

    def _bookmark(self, rt: ResourceType, annotations: dict[str, str] | None = None) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": str(self._api.store.resource_version)}
        if annotations:
            metadata["annotations"] = annotations
        return event_line(
            BOOKMARK, {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": metadata}
        )


def build_app(
    api: ApiServer, log: RequestLog, faults: FaultInjector, proxy: PodProxy | None = None
) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    handler = ApiHandler(api, log, faults, proxy or PodProxy())
    app.router.add_route("*", "/{path:.*}", handler.handle)
    app.on_response_prepare.append(_send_deprecation_warning)
    return app
