"""Conversion webhooks: fakekube calls a real HTTPS webhook, as the apiserver does, whenever a
Gadget crosses between v1 (``command``, ``replicas``) and v2 (``workers: {command, replicas}``)."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from tests.certs import ServingCertificate, serving_certificate
from fakekube import FakeKube, StatusError

from .gadgets import V1, V2, gadget_v1, gadget_v2, gadgets_crd

SERVICE = "gadgets-webhook"
SERVICE_DNS = f"{SERVICE}.default.svc"
FROM_V2 = "conversion webhook for example.com/v2, Kind=Gadget"
FROM_V1 = "conversion webhook for example.com/v1, Kind=Gadget"
ADDRESS = f'Post "https://{SERVICE_DNS}:443/convert?timeout=30s"'
GadgetV1 = create_namespaced_resource("example.com", "v1", "Gadget", "gadgets")
GadgetV2 = create_namespaced_resource("example.com", "v2", "Gadget", "gadgets")


# The webhook.


def convert_gadget(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    spec = dict(obj["spec"])
    if desired == "example.com/v2":
        spec["workers"] = {k: spec.pop(k) for k in ("command", "replicas") if k in spec}
    else:
        spec.update(spec.pop("workers", {}))
        spec.pop("pullPolicy", None)
    return {**obj, "apiVersion": desired, "spec": spec}


def converting(review: dict[str, Any]) -> dict[str, Any]:
    """A well-behaved webhook's answer."""
    request = review["request"]
    return {
        "apiVersion": review["apiVersion"],
        "kind": "ConversionReview",
        "response": {
            "uid": request["uid"],
            "result": {"status": "Success"},
            "convertedObjects": [
                convert_gadget(obj, request["desiredAPIVersion"]) for obj in request["objects"]
            ],
        },
    }


@dataclass
class Call:
    path: str
    host: str
    server_name: str | None
    review: dict[str, Any]


class ConversionWebhook:
    """An HTTPS conversion webhook in a thread; ``answer`` decides what it replies."""

    def __init__(self, certificate: ServingCertificate, directory: Path):
        self.calls: list[Call] = []
        self.answer: Callable[[dict[str, Any]], dict[str, Any]] = converting
        webhook = self
        names: dict[int, str | None] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                webhook.calls.append(
                    Call(self.path, self.headers["Host"], names.get(id(self.connection)), review)
                )
                body = json.dumps(webhook.answer(review)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certificate.write(directory)
        context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        context.sni_callback = lambda sock, name, _: names.__setitem__(id(sock), name)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        # A short poll keeps stop() quick: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def reviews(self) -> list[dict[str, Any]]:
        return [call.review for call in self.calls]


def ca_bundle(certificate: ServingCertificate) -> str:
    """The CRD's ``caBundle``: base64 of the PEM CA certificate."""
    return base64.b64encode(certificate.ca_pem).decode()


@pytest.fixture(scope="module")
def certificate() -> ServingCertificate:
    return serving_certificate(SERVICE_DNS)


@pytest.fixture
def webhook(certificate: ServingCertificate, tmp_path: Path) -> Iterator[ConversionWebhook]:
    server = ConversionWebhook(certificate, tmp_path / "certs")
    yield server
    server.stop()


def webhook_conversion(ca_bundle: str, **client_config: Any) -> dict[str, Any]:
    service = {"namespace": "default", "name": SERVICE, "path": "/convert", "port": 443}
    return {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {"caBundle": ca_bundle, **(client_config or {"service": service})},
            "conversionReviewVersions": ["v1"],
        },
    }


def install(fakekube: FakeKube, conversion: dict[str, Any]) -> None:
    fakekube.apply_yaml(yaml.safe_dump(gadgets_crd(conversion=conversion)))


