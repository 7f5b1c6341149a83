"""RBAC authorization, OwnerReferencesPermissionEnforcement and access reviews, as
kube-apiserver applies them: decisions, exact 403 messages, and the reviews kubectl uses."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from fakekube import FakeKube, service_account_user
from fakekube.sandbox import FakeKubeProcess

from .conftest import CRD_FILE, configmap, job

APP = service_account_user("model", "app")
RBAC = "rbac.authorization.k8s.io"
KUBECTL = shutil.which("kubectl")


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    """An RBAC-enforcing server with the ServiceAccount model/app, which is granted nothing."""
    with FakeKube(authorization="RBAC") as server:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "model"}})
        server.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "app", "namespace": "model"},
            }
        )
        yield server


def client_as(kube: FakeKube, user: str | None = APP, **headers: str) -> httpx.Client:
    """Raw HTTP as `user`'s bearer token (None: no credentials at all)."""
    if user is not None:
        headers["Authorization"] = f"Bearer {user}"
    return httpx.Client(base_url=kube.url, headers=headers, timeout=10)


def role(name: str, *rules: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    kind = "Role" if namespace else "ClusterRole"
    return {"apiVersion": f"{RBAC}/v1", "kind": kind, "metadata": meta, "rules": list(rules)}


def rule(groups: list[str], resources: list[str], verbs: list[str], **more: Any) -> dict:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **more}


def binding(
    name: str,
    role_name: str,
    *subjects: dict[str, Any],
    namespace: str | None = None,
    role_kind: str = "ClusterRole",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding" if namespace else "ClusterRoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role_name},
        "subjects": list(subjects),
    }


SA_SUBJECT = {"kind": "ServiceAccount", "name": "app", "namespace": "model"}


def grant(kube: FakeKube, *rules: dict[str, Any], subject: dict[str, Any] = SA_SUBJECT) -> None:
    kube.create(role("granted", *rules))
    kube.create(binding("granted", "granted", subject))


def forbidden_message(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    body = response.json()
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status",
        "Failure",
        "Forbidden",
        403,
    )
    return body["message"]


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"ports": [{"port": 80}]},
}


# Decisions and messages.


def test_a_request_no_rule_grants_gets_kubernetes_forbidden_message(kube: FakeKube) -> None:
    with client_as(kube) as http:
        response = http.post("/api/v1/namespaces/default/services", json=SERVICE)

    assert forbidden_message(response) == (
        'services is forbidden: User "system:serviceaccount:model:app" cannot create resource '
        '"services" in API group "" in the namespace "default"'
    )
    assert response.json()["details"] == {"kind": "services"}
    assert kube.get("v1", "Service", "web", "default") is None


