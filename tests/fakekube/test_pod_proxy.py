"""The pods/proxy subresource: requests forwarded to a pod's address, with the apiserver's
errors, RBAC verbs, request log entries and fault injection."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from fakekube import FakeKube, service_account_user

PODS = "/api/v1/namespaces/default/pods"
KUBECTL = shutil.which("kubectl")


class PodApp(BaseHTTPRequestHandler):
    """What listens in the pod: echoes each request as JSON; /hang never answers in time."""

    server: PodServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/hang"):
            self.server.release.wait(10)
            return
        if self.path.startswith("/page"):
            payload = b"<html><body>report</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        seen = {
            "method": self.command,
            "path": self.path,
            "body": body.decode(),
            "headers": {k.lower(): v for k, v in self.headers.items()},
        }
        self.server.seen.append(seen)
        payload = json.dumps(seen).encode()
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


class PodServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: str):
        super().__init__((address, 0), PodApp)
        self.seen: list[dict[str, Any]] = []
        self.release = threading.Event()


def loopback_address() -> str:
    return f"127.{random.randint(16, 250)}.{random.randint(0, 255)}.{random.randint(2, 254)}"


@pytest.fixture
def app() -> Iterator[PodServer]:
    server = PodServer(loopback_address())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def add_pod(kube: FakeKube, name: str, ip: str | None, *ports: int) -> None:
    container: dict[str, Any] = {"name": "main", "image": "locustio/locust:2.47.0"}
    if ports:
        container["ports"] = [{"containerPort": port} for port in ports]
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [container]},
        }
    )
    if ip:
        kube.patch_status("v1", "Pod", name, {"podIP": ip, "podIPs": [{"ip": ip}]}, "default")


@pytest.fixture
def pod(fakekube: FakeKube, app: PodServer) -> str:
    """The pod `master` on the app's address; its only container port is the app's."""
    host, port = app.server_address[:2]
    add_pod(fakekube, "master", str(host), int(port))
    return f"master:{port}"


def status_of(response: httpx.Response) -> tuple[int, str, str]:
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == response.status_code
    return response.status_code, body["reason"], body["message"]


def test_get_forwards_path_query_and_headers_and_returns_the_pods_answer(
    http: httpx.Client, fakekube: FakeKube, app: PodServer, pod: str
) -> None:
    response = http.get(
        f"{PODS}/{pod}/proxy/stats/requests",
        params={"a": "1", "b": "x y"},
        headers={
            "Authorization": "Bearer secret",
            "Impersonate-User": "someone",
            "X-Custom": "kept",
        },
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    seen = response.json()
    assert seen["method"] == "GET"
    assert seen["path"] == "/stats/requests?a=1&b=x+y"
    assert seen["headers"]["x-custom"] == "kept"
    # Consumed by the API server's authentication and impersonation.
    assert "authorization" not in seen["headers"]
    assert "impersonate-user" not in seen["headers"]
    assert seen["headers"]["x-forwarded-uri"] == f"{PODS}/{pod}/proxy/stats/requests"
    (record,) = [r for r in fakekube.requests if r.subresource == "proxy"]
    assert (record.verb, record.resource, record.name, record.status_code, record.user) == (
        "get",
        "pods",
        pod,
        200,
        "someone",
    )


@pytest.mark.parametrize(
    ("method", "verb"),
    [("POST", "create"), ("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete")],
)
def test_writes_forward_their_body_and_are_logged_with_their_rbac_verb(
    http: httpx.Client, fakekube: FakeKube, app: PodServer, pod: str, method: str, verb: str
) -> None:
    response = http.request(method, f"{PODS}/{pod}/proxy/stop", content=b"user_count=3")
    assert response.status_code == 200
    assert (response.json()["method"], response.json()["body"]) == (method, "user_count=3")
    assert [r.verb for r in fakekube.requests if r.subresource == "proxy"] == [verb]


def test_head_is_a_get_and_answers_without_a_body(
    http: httpx.Client, fakekube: FakeKube, app: PodServer, pod: str
) -> None:
    response = http.head(f"{PODS}/{pod}/proxy/stats/requests")
    assert response.status_code == 200 and response.content == b""
    assert [s["method"] for s in app.seen] == ["HEAD"]
    assert [r.verb for r in fakekube.requests if r.subresource == "proxy"] == ["get"]


def test_the_pods_own_status_codes_and_content_types_pass_through(
    http: httpx.Client, app: PodServer, pod: str
) -> None:
    missing = http.get(f"{PODS}/{pod}/proxy/missing")
    assert missing.status_code == 404 and missing.json()["path"] == "/missing"
    page = http.get(f"{PODS}/{pod}/proxy/page")
    assert page.status_code == 200 and page.text == "<html><body>report</body></html>"
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Access-Control-Allow-Origin" not in page.headers  # stripped, as the apiserver does


def test_without_a_port_the_first_declared_container_port_is_used(
    http: httpx.Client, app: PodServer, pod: str
) -> None:
    assert http.get(f"{PODS}/master/proxy/x").json()["path"] == "/x"
    assert http.get(f"{PODS}/http:master:{pod.split(':')[1]}/proxy/y").json()["path"] == "/y"


def test_the_path_is_cleaned_and_an_empty_one_redirects(
    http: httpx.Client, app: PodServer, pod: str
) -> None:
    assert http.get(f"{PODS}/{pod}/proxy/a/../b//c/").json()["path"] == "/b/c/"
    moved = http.get(f"{PODS}/{pod}/proxy", params={"q": "1"})
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"{PODS}/{pod}/proxy/?q=1"


def test_nothing_listening_is_503_with_the_dialers_error(
    http: httpx.Client, fakekube: FakeKube, app: PodServer
) -> None:
    host = app.server_address[0]
    add_pod(fakekube, "idle", str(host), 8089)
    response = http.get(f"{PODS}/idle:1/proxy/stats/requests")  # a port nothing listens on
    assert status_of(response) == (
        503,
        "ServiceUnavailable",
        f"error trying to reach service: dial tcp {host}:1: connect: connection refused",
    )


def test_a_pod_that_never_answers_is_503_after_the_proxy_timeout(
    http: httpx.Client, fakekube: FakeKube, app: PodServer, pod: str
) -> None:
    fakekube.proxy_timeout = 0.3
    response = http.get(f"{PODS}/{pod}/proxy/hang")
    assert status_of(response) == (
        503,
        "ServiceUnavailable",
        "error trying to reach service: net/http: timeout awaiting response headers",
    )
    app.release.set()
    assert http.get(f"{PODS}/{pod}/proxy/again").status_code == 200


def test_an_address_off_this_machine_is_never_dialed(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    add_pod(fakekube, "remote", "10.244.0.7", 8089)
    assert status_of(http.get(f"{PODS}/remote/proxy/")) == (
        503,
        "ServiceUnavailable",
        "error trying to reach service: dial tcp 10.244.0.7:8089: i/o timeout",
    )


def test_a_missing_pod_is_404_and_a_pod_without_an_address_is_400(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    code, reason, message = status_of(http.get(f"{PODS}/ghost:8089/proxy/stats/requests"))
    assert (code, reason, message) == (404, "NotFound", 'pods "ghost" not found')
    add_pod(fakekube, "pending", None, 8089)
    assert status_of(http.get(f"{PODS}/pending:8089/proxy/stats/requests")) == (
        400,
        "BadRequest",
        "address not allowed",
    )
    assert status_of(http.get(f"{PODS}/a:b:c:d/proxy/x")) == (
        400,
        "BadRequest",
        'invalid pod request "a:b:c:d"',
    )
    assert status_of(http.get(f"{PODS}/ftp:pending:21/proxy/x"))[2] == (
        'invalid pod request "ftp:pending:21"'
    )


def test_other_methods_are_not_allowed(http: httpx.Client, app: PodServer, pod: str) -> None:
    response = http.request("PROPFIND", f"{PODS}/{pod}/proxy/x")
    assert status_of(response)[:2] == (405, "MethodNotAllowed")
    assert app.seen == []


def test_faults_can_target_the_proxy(
    http: httpx.Client, fakekube: FakeKube, app: PodServer, pod: str
) -> None:
    fakekube.faults.add(resource="pods", subresource="proxy", verb="create", status=503, times=1)
    assert http.post(f"{PODS}/{pod}/proxy/stop").status_code == 503
    assert http.get(f"{PODS}/{pod}/proxy/stats/requests").status_code == 200
    assert http.post(f"{PODS}/{pod}/proxy/stop").status_code == 200
    assert [s["method"] for s in app.seen] == ["GET", "POST"]


def test_discovery_lists_the_proxy_subresource(http: httpx.Client) -> None:
    resources = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert resources["pods/proxy"]["verbs"] == ["create", "delete", "get", "patch", "update"]
    assert resources["pods/proxy"]["kind"] == "PodProxyOptions"


def test_rbac_authorizes_each_method_as_its_verb_on_pods_proxy(app: PodServer) -> None:
    user = service_account_user("model", "poller")
    rbac = "rbac.authorization.k8s.io"
    with FakeKube(authorization="RBAC") as kube:
        host, port = app.server_address[:2]
        add_pod(kube, "master", str(host), int(port))
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "model"}})
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "poller", "namespace": "model"},
            }
        )
        kube.create(
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": "read-stats", "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get"]}],
            }
        )
        kube.create(
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "read-stats", "namespace": "default"},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "read-stats"},
                "subjects": [{"kind": "ServiceAccount", "name": "poller", "namespace": "model"}],
            }
        )
        headers = {"Authorization": f"Bearer {user}"}
        with httpx.Client(base_url=kube.url, headers=headers, timeout=10) as http:
            assert http.get(f"{PODS}/master:{port}/proxy/stats/requests").status_code == 200
            refused = http.post(f"{PODS}/master:{port}/proxy/stop")
            assert status_of(refused) == (
                403,
                "Forbidden",
                f'pods "master:{port}" is forbidden: User "{user}" cannot create resource '
                '"pods/proxy" in API group "" in the namespace "default"',
            )
            # pods/proxy is not pods: reading the pod itself is refused too.
            assert http.get(f"{PODS}/master").status_code == 403
    assert [s["method"] for s in app.seen] == ["GET"]


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
def test_kubectl_get_raw_reads_through_the_proxy(app: PodServer, tmp_path: Path) -> None:
    with FakeKube(tls=True) as kube:
        host, port = app.server_address[:2]
        add_pod(kube, "x", str(host), int(port))
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        result = subprocess.run(
            [
                KUBECTL or "kubectl",
                "get",
                "--raw",
                f"/api/v1/namespaces/default/pods/x:{port}/proxy/stats/requests",
            ],
            env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["path"] == "/stats/requests"
        refused = subprocess.run(
            [KUBECTL or "kubectl", "get", "--raw", "/api/v1/namespaces/default/pods/x:1/proxy/"],
            env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert refused.returncode == 1
        assert (
            "Error from server (ServiceUnavailable): error trying to reach service: "
            f"dial tcp {host}:1: connect: connection refused"
        ) in refused.stderr
