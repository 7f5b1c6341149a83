"""The objects the leader owns beyond its model: the LocustTest CRD and the reconciler's RBAC.

One cluster has one LocustTest CRD, so one deployment owns it: the CRD records the application
and model that applied it, and another deployment leaves it alone (`CrdOwnedElsewhere`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import jinja2
import lightkube
from lightkube import ALL_NS, ApiError, codecs
from lightkube.core.client import LabelSelector
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import Service
from lightkube.resources.rbac_authorization_v1 import (
    ClusterRole,
    ClusterRoleBinding,
    Role,
    RoleBinding,
)

from charm_config import WEBHOOK_PORT
from kube import ClusterError, api_errors, check_version, get_or_none, metadata_of
from reconciler.crds import CRD_NAME, PART_OF_LABEL, ConversionWebhook, crd_manifest

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"
# Who applied the CRD: the one deployment that may change it.
OWNER_APPLICATION = "locust.io/owner-application"
OWNER_MODEL = "locust.io/owner-model"
RbacObject = ClusterRole | ClusterRoleBinding | Role | RoleBinding


class CrdOwnedElsewhere(ClusterError):
    """Another deployment of this charm owns the CRD: this one must not run at all."""


def object_name(app: str, namespace: str) -> str:
    """Name of the cluster-scoped objects: unique per application and model."""
    return f"{app}-{namespace}"


def labels(app: str, namespace: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "juju",
        "app.kubernetes.io/name": "locust-operator",
        "app.kubernetes.io/instance": object_name(app, namespace),
    }


def rbac_objects(
    app: str, namespace: str, watch_namespaces: Sequence[str] = ()
) -> list[RbacObject]:
    """The reconciler's rights for the application's ServiceAccount: a ClusterRole and its
    binding, or, when it watches only `watch_namespaces`, Roles there and one for its Lease."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text = env.get_template("rbac.yaml.j2").render(
        name=object_name(app, namespace),
        labels=labels(app, namespace),
        service_account=app,  # Juju names the application's ServiceAccount after it
        namespace=namespace,
        namespaces=list(watch_namespaces),
    )
    return cast(list[RbacObject], codecs.load_all_yaml(text))


def _conversion_webhook(app: str, namespace: str, ca_bundle: str) -> ConversionWebhook:
    """Where the apiserver converts LocustTests: the application's Service (Juju names it after
    the application) on the webhook port, verified against `ca_bundle` (PEM)."""
    return ConversionWebhook(
        service_name=app,
        service_namespace=namespace,
        port=WEBHOOK_PORT,
        ca_bundle=ca_bundle.encode(),
    )


def apply_cluster_objects(
    kube: lightkube.Client,
    app: str,
    namespace: str,
    ca_bundle: str,
    watch_namespaces: Sequence[str] = (),
) -> None:
    """Install or update the CRD (converted by our webhook), then the RBAC, with server-side
    apply, and delete RBAC objects of ours that no longer apply (after a watch-namespaces change).

    Refuses, and touches nothing, when the cluster is too old for the operator's Jobs, when a
    locusttests.locust.io CRD exists that is not this charm's (three unrelated projects use that
    name with different schemas: overwriting one would break its tests or prune their fields),
    and when another deployment of this charm owns it (re-pointing its conversion webhook would
    take its tests away from it).
    """
    check_version(kube, app)
    with api_errors(app, "checking the LocustTest CRD"):
        try:
            existing = kube.get(CustomResourceDefinition, CRD_NAME)
        except ApiError as error:
            if error.status.code != 404:
                raise
        else:
            _check_owner(kube, metadata_of(existing), app, namespace)
    with api_errors(app, "applying the LocustTest CRD"):
        manifest = crd_manifest(_conversion_webhook(app, namespace, ca_bundle))
        manifest["metadata"].setdefault("annotations", {}).update(
            {OWNER_APPLICATION: app, OWNER_MODEL: namespace}
        )
        crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(manifest))
        kube.apply(crd, field_manager=app, force=True)
    desired = rbac_objects(app, namespace, watch_namespaces)
    with api_errors(app, "applying the reconciler's RBAC"):
        for obj in desired:
            kube.apply(obj, field_manager=app, force=True)
    wanted = {(type(obj), _key(obj)) for obj in desired}
    _delete_rbac(kube, app, namespace, keep=wanted)
    logger.info("Applied %s and RBAC %s", CRD_NAME, object_name(app, namespace))