def test_cluster_scope_named_object_and_subresource_messages(kube: FakeKube) -> None:
    kube.create(job("batch-1"))
    with client_as(kube) as http:
        cluster_wide = http.get("/apis/batch/v1/jobs")
        named = http.get("/api/v1/namespaces/default/configmaps/settings")
        status = http.patch(
            "/apis/batch/v1/namespaces/default/jobs/batch-1/status",
            json={"status": {}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        path = http.get("/metrics")

    assert forbidden_message(cluster_wide) == (
        'jobs.batch is forbidden: User "system:serviceaccount:model:app" cannot list resource '
        '"jobs" in API group "batch" at the cluster scope'
    )
    assert forbidden_message(named) == (
        'configmaps "settings" is forbidden: User "system:serviceaccount:model:app" cannot get '
        'resource "configmaps" in API group "" in the namespace "default"'
    )
    assert named.json()["details"] == {"name": "settings", "kind": "configmaps"}
    assert forbidden_message(status) == (
        'jobs.batch "batch-1" is forbidden: User "system:serviceaccount:model:app" cannot patch '
        'resource "jobs/status" in API group "batch" in the namespace "default"'
    )
    assert forbidden_message(path) == (
        'forbidden: User "system:serviceaccount:model:app" cannot get path "/metrics"'
    )
    assert path.json()["details"] == {}


def test_authorization_comes_before_routing(kube: FakeKube) -> None:
    # A resource the server does not have is still forbidden, not "not found", to this user.
    with client_as(kube) as http:
        response = http.get("/apis/example.com/v1/namespaces/default/gadgets")

    assert forbidden_message(response).startswith('gadgets.example.com is forbidden: User "system')


def test_a_granted_request_is_served_and_logged_as_the_service_account(kube: FakeKube) -> None:
    grant(kube, rule([""], ["services"], ["create", "get"]))

    with client_as(kube) as http:
        created = http.post("/api/v1/namespaces/default/services", json=SERVICE)
        read = http.get("/api/v1/namespaces/default/services/web")
        listed = http.get("/api/v1/namespaces/default/services")

    assert (created.status_code, read.status_code) == (201, 200)
    assert forbidden_message(listed).endswith(
        'cannot list resource "services" in API group "" in the namespace "default"'
    )
    mine = [(r.verb, r.status_code) for r in kube.requests if r.user == APP]
    assert mine == [("create", 201), ("get", 200), ("list", 403)]


def test_verbs_follow_the_request_list_watch_and_deletecollection(kube: FakeKube) -> None:
    kube.create(configmap("a"))
    grant(kube, rule([""], ["configmaps"], ["list"]))

    with client_as(kube) as http:
        listed = http.get("/api/v1/namespaces/default/configmaps")
        watched = http.get("/api/v1/namespaces/default/configmaps", params={"watch": "1"})
        deleted = http.delete("/api/v1/namespaces/default/configmaps")

    assert listed.status_code == 200
    assert "cannot watch resource" in forbidden_message(watched)
    assert "cannot deletecollection resource" in forbidden_message(deleted)


def test_subresources_are_rules_of_their_own(kube: FakeKube) -> None:
    kube.create(job("batch-1"))
    grant(kube, rule(["batch"], ["*/status"], ["get"]), rule(["batch"], ["jobs"], ["*"]))

    with client_as(kube) as http:
        status = http.get("/apis/batch/v1/namespaces/default/jobs/batch-1/status")
        job_itself = http.get("/apis/batch/v1/namespaces/default/jobs/batch-1")
        status_patch = http.patch(
            "/apis/batch/v1/namespaces/default/jobs/batch-1/status",
            json={"status": {}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        pod_proxy = http.get("/api/v1/namespaces/default/pods/p/proxy/metrics")

    assert (status.status_code, job_itself.status_code) == (200, 200)
    # Every verb on jobs is not a verb on jobs/status, and */status grants only get.
    assert 'cannot patch resource "jobs/status"' in forbidden_message(status_patch)
    assert 'cannot get resource "pods/proxy"' in forbidden_message(pod_proxy)


def test_resource_names_limit_a_rule_to_named_objects(kube: FakeKube) -> None:
    for name in ("mine", "other"):
        kube.create(configmap(name))
    grant(kube, rule([""], ["configmaps"], ["get", "list"], resourceNames=["mine"]))

    with client_as(kube) as http:
        mine = http.get("/api/v1/namespaces/default/configmaps/mine")
        other = http.get("/api/v1/namespaces/default/configmaps/other")
        all_of_them = http.get("/api/v1/namespaces/default/configmaps")
        # A list pinned to one name by a field selector is a request for that name.
        pinned = http.get(
            "/api/v1/namespaces/default/configmaps", params={"fieldSelector": "metadata.name=mine"}
        )

    assert mine.status_code == 200
    assert forbidden_message(other).startswith('configmaps "other" is forbidden')
    assert forbidden_message(all_of_them).startswith("configmaps is forbidden")
    assert [i["metadata"]["name"] for i in pinned.json()["items"]] == ["mine"]


def test_non_resource_urls_with_a_trailing_wildcard(kube: FakeKube) -> None:
    grant(kube, {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]})

    with client_as(kube) as http:
        metrics = http.get("/metrics")
        logs = http.get("/logs/kube-apiserver.log")
        other = http.get("/debug/pprof")

    # Authorized, then not found: the fake serves neither path.
    assert (metrics.status_code, logs.status_code) == (404, 404)
    assert forbidden_message(other) == (
        'forbidden: User "system:serviceaccount:model:app" cannot get path "/debug/pprof"'
    )


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "Group", "name": "system:serviceaccounts"},
        {"kind": "Group", "name": "system:serviceaccounts:model"},
        {"kind": "Group", "name": "system:authenticated"},
        {"kind": "User", "name": APP},
    ],
    ids=["all-service-accounts", "namespace-service-accounts", "authenticated", "user-name"],
)
def test_a_service_account_matches_its_groups_and_user_name(
    kube: FakeKube, subject: dict[str, Any]
) -> None:
    grant(kube, rule([""], ["configmaps"], ["list"]), subject=subject)

    with client_as(kube) as http:
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 200


