"""Authorization: kube-apiserver's RBAC authorizer over the Roles and bindings in the store.

``Authorizer`` is the chain a request meets: ``system:masters`` is let through first (the
apiserver's privileged-groups authorizer), then either everything (``AlwaysAllow``, the fake's
default) or the RBAC rules: the ClusterRoleBindings, and in a namespace that namespace's
RoleBindings, whose subjects match the user, and the rules of the roles they refer to. Rule
matching, the reasons and the error texts follow ``plugin/pkg/auth/authorizer/rbac`` and
``pkg/registry/rbac/validation`` in Kubernetes. ClusterRole aggregation is not run: an aggregated
role grants what its own ``rules`` say.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .authn import UserInfo
from .errors import GroupResource, StatusError
from .requestlog import RequestInfo
from .store import ObjectStore

ALWAYS_ALLOW = "AlwaysAllow"
RBAC = "RBAC"
MODES = (ALWAYS_ALLOW, RBAC)
RBAC_GROUP = "rbac.authorization.k8s.io"
CLUSTER_ROLES = GroupResource(RBAC_GROUP, "clusterroles")
CLUSTER_ROLE_BINDINGS = GroupResource(RBAC_GROUP, "clusterrolebindings")
ROLES = GroupResource(RBAC_GROUP, "roles")
ROLE_BINDINGS = GroupResource(RBAC_GROUP, "rolebindings")

Rule = dict[str, Any]


@dataclass(frozen=True)
class Attributes:
    """``authorizer.Attributes``: who asks to do what, on which resource or path."""

    user: UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @classmethod
    def of_request(cls, user: UserInfo, info: RequestInfo) -> Attributes:
        return cls(
            user,
            info.verb,
            info.is_resource_request,
            info.api_group,
            info.resource,
            info.subresource,
            info.namespace,
            info.name,
            info.path,
        )


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer: allowed or not, why, and an evaluation error (Go's ``err``)."""

    allowed: bool
    reason: str = ""
    error: str | None = None

    @property
    def error_text(self) -> str:
        """The error as Go's ``%v`` prints it: ``<nil>`` for none."""
        return "<nil>" if self.error is None else self.error


# Rule matching: rbacv1helpers.VerbMatches, APIGroupMatches, ResourceMatches, ...


def _verb_matches(rule: Rule, verb: str) -> bool:
    return any(v in ("*", verb) for v in rule.get("verbs") or ())


def _api_group_matches(rule: Rule, group: str) -> bool:
    return any(g in ("*", group) for g in rule.get("apiGroups") or ())


def _resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for resource in rule.get("resources") or ():
        if resource in ("*", combined):
            return True
        # "*/scale" matches the scale subresource of every resource.
        if subresource and resource == f"*/{subresource}":
            return True
    return False


def _resource_name_matches(rule: Rule, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or ():
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Rule) -> bool:
    """``RuleAllows``: whether one PolicyRule grants the request."""
    if not attrs.resource_request:
        return _verb_matches(rule, attrs.verb) and _non_resource_url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    return (
        _verb_matches(rule, attrs.verb)
        and _api_group_matches(rule, attrs.api_group)
        and _resource_matches(rule, combined, attrs.subresource)
        and _resource_name_matches(rule, attrs.name)
    )


# Bindings and their subjects.


def _applies_to(user: UserInfo, subject: dict[str, Any], namespace: str) -> bool:
    """``appliesToUser``: a subject naming the user, one of its groups, or its ServiceAccount."""
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject defaults to the binding's namespace.
        account_namespace = subject.get("namespace") or namespace
        if not account_namespace:
            return False
        return user.name == f"system:serviceaccount:{account_namespace}:{name}"
    return False


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _describe_binding(binding: dict[str, Any], subject: dict[str, Any]) -> str:
    meta, ref = binding["metadata"], binding.get("roleRef") or {}
    namespace = meta.get("namespace", "")
    if binding["kind"] == "ClusterRoleBinding":
        label, name = "ClusterRoleBinding", meta["name"]
    else:
        label, name = "RoleBinding", f"{meta['name']}/{namespace}"
    return (
        f'{label} "{name}" of {ref.get("kind", "")} "{ref.get("name", "")}" to '
        f"{_describe_subject(subject, namespace)}"
    )


