"""Access reviews: ask the server what a user may do, or who the requester is.

``authorization.k8s.io/v1`` SelfSubjectAccessReview (``kubectl auth can-i``), SubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview (``kubectl auth can-i --list``), and
``authentication.k8s.io/v1`` SelfSubjectReview (``kubectl auth whoami``). They are create-only and
store nothing: the answer is the object sent, with its status filled in by the authorizer the
requests themselves meet. Validation and errors follow ``pkg/registry/authorization`` and
``pkg/apis/authorization/validation``.
"""

from __future__ import annotations

from typing import Any

from .authn import UserInfo
from .errors import FieldError, GroupKind, StatusError
from .meta import now
from .rbac import Attributes, Authorizer, Decision
from .resources import ResourceType, Strategy

AUTHORIZATION = "authorization.k8s.io"
AUTHENTICATION = "authentication.k8s.io"
# The apiserver validates the internal object, whose kind is empty: errors read
# `.authorization.k8s.io "" is invalid: ...`.
_INVALID_KIND = GroupKind(AUTHORIZATION, "")
_RESOURCE_ATTRIBUTES = (
    "namespace",
    "verb",
    "group",
    "version",
    "resource",
    "subresource",
    "name",
    "fieldSelector",
    "labelSelector",
)
_NON_RESOURCE_ATTRIBUTES = ("path", "verb")
_SUBJECT_FIELDS = ("user", "groups", "extra", "uid")