def test_groups_of_another_namespace_do_not_match(kube: FakeKube) -> None:
    grant(
        kube,
        rule([""], ["configmaps"], ["list"]),
        subject={"kind": "Group", "name": "system:serviceaccounts:default"},
    )

    with client_as(kube) as http:
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 403


def test_a_role_binding_grants_in_its_namespace_only(kube: FakeKube) -> None:
    kube.create(role("reader", rule([""], ["configmaps"], ["list"]), namespace="model"))
    # A ServiceAccount subject without a namespace is one of the binding's namespace.
    kube.create(
        binding(
            "reader",
            "reader",
            {"kind": "ServiceAccount", "name": "app"},
            namespace="model",
            role_kind="Role",
        )
    )

    with client_as(kube) as http:
        own = http.get("/api/v1/namespaces/model/configmaps")
        elsewhere = http.get("/api/v1/namespaces/default/configmaps")
        everywhere = http.get("/api/v1/configmaps")

    assert own.status_code == 200
    assert forbidden_message(elsewhere).endswith('in the namespace "default"')
    assert forbidden_message(everywhere).endswith("at the cluster scope")


def test_a_role_binding_to_a_cluster_role_grants_it_in_the_namespace(kube: FakeKube) -> None:
    kube.create(role("reader", rule([""], ["configmaps"], ["list"])))
    kube.create(binding("reader", "reader", SA_SUBJECT, namespace="default"))

    with client_as(kube) as http:
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 200
        assert http.get("/api/v1/namespaces/model/configmaps").status_code == 403


def test_a_binding_to_a_missing_role_says_so_in_the_denial(kube: FakeKube) -> None:
    kube.create(binding("dangling", "nowhere", SA_SUBJECT))

    with client_as(kube) as http:
        response = http.get("/api/v1/namespaces/default/configmaps")

    assert forbidden_message(response) == (
        'configmaps is forbidden: User "system:serviceaccount:model:app" cannot list resource '
        '"configmaps" in API group "" in the namespace "default": RBAC: '
        'clusterrole.rbac.authorization.k8s.io "nowhere" not found'
    )


def test_rules_change_with_the_roles_at_once(kube: FakeKube) -> None:
    grant(kube, rule([""], ["configmaps"], ["list"]))
    with client_as(kube) as http:
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 200
        kube.delete(f"{RBAC}/v1", "ClusterRoleBinding", "granted")
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 403


# Who is asking.


def test_the_default_kubeconfig_is_the_administrator(kube: FakeKube, tmp_path: Path) -> None:
    token = yaml.safe_load(kube.write_kubeconfig(tmp_path / "k").read_text())["users"][0]
    with client_as(kube, token["user"]["token"]) as http:
        assert http.get("/api/v1/namespaces/default/configmaps").status_code == 200
        assert http.post("/api/v1/namespaces/default/services", json=SERVICE).status_code == 201
    assert {r.user for r in kube.requests} == {"kubernetes-admin"}


