"""Who a request comes from: bearer tokens, ServiceAccounts, anonymous requests, impersonation.

The fake's token authenticator is deliberately simple: every bearer token authenticates as the
user it names, except the admin token of the default kubeconfig (``ADMIN_TOKEN``), which is the
cluster administrator in ``system:masters``. A token of the form
``system:serviceaccount:<namespace>:<name>`` is a ServiceAccount token: it authenticates only while
that ServiceAccount exists (401 otherwise, as for a bound token whose account was deleted), with
the groups kube-apiserver gives ServiceAccounts. A request without a token is
``system:anonymous``. Impersonation (``Impersonate-User``/``-Group``/``-Uid``/``-Extra-*``, what
``kubectl --as`` sends) follows the apiserver's impersonation filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from .errors import GroupResource, StatusError

ADMIN_TOKEN = "fakekube-token"
ADMIN_NAME = "kubernetes-admin"
SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
SERVICE_ACCOUNTS = GroupResource("", "serviceaccounts")

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX = "Impersonate-Extra-"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


@dataclass(frozen=True)
class UserInfo:
    """``user.Info``: a name, a UID, groups and extra attributes."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def is_privileged(self) -> bool:
        """In ``system:masters``, which every authorizer chain lets through unchecked."""
        return SYSTEM_MASTERS in self.groups


ADMIN = UserInfo(ADMIN_NAME, groups=(SYSTEM_MASTERS, AUTHENTICATED))
ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED,))


def service_account_user(namespace: str, name: str) -> str:
    """The user name a ServiceAccount authenticates as (``serviceaccount.MakeUsername``)."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, str]:
    """``serviceaccount.MakeGroupNames``: all ServiceAccounts, and those of the namespace."""
    return SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}"


def split_service_account(username: str) -> tuple[str, str] | None:
    """``serviceaccount.SplitUsername``: (namespace, name), or None if not a valid SA user name."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if len(namespace) > 63 or not _DNS1123_LABEL.match(namespace):
        return None
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return None
    return namespace, name


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


# Looks a ServiceAccount up: its UID if it exists, else None.
ServiceAccountLookup = Callable[[str, str], str | None]


class Authenticator:
    """Bearer tokens to users, as described in the module docstring."""

    def __init__(self, service_account_uid: ServiceAccountLookup):
        self._service_account_uid = service_account_uid

    def authenticate(self, authorization: str) -> UserInfo:
        """The user of an ``Authorization`` header value; raises 401 for a dead SA token."""
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # No credentials this server understands: anonymous, as kube-apiserver's default.
            return ANONYMOUS_USER
        if token == ADMIN_TOKEN:
            return ADMIN
        account = split_service_account(token)
        if account is None:
            return UserInfo(token, groups=(AUTHENTICATED,))
        uid = self._service_account_uid(*account)
        if uid is None:
            raise unauthorized()
        return UserInfo(
            token, uid=uid, groups=(*service_account_groups(account[0]), AUTHENTICATED)
        )


@dataclass(frozen=True)
class ImpersonationRequest:
    """One thing a request asks to act as: the ``impersonate`` attributes the requester needs."""

    kind: str  # ServiceAccount, User, Group, UserExtra or UID
    name: str
    namespace: str = ""
    extra_key: str = ""

    @property
    def resource(self) -> str:
        return _IMPERSONATED_RESOURCES[self.kind]

    @property
    def api_group(self) -> str:
        return "authentication.k8s.io" if self.kind in ("UserExtra", "UID") else ""

    def go_string(self) -> str:
        """How Go's ``%v`` prints the ``ObjectReference`` the apiserver builds for it."""
        api_version = "authentication.k8s.io/v1" if self.api_group else ""
        fields = (self.kind, self.namespace, self.name, "", api_version, "", self.extra_key)
        return "{" + " ".join(fields) + "}"


_IMPERSONATED_RESOURCES = {
    "ServiceAccount": "serviceaccounts",
    "User": "users",
    "Group": "groups",
    "UserExtra": "userextras",
    "UID": "uids",
}


def impersonation_requests(
    headers: Mapping[str, str], all_values: Callable[[str], list[str]]
) -> list[ImpersonationRequest]:
    """``buildImpersonationRequests``: what the Impersonate-* headers ask for, in check order.

    ``headers`` is case-insensitive; ``all_values`` gives every value of a repeated header.
    Groups, extras or a UID without a user are a bad request.
    """
    requests: list[ImpersonationRequest] = []
    user = headers.get(IMPERSONATE_USER, "")
    if user:
        account = split_service_account(user)
        if account is not None:
            requests.append(ImpersonationRequest("ServiceAccount", account[1], account[0]))
        else:
            requests.append(ImpersonationRequest("User", user))
    groups = all_values(IMPERSONATE_GROUP)
    requests += [ImpersonationRequest("Group", group) for group in groups]
    extra_headers = sorted(
        {k for k in headers if k.lower().startswith(IMPERSONATE_EXTRA_PREFIX.lower())}
    )
    extras = [
        ImpersonationRequest(
            "UserExtra", value, extra_key=unquote(header[len(IMPERSONATE_EXTRA_PREFIX) :].lower())
        )
        for header in extra_headers
        for value in all_values(header)
    ]
    requests += extras
    uid = headers.get(IMPERSONATE_UID, "")
    if uid:
        requests.append(ImpersonationRequest("UID", uid))
    if (groups or extras or uid) and not user:
        listed = " ".join(r.go_string() for r in requests)
        raise StatusError.bad_request(f"requested [{listed}] without impersonating a user")
    return requests


def impersonated_user(requests: list[ImpersonationRequest]) -> UserInfo:
    """The user a request acts as once every impersonation request has been authorized."""
    name, uid = "", ""
    groups: list[str] = []
    extra: dict[str, tuple[str, ...]] = {}
    groups_given = any(r.kind == "Group" for r in requests)
    for request in requests:
        if request.kind == "ServiceAccount":
            name = service_account_user(request.namespace, request.name)
            if not groups_given:
                groups = list(service_account_groups(request.namespace))
        elif request.kind == "User":
            name = request.name
        elif request.kind == "Group":
            groups.append(request.name)
        elif request.kind == "UserExtra":
            extra[request.extra_key] = (*extra.get(request.extra_key, ()), request.name)
        else:
            uid = request.name
    if name != ANONYMOUS:
        if AUTHENTICATED not in groups and UNAUTHENTICATED not in groups:
            groups.append(AUTHENTICATED)
    elif UNAUTHENTICATED not in groups:
        groups.append(UNAUTHENTICATED)
    return UserInfo(name, uid=uid, groups=tuple(groups), extra=extra)
