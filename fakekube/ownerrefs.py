"""The OwnerReferencesPermissionEnforcement admission plugin (on by default in OpenShift).

On a create or update that changes ``metadata.ownerReferences``:

- an update (not a create: whoever may create an object may give it owners) needs ``delete`` on
  the object itself;
- every owner reference that newly has ``blockOwnerDeletion: true`` needs ``update`` on the
  owner's ``finalizers`` subresource: blocking the owner's deletion is like holding a finalizer
  on it.

Updates of ``pods/status`` are exempt, as in ``plugin/pkg/admission/gc``; messages are the
plugin's.
"""

from __future__ import annotations

from typing import Any

from .authn import UserInfo
from .errors import GroupResource, StatusError
from .rbac import Attributes, Authorizer
from .resources import ResourceRegistry, ResourceType

_REFERENCE_FIELDS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")
_EXEMPT = {(GroupResource("", "pods"), "status")}


def _references(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The object's owner references as the typed API sees them (unknown fields dropped)."""
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return [{k: ref[k] for k in _REFERENCE_FIELDS if k in ref} for ref in refs]


def _changes_references(new: dict[str, Any], old: dict[str, Any] | None) -> bool:
    """``isChangingOwnerReference``: any reference on a create; a different list on an update."""
    if old is None:
        return bool(_references(new))
    return _references(new) != _references(old)


def _newly_blocking(new: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, Any]]:
    """``newBlockingOwnerDeletionRefs``: blocking references that are new, or were not blocking."""
    blocking = [ref for ref in _references(new) if ref.get("blockOwnerDeletion") is True]
    if old is None:
        return blocking
    before = {ref.get("uid"): ref for ref in _references(old)}
    return [
        ref
        for ref in blocking
        if ref.get("uid") not in before
        or before[ref.get("uid")].get("blockOwnerDeletion") is not True
    ]


def _parse_group_version(api_version: str) -> tuple[str, str]:
    """``schema.ParseGroupVersion``."""
    if api_version in ("", "/"):
        return "", ""
    if api_version.count("/") > 1:
        raise ValueError(f"unexpected GroupVersion string: {api_version}")
    group, _, version = api_version.rpartition("/")
    return group, version


class OwnerReferencesPermissionEnforcement:
    def __init__(self, authorizer: Authorizer, resources: ResourceRegistry):
        self._authorizer = authorizer
        self._resources = resources

    def _owner_type(self, ref: dict[str, Any]) -> ResourceType:
        """The owner's resource, as the plugin's RESTMapper finds it; ValueError if unknown."""
        group, version = _parse_group_version(str(ref.get("apiVersion", "")))
        kind = str(ref.get("kind", ""))
        # Without a version, the mapper tries the group's served versions, preferred first.
        versions = [version] if version else self._resources.groups().get(group, [])
        for candidate in versions:
            rt = self._resources.for_kind(f"{group}/{candidate}" if group else candidate, kind)
            if rt is not None:
                return rt
        searched = f"{group}/{version}" if group else version
        raise ValueError(f'no matches for kind "{kind}" in version "{searched}"')

    def validate(
        self,
        user: UserInfo,
        rt: ResourceType,
        subresource: str,
        namespace: str,
        new: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Raise 403 if ``user`` may not write these owner references (``old`` None: a create)."""
        if (rt.group_resource, subresource) in _EXEMPT or not _changes_references(new, old):
            return
        name = new["metadata"].get("name", "")

        def refuse(why: str) -> StatusError:
            return StatusError.forbidden(rt.group_resource, name, why)

        if old is not None:
            decision = self._authorizer.authorize(
                Attributes(user, "delete", True, rt.group, rt.plural, subresource, namespace, name)
            )
            if not decision.allowed:
                raise refuse(
                    "cannot set an ownerRef on a resource you can't delete: "
                    f"{decision.reason}, {decision.error_text}"
                )
        for ref in _newly_blocking(new, old):
            try:
                owner = self._owner_type(ref)
            except ValueError as error:
                raise refuse(
                    "cannot set blockOwnerDeletion in this case because cannot find RESTMapping "
                    f"for APIVersion {ref.get('apiVersion', '')} Kind {ref.get('kind', '')}: "
                    f"{error}"
                ) from None
            decision = self._authorizer.authorize(
                Attributes(
                    user,
                    "update",
                    True,
                    owner.group,
                    owner.plural,
                    "finalizers",
                    namespace if owner.namespaced else "",
                    str(ref.get("name", "")),
                )
            )
            if not decision.allowed:
                raise refuse(
                    "cannot set blockOwnerDeletion if an ownerReference refers to a resource you "
                    f"can't set finalizers on: {decision.reason}, {decision.error_text}"
                )