def test_anonymous_requests_get_health_and_version_only(kube: FakeKube) -> None:
    with client_as(kube, None) as http:
        health = http.get("/readyz")
        version = http.get("/version")
        discovery = http.get("/api")
        pods = http.get("/api/v1/pods")

    assert (health.status_code, version.status_code) == (200, 200)
    assert (
        forbidden_message(discovery) == 'forbidden: User "system:anonymous" cannot get path "/api"'
    )
    assert forbidden_message(pods).startswith('pods is forbidden: User "system:anonymous"')


def test_every_authenticated_user_may_discover_the_api(kube: FakeKube) -> None:
    with client_as(kube, "someone") as http:
        assert http.get("/api").status_code == 200
        assert http.get("/apis/batch/v1").status_code == 200


def test_a_token_of_a_missing_service_account_is_unauthorized(kube: FakeKube) -> None:
    with client_as(kube, service_account_user("model", "ghost")) as http:
        response = http.get("/api/v1/namespaces/default/configmaps")

    assert response.status_code == 401
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_impersonation_needs_the_impersonate_verb(kube: FakeKube) -> None:
    with client_as(kube, **{"Impersonate-User": "bob"}) as http:
        user = http.get("/api/v1/namespaces/default/configmaps")
    with client_as(kube, **{"Impersonate-User": service_account_user("default", "builder")}) as h:
        account = h.get("/api/v1/namespaces/default/configmaps")

    assert forbidden_message(user) == (
        'users "bob" is forbidden: User "system:serviceaccount:model:app" cannot impersonate '
        'resource "users" in API group "" at the cluster scope'
    )
    assert forbidden_message(account) == (
        'serviceaccounts "builder" is forbidden: User "system:serviceaccount:model:app" cannot '
        'impersonate resource "serviceaccounts" in API group "" in the namespace "default"'
    )


def test_the_administrator_impersonates_a_service_account_with_its_groups(kube: FakeKube) -> None:
    grant(
        kube,
        rule([""], ["configmaps"], ["list"]),
        subject={"kind": "Group", "name": "system:serviceaccounts:model"},
    )
    admin = {"Authorization": "Bearer fakekube-token", "Impersonate-User": APP}

    with client_as(kube, None, **admin) as http:
        listed = http.get("/api/v1/namespaces/default/configmaps")
        created = http.post("/api/v1/namespaces/default/services", json=SERVICE)

    assert listed.status_code == 200
    assert forbidden_message(created).startswith(
        'services is forbidden: User "system:serviceaccount:model:app" cannot create'
    )
    assert [r.user for r in kube.requests][-2:] == [APP, APP]


def test_impersonating_groups_without_a_user_is_a_bad_request(kube: FakeKube) -> None:
    headers = {"Authorization": "Bearer fakekube-token", "Impersonate-Group": "system:masters"}
    with client_as(kube, None, **headers) as http:
        response = http.get("/api/v1/namespaces/default/configmaps")

    assert response.status_code == 400
    assert response.json()["message"] == (
        "requested [{Group  system:masters    }] without impersonating a user"
    )


def test_always_allow_is_the_default(fakekube: FakeKube) -> None:
    with client_as(fakekube, "nobody-special") as http:
        assert http.post("/api/v1/namespaces/default/services", json=SERVICE).status_code == 201


# OwnerReferencesPermissionEnforcement.


@pytest.fixture
def owner(kube: FakeKube) -> dict[str, Any]:
    """A Widget (the test CRD) that the ServiceAccount may create Jobs under."""
    kube.apply_yaml(CRD_FILE.read_text())
    widget = kube.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {"image": "locustio/locust:2.31", "replicas": 1},
        }
    )
    kube.create(role("jobs", rule(["batch"], ["jobs"], ["create", "update"])))
    kube.create(binding("jobs", "jobs", SA_SUBJECT))
    return widget


def owned_job(owner: dict[str, Any], block: bool | None = True, **ref: Any) -> dict[str, Any]:
    reference = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        **ref,
    }
    if block is not None:
        reference["blockOwnerDeletion"] = block
    obj = job("w-master")
    obj["metadata"]["ownerReferences"] = [reference]
    return obj