@pytest.fixture
def gadgets(
    fakekube: FakeKube, webhook: ConversionWebhook, certificate: ServingCertificate
) -> None:
    """Gadgets converted by the webhook, its Service routed to it on loopback."""
    install(fakekube, webhook_conversion(ca_bundle(certificate)))
    fakekube.service_resolver = lambda namespace, name, port: ("127.0.0.1", webhook.port)


def failure(response: httpx.Response) -> str:
    """The apiserver's answer to a failed conversion: 500, no reason, the error as message."""
    assert response.status_code == 500, response.text
    status = response.json()
    # metav1.Status omits an empty reason (omitempty).
    assert status["kind"] == "Status" and "reason" not in status
    return status["message"]


def test_create_as_v1_then_read_as_v2_and_as_v1(
    http: httpx.Client, fakekube: FakeKube, webhook: ConversionWebhook, gadgets: None
) -> None:
    created = http.post(V1, json=gadget_v1("a", replicas=3))
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == gadget_v1("a", replicas=3)["spec"]

    first = webhook.calls[0]
    assert (first.path, first.host, first.server_name) == (
        "/convert?timeout=30s",
        f"{SERVICE_DNS}:443",
        SERVICE_DNS,
    )
    assert first.review["apiVersion"] == "apiextensions.k8s.io/v1"
    assert first.review["kind"] == "ConversionReview"
    request = first.review["request"]
    assert request["desiredAPIVersion"] == "example.com/v2"  # stored in the storage version
    assert [o["apiVersion"] for o in request["objects"]] == ["example.com/v1"]
    assert request["uid"] != webhook.reviews[-1]["request"]["uid"]

    stored = http.get(f"{V2}/a").json()
    assert stored["spec"] == {
        "image": "locustio/locust:2.31",
        "workers": {"command": "locust -f a.py", "replicas": 3, "pullPolicy": "IfNotPresent"},
    }
    assert stored == fakekube.get("example.com/v2", "Gadget", "a")
    assert http.get(f"{V1}/a").json()["spec"] == gadget_v1("a", replicas=3)["spec"]
    assert created.json()["metadata"] == stored["metadata"]


def test_a_list_is_converted_in_one_review(
    http: httpx.Client, webhook: ConversionWebhook, gadgets: None
) -> None:
    for name in ("a", "b", "c"):
        assert http.post(V2, json=gadget_v2(name)).status_code == 201
    assert webhook.calls == []  # writes in the storage version need no conversion
    listed = http.get(V1).json()
    assert listed["apiVersion"] == "example.com/v1"
    assert [(i["metadata"]["name"], i["spec"]["replicas"]) for i in listed["items"]] == [
        ("a", 2),
        ("b", 2),
        ("c", 2),
    ]
    assert [len(r["request"]["objects"]) for r in webhook.reviews] == [3]
    http.get(V2)
    assert len(webhook.calls) == 1