def aggregate_errors(errors: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one error as is, more as ``[a, b]``, deduplicated."""
    unique = list(dict.fromkeys(errors))
    if len(errors) == 1 or len(unique) == 1:
        return unique[0]
    return "[" + ", ".join(unique) + "]"


# (where the rule comes from, the rule) or (None, an error resolving a binding's role)
Visit = tuple[str | None, Rule | None, str | None]


class RbacAuthorizer:
    """The RBAC authorizer, reading roles and bindings from the store on every decision."""

    def __init__(self, store: ObjectStore):
        self._store = store

    def _role_rules(self, ref: dict[str, Any], binding_namespace: str) -> tuple[list[Rule], str]:
        """``GetRoleReferenceRules``: the referenced role's rules, or why there are none."""
        kind, name = ref.get("kind"), ref.get("name", "")
        if kind == "Role":
            role = self._store.get(ROLES, binding_namespace, name)
            missing = f'role.{RBAC_GROUP} "{name}" not found'
        elif kind == "ClusterRole":
            role = self._store.get(CLUSTER_ROLES, "", name)
            missing = f'clusterrole.{RBAC_GROUP} "{name}" not found'
        else:
            return [], f'unsupported role reference kind: "{kind}"'
        if role is None:
            return [], missing
        return list(role.get("rules") or ()), ""

    def visit_rules(self, user: UserInfo, namespace: str) -> Iterator[Visit]:
        """``VisitRulesFor``: cluster-wide bindings first, then the namespace's."""
        # In name order: the store lists as etcd does.
        scopes = [(self._store.list(CLUSTER_ROLE_BINDINGS), "")]
        if namespace:
            scopes.append((self._store.list(ROLE_BINDINGS, namespace), namespace))
        for bindings, binding_namespace in scopes:
            for binding in bindings:
                subject = next(
                    (
                        s
                        for s in binding.get("subjects") or ()
                        if _applies_to(user, s, binding_namespace)
                    ),
                    None,
                )
                if subject is None:
                    continue
                rules, error = self._role_rules(binding.get("roleRef") or {}, binding_namespace)
                if error:
                    yield None, None, error
                    continue
                source = _describe_binding(binding, subject)
                for rule in rules:
                    yield source, rule, None

    def authorize(self, attrs: Attributes) -> Decision:
        errors = []
        for source, rule, error in self.visit_rules(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return Decision(True, f"RBAC: allowed by {source}")
            if error:
                errors.append(error)
        return Decision(False, f"RBAC: {aggregate_errors(errors)}" if errors else "")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """Every rule that applies to the user in the namespace, and the resolution errors."""
        rules, errors = [], []
        for _, rule, error in self.visit_rules(user, namespace):
            if rule is not None:
                rules.append(rule)
            if error:
                errors.append(error)
        return rules, errors


_EVERYTHING = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
_EVERY_PATH = [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


@dataclass(frozen=True)
class RulesReview:
    """What ``RuleResolver.RulesFor`` answers: a SelfSubjectRulesReview's status."""

    resource_rules: list[Rule]
    non_resource_rules: list[Rule]
    incomplete: bool = False
    evaluation_error: str = ""


@dataclass(frozen=True)
class AuthorizationCheck:
    """One decision: of a request, of an impersonation, or of an admission plugin's check."""

    attributes: Attributes
    allowed: bool
    reason: str


class Authorizer:
    """The apiserver's authorizer chain for ``mode`` (``AlwaysAllow`` or ``RBAC``).

    ``checks`` keeps the latest decisions (``history`` of them), for tests to see which rules a
    client's requests, and the admission checks on them, relied on.
    """

    def __init__(self, mode: str, store: ObjectStore, history: int = 10_000):
        if mode not in MODES:
            raise ValueError(f"authorization mode must be one of {', '.join(MODES)}: {mode!r}")
        self.mode = mode
        self._rbac = RbacAuthorizer(store)
        self.checks: deque[AuthorizationCheck] = deque(maxlen=history)

    @property
    def enforcing(self) -> bool:
        return self.mode == RBAC

    def authorize(self, attrs: Attributes) -> Decision:
        if attrs.user.is_privileged or self.mode == ALWAYS_ALLOW:
            decision = Decision(True)
        else:
            decision = self._rbac.authorize(attrs)
        self.checks.append(AuthorizationCheck(attrs, decision.allowed, decision.reason))
        return decision

    def rules_for(self, user: UserInfo, namespace: str) -> RulesReview:
        if self.mode == ALWAYS_ALLOW:
            return RulesReview(list(_EVERYTHING), list(_EVERY_PATH))
        rules, errors = self._rbac.rules_for(user, namespace)
        resource_rules = [
            {
                key: list(rule[key])
                for key in ("verbs", "apiGroups", "resources", "resourceNames")
                if rule.get(key) or key == "verbs"
            }
            for rule in rules
            if rule.get("resources")
        ]
        non_resource_rules = [
            {"verbs": list(rule.get("verbs") or ()), "nonResourceURLs": rule["nonResourceURLs"]}
            for rule in rules
            if rule.get("nonResourceURLs")
        ]
        error = aggregate_errors(errors) if errors else ""
        return RulesReview(resource_rules, non_resource_rules, False, error)


def forbidden_message(attrs: Attributes) -> str:
    """``responsewriters.forbiddenMessage``."""
    user = attrs.user.name
    if not attrs.resource_request:
        return f'User "{user}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    text = (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}"'
    )
    if attrs.namespace:
        return f'{text} in the namespace "{attrs.namespace}"'
    return f"{text} at the cluster scope"


def forbidden(attrs: Attributes, reason: str) -> StatusError:
    """``responsewriters.Forbidden``: the 403 an unauthorized request gets."""
    message = forbidden_message(attrs)
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request or not attrs.resource:
        return StatusError(403, "Forbidden", f"forbidden: {message}", {})
    return StatusError.forbidden(
        GroupResource(attrs.api_group, attrs.resource), attrs.name, message
    )


# The bootstrap policy kube-apiserver creates with RBAC on, as far as the fake needs it: the
# administrator's role and the rights every client has (discovery, health, "who am I", "can I").
_BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_BOOTSTRAP_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
_PUBLIC_INFO_URLS = ["/livez", "/readyz", "/healthz", "/version", "/version/"]
_BOOTSTRAP_ROLES: dict[str, list[Rule]] = {
    "cluster-admin": [
        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
        {"verbs": ["*"], "nonResourceURLs": ["*"]},
    ],
    "system:discovery": [
        {
            "verbs": ["get"],
            "nonResourceURLs": [
                *_PUBLIC_INFO_URLS,
                "/openapi",
                "/openapi/*",
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
            ],
        }
    ],
    "system:basic-user": [
        {
            "verbs": ["create"],
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        },
        {
            "verbs": ["create"],
            "apiGroups": ["authentication.k8s.io"],
            "resources": ["selfsubjectreviews"],
        },
    ],
    "system:public-info-viewer": [{"verbs": ["get"], "nonResourceURLs": _PUBLIC_INFO_URLS}],
}
_BOOTSTRAP_BINDINGS = {
    "cluster-admin": ["system:masters"],
    "system:discovery": ["system:authenticated"],
    "system:basic-user": ["system:authenticated"],
    "system:public-info-viewer": ["system:authenticated", "system:unauthenticated"],
}


def bootstrap_policy() -> list[dict[str, Any]]:
    """The bootstrap ClusterRoles and ClusterRoleBindings, ready to create."""

    def meta(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "labels": dict(_BOOTSTRAP_LABELS),
            "annotations": dict(_BOOTSTRAP_ANNOTATIONS),
        }

    api_version = f"{RBAC_GROUP}/v1"
    roles = [
        {"apiVersion": api_version, "kind": "ClusterRole", "metadata": meta(name), "rules": rules}
        for name, rules in _BOOTSTRAP_ROLES.items()
    ]
    bindings = [
        {
            "apiVersion": api_version,
            "kind": "ClusterRoleBinding",
            "metadata": meta(name),
            "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
        }
        for name, groups in _BOOTSTRAP_BINDINGS.items()
    ]
    return roles + bindings