JOBS = "/apis/batch/v1/namespaces/default/jobs"


def test_blocking_an_owners_deletion_needs_update_on_its_finalizers(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    with client_as(kube) as http:
        refused = http.post(JOBS, json=owned_job(owner))
        grant(kube, rule(["example.com"], ["widgets/finalizers"], ["update"]))
        accepted = http.post(JOBS, json=owned_job(owner))

    assert forbidden_message(refused) == (
        'jobs.batch "w-master" is forbidden: cannot set blockOwnerDeletion if an ownerReference '
        "refers to a resource you can't set finalizers on: , <nil>"
    )
    assert refused.json()["details"] == {"name": "w-master", "group": "batch", "kind": "jobs"}
    assert accepted.status_code == 201


def test_the_finalizers_check_names_the_owner(kube: FakeKube, owner: dict[str, Any]) -> None:
    grant(kube, rule(["example.com"], ["widgets/finalizers"], ["update"], resourceNames=["x"]))
    with client_as(kube) as http:
        response = http.post(JOBS, json=owned_job(owner))

    assert "can't set finalizers on" in forbidden_message(response)


def test_owner_references_that_do_not_block_need_nothing_more(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    with client_as(kube) as http:
        not_blocking = http.post(JOBS, json=owned_job(owner, block=False))

    assert not_blocking.status_code == 201


def test_changing_owner_references_on_update_needs_delete(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    kube.create(job("w-master"))
    current = kube.get("batch/v1", "Job", "w-master", "default")
    assert current is not None
    with client_as(kube) as http:
        update = owned_job(owner, block=False)
        update["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        update["spec"] = current["spec"]
        response = http.put(f"{JOBS}/w-master", json=update)

    assert forbidden_message(response) == (
        'jobs.batch "w-master" is forbidden: cannot set an ownerRef on a resource you can\'t '
        "delete: , <nil>"
    )


def test_an_owner_of_an_unknown_kind_cannot_be_blocked(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    grant(kube, rule(["*"], ["*"], ["*"]))
    with client_as(kube) as http:
        response = http.post(JOBS, json=owned_job(owner, apiVersion="example.com/v9"))

    assert forbidden_message(response) == (
        'jobs.batch "w-master" is forbidden: cannot set blockOwnerDeletion in this case because '
        "cannot find RESTMapping for APIVersion example.com/v9 Kind Widget: no matches for kind "
        '"Widget" in version "example.com/v9"'
    )


def test_the_administrator_and_the_servers_own_controllers_are_not_checked(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    with client_as(kube, "fakekube-token") as http:
        assert http.post(JOBS, json=owned_job(owner)).status_code == 201
    # The Job controller gives the Job's pods blocking owner references of its own.
    assert kube.jobs.create_pods("default", "w-master")


def test_without_rbac_owner_references_are_not_checked(fakekube: FakeKube) -> None:
    fakekube.apply_yaml(CRD_FILE.read_text())
    widget = fakekube.create(
        {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w", "namespace": "default"},
            "spec": {"image": "locustio/locust:2.31", "replicas": 1},
        }
    )
    with client_as(fakekube, "someone") as http:
        assert (
            http.post(JOBS, json=owned_job(widget, apiVersion="example.com/v9")).status_code == 201
        )


# Access reviews.

REVIEWS = "/apis/authorization.k8s.io/v1"


def access_review(verb: str, resource: str, group: str = "", **more: str) -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {"verb": verb, "resource": resource, "group": group, **more}
        },
    }


def test_self_subject_access_review_answers_for_the_requester(kube: FakeKube) -> None:
    grant(kube, rule(["batch"], ["jobs"], ["create"]))

    with client_as(kube) as http:
        allowed = http.post(
            f"{REVIEWS}/selfsubjectaccessreviews",
            json=access_review("create", "jobs", "batch", namespace="default"),
        )
        denied = http.post(
            f"{REVIEWS}/selfsubjectaccessreviews",
            json=access_review("delete", "jobs", "batch", namespace="default"),
        )

    assert allowed.status_code == 201
    assert allowed.json()["status"] == {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "granted" of ClusterRole "granted" to '
        'ServiceAccount "app/model"',
    }
    assert allowed.json()["spec"] == {
        "resourceAttributes": {
            "verb": "create",
            "resource": "jobs",
            "group": "batch",
            "namespace": "default",
        }
    }
    assert denied.json()["status"] == {"allowed": False}
    # A review is an answer, not an object: there is nothing to read back.
    with client_as(kube, "fakekube-token") as http:
        assert http.get(f"{REVIEWS}/selfsubjectaccessreviews").status_code == 405


def test_self_subject_access_review_names_the_role_binding(kube: FakeKube) -> None:
    kube.create(role("reader", rule([""], ["pods"], ["get"]), namespace="model"))
    kube.create(
        binding(
            "read",
            "reader",
            {"kind": "ServiceAccount", "name": "app"},
            namespace="model",
            role_kind="Role",
        )
    )

    with client_as(kube) as http:
        response = http.post(
            f"{REVIEWS}/selfsubjectaccessreviews",
            json=access_review("get", "pods", namespace="model"),
        )

    assert response.json()["status"]["reason"] == (
        'RBAC: allowed by RoleBinding "read/model" of Role "reader" to ServiceAccount "app/model"'
    )


def test_an_access_review_needs_exactly_one_kind_of_attributes(kube: FakeKube) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {},
    }
    with client_as(kube) as http:
        response = http.post(f"{REVIEWS}/selfsubjectaccessreviews", json=review)

    assert response.status_code == 422
    assert response.json()["message"] == (
        '.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: null: '
        "exactly one of nonResourceAttributes or resourceAttributes must be specified"
    )


def test_subject_access_review_asks_about_another_user(kube: FakeKube) -> None:
    grant(kube, rule([""], ["configmaps"], ["list"]), subject={"kind": "User", "name": "alice"})
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "alice",
            "resourceAttributes": {"verb": "list", "resource": "configmaps"},
        },
    }
    with client_as(kube, "fakekube-token") as http:
        answer = http.post(f"{REVIEWS}/subjectaccessreviews", json=review)
        no_user = http.post(
            f"{REVIEWS}/subjectaccessreviews", json={**review, "spec": {"resourceAttributes": {}}}
        )
    with client_as(kube) as http:
        not_permitted = http.post(f"{REVIEWS}/subjectaccessreviews", json=review)

    assert answer.json()["status"]["allowed"] is True
    assert no_user.json()["message"] == (
        '.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of user '
        "or group must be specified"
    )
    assert forbidden_message(not_permitted).startswith(
        "subjectaccessreviews.authorization.k8s.io is forbidden"
    )


def test_local_subject_access_review_stays_in_its_namespace(kube: FakeKube) -> None:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "LocalSubjectAccessReview",
        "spec": {
            "user": APP,
            "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "default"},
        },
    }
    with client_as(kube, "fakekube-token") as http:
        response = http.post(f"{REVIEWS}/namespaces/model/localsubjectaccessreviews", json=review)

    assert response.json()["message"] == (
        '.authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: '
        '"default": must match metadata.namespace'
    )