def test_watches_in_either_version(http: httpx.Client, fakekube: FakeKube, gadgets: None) -> None:
    params = {"watch": "true", "timeoutSeconds": "2"}
    with (
        http.stream("GET", V1, params=params) as old,
        http.stream("GET", V2, params=params) as new,
    ):
        http.post(V2, json=gadget_v2("a"))
        http.patch(
            f"{V1}/a",
            json={"spec": {"replicas": 5}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        old_events = [json.loads(line) for _, line in zip(range(2), old.iter_lines())]
        new_events = [json.loads(line) for _, line in zip(range(2), new.iter_lines())]
    assert [(e["type"], e["object"]["spec"]["replicas"]) for e in old_events] == [
        ("ADDED", 2),
        ("MODIFIED", 5),
    ]
    assert [(e["type"], e["object"]["spec"]["workers"]["replicas"]) for e in new_events] == [
        ("ADDED", 2),
        ("MODIFIED", 5),
    ]


def test_status_through_the_old_version(
    http: httpx.Client, fakekube: FakeKube, gadgets: None
) -> None:
    http.post(V1, json=gadget_v1("a"))
    updated = http.patch(
        f"{V1}/a/status",
        json={"status": {"phase": "Running"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"] == {"phase": "Running"}
    assert fakekube.get("example.com/v2", "Gadget", "a")["status"] == {"phase": "Running"}


def test_lightkube_round_trip(client: Client, gadgets: None) -> None:
    client.create(
        GadgetV1(
            metadata={"name": "lk", "namespace": "default"},
            spec={"image": "img", "command": "locust", "replicas": 4},
        )
    )
    assert client.get(GadgetV2, "lk", namespace="default").spec["workers"]["replicas"] == 4
    client.patch(
        GadgetV2,
        "lk",
        {"spec": {"workers": {"replicas": 6}}},
        namespace="default",
        patch_type=PatchType.MERGE,
    )
    assert client.get(GadgetV1, "lk", namespace="default").spec["replicas"] == 6


def test_only_labels_and_annotations_of_the_metadata_come_back(
    http: httpx.Client, webhook: ConversionWebhook, gadgets: None
) -> None:
    http.post(V2, json=gadget_v2("a"))

    def relabeling(review: dict[str, Any]) -> dict[str, Any]:
        answer = converting(review)
        for obj in answer["response"]["convertedObjects"]:
            obj["metadata"]["labels"] = {"converted": "yes"}
            obj["metadata"]["generation"] = 42
            obj["metadata"]["finalizers"] = ["example.com/sneaky"]
        return answer

    webhook.answer = relabeling
    served = http.get(f"{V1}/a").json()
    assert served["metadata"]["labels"] == {"converted": "yes"}
    assert served["metadata"]["generation"] == 1
    assert "finalizers" not in served["metadata"]


@pytest.mark.parametrize(
    ("misbehave", "message"),
    [
        (
            lambda answer: answer["response"].update(
                result={"status": "Failure", "message": "cannot convert gadgets today"}
            ),
            f"{FROM_V2} failed: cannot convert gadgets today",
        ),
        (
            lambda answer: answer["response"].update(uid="not-the-request"),
            f'{FROM_V2} failed: expected response.uid="',
        ),
        (
            lambda answer: answer.update(apiVersion="apiextensions.k8s.io/v1beta1"),
            (
                f"{FROM_V2} failed: expected webhook response of apiextensions.k8s.io/v1, "
                "Kind=ConversionReview, got apiextensions.k8s.io/v1beta1, Kind=ConversionReview"
            ),
        ),
        (
            lambda answer: answer["response"]["convertedObjects"].clear(),
            f"{FROM_V2} returned 0 objects, expected 1",
        ),
        (
            lambda answer: answer["response"]["convertedObjects"][0].update(
                apiVersion="example.com/v3"
            ),
            (
                f"{FROM_V2} returned invalid object at index 0: invalid groupVersion "
                "(expected example.com/v1, received example.com/v3)"
            ),
        ),
        (
            lambda answer: answer["response"]["convertedObjects"][0]["metadata"].update(name="b"),
            f"{FROM_V2} returned invalid object: must have the same name: a != b",
        ),
        (
            lambda answer: answer["response"]["convertedObjects"][0]["metadata"].update(
                labels={"bad key!": "x"}
            ),
            f'{FROM_V2} returned invalid metadata: metadata.labels: Invalid value: "bad key!"',
        ),
    ],
)
def test_a_bad_answer_fails_the_request_as_the_apiserver_does(
    http: httpx.Client,
    webhook: ConversionWebhook,
    gadgets: None,
    misbehave: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    http.post(V2, json=gadget_v2("a"))

    def answer(review: dict[str, Any]) -> dict[str, Any]:
        reply = converting(review)
        misbehave(reply)
        return reply

    webhook.answer = answer
    assert failure(http.get(f"{V1}/a")).startswith(message)
    assert http.get(f"{V2}/a").status_code == 200  # the storage version needs no webhook


def test_a_list_reports_bad_objects_by_position(
    http: httpx.Client, webhook: ConversionWebhook, gadgets: None
) -> None:
    for name in ("a", "b"):
        http.post(V2, json=gadget_v2(name))

    def renaming_second(review: dict[str, Any]) -> dict[str, Any]:
        answer = converting(review)
        answer["response"]["convertedObjects"][1]["metadata"]["name"] = "z"
        return answer

    webhook.answer = renaming_second
    assert failure(http.get(V1)) == (
        f"{FROM_V2} returned invalid converted object at index 2: must have the same name: b != z"
    )


def test_a_ca_bundle_that_did_not_sign_the_certificate_fails(
    http: httpx.Client, fakekube: FakeKube, webhook: ConversionWebhook, gadgets: None
) -> None:
    http.post(V2, json=gadget_v2("a"))
    someone_elses = serving_certificate(SERVICE_DNS)
    install(fakekube, webhook_conversion(ca_bundle(someone_elses)))
    assert failure(http.get(f"{V1}/a")) == (
        f"{FROM_V2} failed: {ADDRESS}: tls: failed to verify certificate: x509: "
        "certificate signed by unknown authority"
    )
    assert failure(http.post(V1, json=gadget_v1("b"))).startswith(f"{FROM_V1} failed: Post")
    assert http.get(f"{V2}/b").status_code == 404  # nothing stored


def test_the_certificate_must_name_the_service(
    http: httpx.Client,
    fakekube: FakeKube,
    certificate: ServingCertificate,
    webhook: ConversionWebhook,
) -> None:
    conversion = webhook_conversion(
        ca_bundle(certificate),
        service={"namespace": "default", "name": "other", "path": "/convert", "port": 443},
    )
    install(fakekube, conversion)
    fakekube.service_resolver = lambda namespace, name, port: ("127.0.0.1", webhook.port)
    http.post(V2, json=gadget_v2("a"))
    message = failure(http.get(f"{V1}/a"))
    assert 'Post "https://other.default.svc:443/convert?timeout=30s": tls: failed to verify' in (
        message
    )
    assert "other.default.svc" in message.rpartition("x509:")[2]


def test_a_webhook_that_is_down_fails_requests_but_not_other_versions(
    http: httpx.Client, fakekube: FakeKube, webhook: ConversionWebhook, gadgets: None
) -> None:
    http.post(V2, json=gadget_v2("a"))
    with http.stream("GET", V1, params={"watch": "true", "timeoutSeconds": "5"}) as watch:
        lines = watch.iter_lines()
        assert json.loads(next(lines))["type"] == "ADDED"
        webhook.stop()
        # A write through the storage version stands; the v1 watch cannot serve it and ends.
        assert http.post(V2, json=gadget_v2("b")).status_code == 201
        assert list(lines) == []
    refused = f"dial tcp 127.0.0.1:{webhook.port}: connect: connection refused"
    assert failure(http.get(V1)) == f"{FROM_V2} failed: {ADDRESS}: {refused}"
    assert failure(http.post(V1, json=gadget_v1("c"))) == f"{FROM_V1} failed: {ADDRESS}: {refused}"
    assert [g["metadata"]["name"] for g in http.get(V2).json()["items"]] == ["a", "b"]


def test_lightkube_sees_the_failure_as_an_api_error(
    client: Client, http: httpx.Client, webhook: ConversionWebhook, gadgets: None
) -> None:
    http.post(V2, json=gadget_v2("a"))
    webhook.stop()
    with pytest.raises(ApiError) as error:
        client.get(GadgetV1, "a", namespace="default")
    assert error.value.status.code == 500
    assert error.value.status.message.startswith(f"{FROM_V2} failed: {ADDRESS}")


def test_a_service_needs_a_route(http: httpx.Client, fakekube: FakeKube, gadgets: None) -> None:
    http.post(V2, json=gadget_v2("a"))
    fakekube.service_resolver = None
    assert failure(http.get(f"{V1}/a")) == (
        f'{FROM_V2} failed: {ADDRESS}: no route to service "default/{SERVICE}": '
        "set FakeKube.service_resolver"
    )
    fakekube.service_resolver = lambda namespace, name, port: ("10.0.0.7", 443)
    assert failure(http.get(f"{V1}/a")).endswith(
        "fakekube only calls webhooks on loopback addresses, not 10.0.0.7"
    )


def test_a_url_webhook(http: httpx.Client, fakekube: FakeKube, tmp_path: Path) -> None:
    local = serving_certificate("localhost")
    server = ConversionWebhook(local, tmp_path / "url-certs")
    try:
        url = f"https://localhost:{server.port}/convert"
        install(fakekube, webhook_conversion(ca_bundle(local), url=url))
        http.post(V1, json=gadget_v1("a"))
        assert http.get(f"{V2}/a").json()["spec"]["workers"]["replicas"] == 2
        assert server.calls[0].server_name == "localhost"
        assert server.calls[0].path == "/convert?timeout=30s"
    finally:
        server.stop()


def test_the_first_review_version_the_apiserver_speaks_is_used(
    http: httpx.Client,
    fakekube: FakeKube,
    certificate: ServingCertificate,
    webhook: ConversionWebhook,
) -> None:
    conversion = webhook_conversion(ca_bundle(certificate))
    conversion["webhook"]["conversionReviewVersions"] = ["v2", "v1beta1", "v1"]
    install(fakekube, conversion)
    fakekube.service_resolver = lambda namespace, name, port: ("127.0.0.1", webhook.port)
    assert http.post(V1, json=gadget_v1("a")).status_code == 201
    assert webhook.reviews[0]["apiVersion"] == "apiextensions.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("conversion", "message"),
    [
        (
            {"strategy": "Webhook"},
            (
                "[spec.conversion.webhookClientConfig: Required value: required when strategy is "
                "set to Webhook, spec.conversion.conversionReviewVersions: Required value]"
            ),
        ),
        (
            {
                "strategy": "Webhook",
                "webhook": {"clientConfig": {}, "conversionReviewVersions": ["v1"]},
            },
            (
                "spec.conversion.webhookClientConfig: Required value: exactly one of url or "
                "service is required"
            ),
        ),
        (
            {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": "http://localhost/convert"},
                    "conversionReviewVersions": ["v1"],
                },
            },
            (
                "spec.conversion.webhookClientConfig.url: Invalid value: \"http\": 'https' is the "
                "only allowed URL scheme; desired format: https://host[/path]"
            ),
        ),
        (
            {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"service": {"namespace": "default", "name": "x", "port": 0}},
                    "conversionReviewVersions": ["v2"],
                },
            },
            (
                "[spec.conversion.webhookClientConfig.service.port: Invalid value: 0: port is not "
                "valid: must be between 1 and 65535, inclusive, spec.conversion."
                'conversionReviewVersions: Invalid value: ["v2"]: must include at least one of '
                "v1, v1beta1]"
            ),
        ),
        (
            {
                "strategy": "None",
                "webhook": {
                    "clientConfig": {"url": "https://localhost/convert"},
                    "conversionReviewVersions": ["v1"],
                },
            },
            (
                "[spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy "
                "is not set to Webhook, spec.conversion.conversionReviewVersions: Forbidden: "
                "should not be set when strategy is not set to Webhook]"
            ),
        ),
    ],
)
def test_the_conversion_settings_are_validated(
    fakekube: FakeKube, conversion: dict[str, Any], message: str
) -> None:
    with pytest.raises(StatusError) as error:
        fakekube.create(gadgets_crd(conversion=conversion))
    assert error.value.code == 422
    crd = 'CustomResourceDefinition.apiextensions.k8s.io "gadgets.example.com"'
    assert error.value.message == f"{crd} is invalid: {message}"