def _check_owner(kube: lightkube.Client, meta: ObjectMeta, app: str, namespace: str) -> None:
    key, value = PART_OF_LABEL
    if (meta.labels or {}).get(key) != value:
        logger.warning("CRD %s exists without %s=%s; not touching it", CRD_NAME, key, value)
        raise ClusterError(
            f"CRD {CRD_NAME} belongs to another Locust operator: remove it (and that "
            f"operator), or label it {key}={value} if it is this charm's"
        )
    annotations = meta.annotations or {}
    owner = (annotations.get(OWNER_APPLICATION) or "", annotations.get(OWNER_MODEL) or "")
    # No owner recorded: applied by hand (`locust-operator crd | kubectl apply`), ours to take.
    # An owner whose Service (where the CRD sends conversions) is gone is gone too.
    if owner[0] and owner != (app, namespace) and get_or_none(kube, Service, *owner) is not None:
        logger.warning("CRD %s is owned by %s in model %s; not touching it", CRD_NAME, *owner)
        raise CrdOwnedElsewhere(
            f"CRD {CRD_NAME} is managed by application {owner[0]} in model {owner[1]}: one "
            "cluster runs one locust-operator; remove this one, or that one first"
        )


def release_crd(kube: lightkube.Client, app: str, namespace: str) -> None:
    """Forget this deployment as the CRD's owner, so that another may take it over."""
    with api_errors(app, "releasing the LocustTest CRD"):
        crd = get_or_none(kube, CustomResourceDefinition, CRD_NAME)
        if crd is None:
            return
        annotations = metadata_of(crd).annotations or {}
        if (annotations.get(OWNER_APPLICATION), annotations.get(OWNER_MODEL)) == (app, namespace):
            released = {"metadata": {"annotations": {OWNER_APPLICATION: None, OWNER_MODEL: None}}}
            kube.patch(CustomResourceDefinition, CRD_NAME, released)
            logger.info("Released %s", CRD_NAME)


def _key(obj: Any) -> tuple[str, str]:
    return metadata_of(obj).namespace or "", metadata_of(obj).name or ""


def delete_rbac(kube: lightkube.Client, app: str, namespace: str) -> None:
    """Delete every Role, ClusterRole and binding of ours; never the CRD (that deletes every
    test)."""
    _delete_rbac(kube, app, namespace, keep=set())
    logger.info("Deleted RBAC %s", object_name(app, namespace))


def _delete_rbac(
    kube: lightkube.Client, app: str, namespace: str, *, keep: set[tuple[type, tuple[str, str]]]
) -> None:
    """Delete the RBAC objects labelled as this deployment's, except those in `keep`."""
    selector: LabelSelector = {"app.kubernetes.io/instance": object_name(app, namespace)}
    with api_errors(app, "deleting the reconciler's RBAC"):
        for cluster_kind in (ClusterRoleBinding, ClusterRole):
            for obj in kube.list(cluster_kind, labels=selector):
                if (cluster_kind, _key(obj)) not in keep:
                    _delete(kube, cluster_kind, metadata_of(obj).name or "")
        for namespaced_kind in (RoleBinding, Role):
            for item in kube.list(namespaced_kind, labels=selector, namespace=ALL_NS):
                if (namespaced_kind, _key(item)) not in keep:
                    where = metadata_of(item).namespace
                    _delete(kube, namespaced_kind, metadata_of(item).name or "", where)


def _delete(kube: lightkube.Client, kind: Any, name: str, namespace: str | None = None) -> None:
    try:
        kube.delete(kind, name, namespace=namespace) if namespace else kube.delete(kind, name)
    except ApiError as error:
        if error.status.code != 404:
            raise
    logger.info("Deleted %s %s", kind.__name__, name)