def test_self_subject_rules_review_lists_what_the_user_may_do(kube: FakeKube) -> None:
    grant(kube, rule(["batch"], ["jobs"], ["create"]))
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": "default"},
    }
    with client_as(kube) as http:
        status = http.post(f"{REVIEWS}/selfsubjectrulesreviews", json=review).json()["status"]

    assert {"verbs": ["create"], "apiGroups": ["batch"], "resources": ["jobs"]} in (
        status["resourceRules"]
    )
    assert {
        "verbs": ["get"],
        "nonResourceURLs": ["/livez", "/readyz", "/healthz", "/version", "/version/"],
    } in status["nonResourceRules"]
    assert status["incomplete"] is False


def test_self_subject_review_says_who_the_requester_is(kube: FakeKube) -> None:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    with client_as(kube) as http:
        info = http.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json=review)

    account = kube.get("v1", "ServiceAccount", "app", "model")
    assert account is not None
    assert info.json()["status"]["userInfo"] == {
        "username": APP,
        "uid": account["metadata"]["uid"],
        "groups": [
            "system:serviceaccounts",
            "system:serviceaccounts:model",
            "system:authenticated",
        ],
    }


# The real kubectl.

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="needs kubectl")


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def tls_kube() -> Iterator[FakeKube]:
    """As ``kube``, over HTTPS: kubectl sends a kubeconfig's token over TLS only."""
    with FakeKube(authorization="RBAC", tls=True) as server:
        server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "model"}})
        server.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "app", "namespace": "model"},
            }
        )
        grant(server, rule(["batch"], ["jobs"], ["create"]))
        yield server


