"""Fault injection and the request log."""

from __future__ import annotations

import threading
import time

import httpx2 as httpx
import pytest
from lightkube import ApiError, Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap

from fakekube import FakeKube

from .conftest import configmap, job

CMS = "/api/v1/namespaces/default/configmaps"


def test_injected_status_is_a_proper_status_and_is_spent_after_times(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.faults.add(verb="create", resource="configmaps", status=500, times=1)
    failed = http.post(CMS, json=configmap("a"))
    assert failed.status_code == 500
    assert failed.headers["Content-Type"] == "application/json"
    assert failed.json()["kind"] == "Status" and failed.json()["reason"] == "InternalError"
    assert http.post(CMS, json=configmap("a")).status_code == 201
    assert fakekube.faults.rules == []


def test_skip_lets_the_first_matching_requests_through(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.faults.add(verb="create", resource="configmaps", status=422, skip=2, times=1)
    assert [http.post(CMS, json=configmap(n)).status_code for n in "abcd"] == [201, 201, 422, 201]
    assert fakekube.faults.rules == []


def test_faults_match_on_resource_verb_and_name(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.create(configmap("a"))
    fakekube.create(configmap("b"))
    rule = fakekube.faults.add(verb="get", resource="configmaps", name="b", status=403)
    assert http.get(f"{CMS}/a").status_code == 200
    assert http.get(f"{CMS}/b").status_code == 403
    assert http.get(f"{CMS}/b").status_code == 403  # unlimited until removed
    assert http.get(CMS).status_code == 200  # list is another verb
    assert rule.hits == 2
    fakekube.faults.remove(rule)
    assert http.get(f"{CMS}/b").status_code == 200


def test_lightkube_sees_injected_errors_as_api_errors(client: Client, fakekube: FakeKube) -> None:
    fakekube.faults.add(verb="create", resource="jobs", status=409, times=1)
    body = Job.from_dict(job("j"))
    with pytest.raises(ApiError) as error:
        client.create(body)
    assert error.value.status.code == 409
    client.create(body)


def test_too_many_requests_carries_retry_after(http: httpx.Client, fakekube: FakeKube) -> None:
    fakekube.faults.add(resource="configmaps", status=429, retry_after=2, times=1)
    response = http.get(CMS)
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    assert response.json()["details"]["retryAfterSeconds"] == 2


def test_delay_stalls_only_matching_requests(http: httpx.Client, fakekube: FakeKube) -> None:
    held = fakekube.faults.add(verb="create", resource="configmaps", delay=2, times=1)
    results: dict[str, float] = {}

    def slow_create() -> None:
        started = time.monotonic()
        with httpx.Client(base_url=fakekube.url) as other:
            results["status"] = other.post(CMS, json=configmap("slow")).status_code
        results["slow"] = time.monotonic() - started

    thread = threading.Thread(target=slow_create)
    thread.start()
    fakekube.wait_for(lambda: held.hits == 1, message="the create to be held")

    assert http.get(CMS).status_code == 200
    # Served while the create waits: requests are logged as they are answered.
    assert [r.verb for r in fakekube.requests] == ["list"]
    thread.join()
    assert results["status"] == 201 and results["slow"] >= 2
    assert [r.verb for r in fakekube.requests] == ["list", "create"]


def test_drop_closes_the_connection_without_a_response(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.faults.add(verb="list", resource="configmaps", drop=True, times=1)
    with pytest.raises(httpx.TransportError):
        http.get(CMS)
    assert http.get(CMS).status_code == 200
    dropped = next(r for r in fakekube.requests if r.verb == "list")
    assert dropped.status_code is None


def test_request_log_uses_rbac_verbs(
    client: Client, fakekube: FakeKube, http: httpx.Client
) -> None:
    client.create(ConfigMap(metadata=ObjectMeta(name="cm")))
    client.get(ConfigMap, "cm")
    list(client.list(ConfigMap))
    list(client.list(ConfigMap, namespace="*"))
    client.patch(ConfigMap, "cm", {"data": {"a": "b"}})
    client.replace(client.get(ConfigMap, "cm"))
    client.apply(ConfigMap(metadata=ObjectMeta(name="cm2", namespace="default")))
    next(iter(client.watch(ConfigMap, namespace="default")))
    client.delete(ConfigMap, "cm")
    client.deletecollection(ConfigMap)
    http.get("/apis/batch/v1")
    records = [
        (r.method, r.verb, r.api_group, r.version, r.resource, r.namespace, r.name, r.status_code)
        for r in fakekube.requests
    ]
    assert records == [
        ("POST", "create", "", "v1", "configmaps", "default", "", 201),
        ("GET", "get", "", "v1", "configmaps", "default", "cm", 200),
        ("GET", "list", "", "v1", "configmaps", "default", "", 200),
        ("GET", "list", "", "v1", "configmaps", "", "", 200),
        ("PATCH", "patch", "", "v1", "configmaps", "default", "cm", 200),
        ("GET", "get", "", "v1", "configmaps", "default", "cm", 200),
        ("PUT", "update", "", "v1", "configmaps", "default", "cm", 200),
        ("PATCH", "patch", "", "v1", "configmaps", "default", "cm2", 201),
        ("GET", "watch", "", "v1", "configmaps", "default", "", 200),
        ("DELETE", "delete", "", "v1", "configmaps", "default", "cm", 200),
        ("DELETE", "deletecollection", "", "v1", "configmaps", "default", "", 200),
        ("GET", "get", "", "", "", "", "", 200),
    ]
    assert fakekube.requests[-1].path == "/apis/batch/v1"
    fakekube.clear_requests()
    assert fakekube.requests == []


def test_request_log_records_subresources_and_injected_faults(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    fakekube.create(job("j"))
    fakekube.faults.add(verb="patch", resource="jobs", subresource="status", status=503, times=1)
    http.patch(
        "/apis/batch/v1/namespaces/default/jobs/j/status",
        json={"status": {"active": 1}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    record = fakekube.requests[-1]
    assert (
        record.verb,
        record.api_group,
        record.resource,
        record.subresource,
        record.status_code,
    ) == ("patch", "batch", "jobs", "status", 503)


def test_request_log_names_the_user_of_each_kubeconfig(fakekube: FakeKube, tmp_path) -> None:
    for user in ("alice", "bob"):
        path = fakekube.write_kubeconfig(tmp_path / user, user=user)
        list(Client(config=KubeConfig.from_file(path)).list(ConfigMap, namespace="default"))
    users = [r.user for r in fakekube.requests if r.resource == "configmaps"]
    assert users == ["alice", "bob"]