def _present(value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The fields a typed decode keeps, without the empty ones (all are omitempty)."""
    return {k: value[k] for k in keys if isinstance(value, dict) and value.get(k)}


def _clean_spec(spec: dict[str, Any], subject: bool) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if isinstance(spec.get("resourceAttributes"), dict):
        cleaned["resourceAttributes"] = _present(spec["resourceAttributes"], _RESOURCE_ATTRIBUTES)
    if isinstance(spec.get("nonResourceAttributes"), dict):
        cleaned["nonResourceAttributes"] = _present(
            spec["nonResourceAttributes"], _NON_RESOURCE_ATTRIBUTES
        )
    if subject:
        cleaned |= _present(spec, _SUBJECT_FIELDS)
    return cleaned


def _spec_errors(spec: dict[str, Any], subject: bool) -> list[FieldError]:
    """``ValidateSelfSubjectAccessReviewSpec`` / ``ValidateSubjectAccessReviewSpec``."""
    errors = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        errors.append(
            FieldError.invalid(
                "spec.nonResourceAttributes",
                non_resource,
                "cannot be specified in combination with resourceAttributes",
            )
        )
    if resource is None and non_resource is None:
        errors.append(
            FieldError.invalid(
                "spec.resourceAttributes",
                None,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )
        )
    if subject and not spec.get("user") and not spec.get("groups"):
        errors.append(
            FieldError.invalid(
                "spec.user",
                spec.get("user", ""),
                "at least one of user or group must be specified",
            )
        )
    return errors


def _metadata_errors(meta: dict[str, Any], allow_namespace: bool = False) -> list[FieldError]:
    """The review's metadata must be empty (empty and null values count as unset)."""
    ignored = {"managedFields"} | ({"namespace"} if allow_namespace else set())
    if not any(v for k, v in meta.items() if k not in ignored):
        return []
    detail = "must be empty except for namespace" if allow_namespace else "must be empty"
    return [FieldError.invalid("metadata", {"creationTimestamp": None, **meta}, detail)]


def _attributes(user: UserInfo, spec: dict[str, Any]) -> Attributes:
    """``ResourceAttributesFrom`` / ``NonResourceAttributesFrom``."""
    resource = spec.get("resourceAttributes")
    if isinstance(resource, dict):
        return Attributes(
            user,
            str(resource.get("verb", "")),
            True,
            str(resource.get("group", "")),
            str(resource.get("resource", "")),
            str(resource.get("subresource", "")),
            str(resource.get("namespace", "")),
            str(resource.get("name", "")),
        )
    non_resource = spec.get("nonResourceAttributes") or {}
    return Attributes(
        user, str(non_resource.get("verb", "")), False, path=str(non_resource.get("path", ""))
    )


def _status(decision: Decision) -> dict[str, Any]:
    # The RBAC chain never denies outright (it has no opinion), so "denied" never shows.
    status: dict[str, Any] = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if decision.error:
        status["evaluationError"] = decision.error
    return status


def _subject(spec: dict[str, Any]) -> UserInfo:
    """``AuthorizationAttributesFrom``: the user a SubjectAccessReview asks about."""
    extra = spec.get("extra") or {}
    return UserInfo(
        str(spec.get("user", "")),
        uid=str(spec.get("uid", "")),
        groups=tuple(spec.get("groups") or ()),
        extra={k: tuple(v or ()) for k, v in extra.items()} if isinstance(extra, dict) else {},
    )


class ReviewStrategy(Strategy):
    """A create-only kind that is never stored: ``review`` computes the answer."""

    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def answer(
        obj: dict[str, Any],
        spec: dict[str, Any],
        status: dict[str, Any],
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "kind": obj["kind"],
            "apiVersion": obj["apiVersion"],
            "metadata": metadata if metadata is not None else {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }


class SelfSubjectAccessReviewStrategy(ReviewStrategy):
    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        errors = _spec_errors(spec, subject=False) + _metadata_errors(obj["metadata"])
        if errors:
            raise StatusError.invalid(_INVALID_KIND, "", errors)
        decision = authorizer.authorize(_attributes(user, spec))
        return self.answer(obj, _clean_spec(spec, subject=False), _status(decision))


class SubjectAccessReviewStrategy(ReviewStrategy):
    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        errors = _spec_errors(spec, subject=True) + _metadata_errors(obj["metadata"])
        if errors:
            raise StatusError.invalid(_INVALID_KIND, "", errors)
        decision = authorizer.authorize(_attributes(_subject(spec), spec))
        return self.answer(obj, _clean_spec(spec, subject=True), _status(decision))


class LocalSubjectAccessReviewStrategy(ReviewStrategy):
    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        spec = obj.get("spec") or {}
        meta = obj["metadata"]
        errors = _spec_errors(spec, subject=True) + _metadata_errors(meta, allow_namespace=True)
        resource = spec.get("resourceAttributes")
        if isinstance(resource, dict) and resource.get("namespace", "") != meta.get("namespace"):
            errors.append(
                FieldError.invalid(
                    "spec.resourceAttributes.namespace",
                    resource.get("namespace", ""),
                    "must match metadata.namespace",
                )
            )
        if spec.get("nonResourceAttributes") is not None:
            errors.append(
                FieldError.invalid(
                    "spec.nonResourceAttributes",
                    spec["nonResourceAttributes"],
                    "disallowed on this kind of request",
                )
            )
        if errors:
            raise StatusError.invalid(_INVALID_KIND, "", errors)
        decision = authorizer.authorize(_attributes(_subject(spec), spec))
        metadata = {"namespace": meta["namespace"], "creationTimestamp": None}
        return self.answer(obj, _clean_spec(spec, subject=True), _status(decision), metadata)


class SelfSubjectRulesReviewStrategy(ReviewStrategy):
    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        review_namespace = (obj.get("spec") or {}).get("namespace") or ""
        if not review_namespace:
            raise StatusError.bad_request("no namespace on request")
        rules = authorizer.rules_for(user, review_namespace)
        status: dict[str, Any] = {
            "resourceRules": rules.resource_rules,
            "nonResourceRules": rules.non_resource_rules,
            "incomplete": rules.incomplete,
        }
        if rules.evaluation_error:
            status["evaluationError"] = rules.evaluation_error
        # The answer is a new object: the spec asked with is not echoed.
        return self.answer(obj, {}, status)


class SelfSubjectReviewStrategy(ReviewStrategy):
    def review(
        self, authorizer: Authorizer, user: UserInfo, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        info: dict[str, Any] = {"username": user.name}
        if user.uid:
            info["uid"] = user.uid
        if user.groups:
            info["groups"] = list(user.groups)
        if user.extra:
            info["extra"] = {k: list(v) for k, v in user.extra.items()}
        return {
            "kind": obj["kind"],
            "apiVersion": obj["apiVersion"],
            "metadata": {"creationTimestamp": now()},
            "status": {"userInfo": info},
        }


def review_resource_types() -> list[ResourceType]:
    def review(group: str, kind: str, namespaced: bool, strategy: ReviewStrategy) -> ResourceType:
        return ResourceType(
            group, "v1", kind, kind.lower() + "s", namespaced, strategy, verbs=("create",)
        )

    return [
        review(AUTHORIZATION, "SelfSubjectAccessReview", False, SelfSubjectAccessReviewStrategy()),
        review(AUTHORIZATION, "SubjectAccessReview", False, SubjectAccessReviewStrategy()),
        review(
            AUTHORIZATION, "LocalSubjectAccessReview", True, LocalSubjectAccessReviewStrategy()
        ),
        review(AUTHORIZATION, "SelfSubjectRulesReview", False, SelfSubjectRulesReviewStrategy()),
        review(AUTHENTICATION, "SelfSubjectReview", False, SelfSubjectReviewStrategy()),
    ]