@needs_kubectl
def test_kubectl_auth_can_i_as_the_kubeconfigs_service_account(
    tls_kube: FakeKube, tmp_path: Path
) -> None:
    config = tls_kube.write_kubeconfig(tmp_path / "app", user=APP)

    can = kubectl(config, "auth", "can-i", "create", "jobs")
    cannot = kubectl(config, "auth", "can-i", "create", "services")
    whoami = kubectl(config, "auth", "whoami")
    get = kubectl(config, "get", "pods")

    assert (can.returncode, can.stdout) == (0, "yes\n"), can.stderr
    assert (cannot.returncode, cannot.stdout) == (1, "no\n"), cannot.stderr
    assert f"Username    {APP}" in whoami.stdout, whoami.stderr
    assert get.stderr.strip() == (
        'Error from server (Forbidden): pods is forbidden: User "system:serviceaccount:model:app" '
        'cannot list resource "pods" in API group "" in the namespace "default"'
    )


@needs_kubectl
def test_kubectl_auth_can_i_as_a_service_account_from_the_admin_kubeconfig(
    tls_kube: FakeKube, tmp_path: Path
) -> None:
    admin = tls_kube.write_kubeconfig(tmp_path / "admin")

    can = kubectl(admin, "auth", "can-i", "create", "jobs", "--as", APP)
    cannot = kubectl(admin, "auth", "can-i", "delete", "jobs", "--as", APP)
    listed = kubectl(admin, "auth", "can-i", "--list", "--as", APP)

    assert (can.returncode, can.stdout) == (0, "yes\n"), can.stderr
    assert (cannot.returncode, cannot.stdout) == (1, "no\n"), cannot.stderr
    assert any(line.split()[:1] == ["jobs.batch"] for line in listed.stdout.splitlines())


@needs_kubectl
def test_standalone_server_enforces_rbac_for_kubectl(tmp_path: Path) -> None:
    server = FakeKubeProcess(tmp_path, "--authorization", "rbac", "--tls")
    try:
        assert server.url.startswith("https://127.0.0.1:")
        admin = kubectl(server.kubeconfig, "auth", "can-i", "delete", "jobs")
        someone = kubectl(server.kubeconfig, "auth", "can-i", "list", "pods", "--as", "someone")
    finally:
        assert server.stop() == 0
    assert (admin.returncode, admin.stdout) == (0, "yes\n"), admin.stderr
    assert (someone.returncode, someone.stdout) == (1, "no\n"), someone.stderr


def test_the_authorizer_records_admission_checks_too(
    kube: FakeKube, owner: dict[str, Any]
) -> None:
    grant(kube, rule(["example.com"], ["widgets/finalizers"], ["update"]))
    with client_as(kube) as http:
        assert http.post(JOBS, json=owned_job(owner)).status_code == 201

    mine = [c for c in kube.authorization_checks if c.attributes.user.name == APP]
    asked = [(c.attributes.verb, c.attributes.resource, c.attributes.subresource) for c in mine]
    assert asked == [("create", "jobs", ""), ("update", "widgets", "finalizers")]
    assert all(c.allowed for c in mine)
    assert mine[1].attributes.name == "w" and mine[1].attributes.namespace == "default"
