"""The cluster-scoped objects the leader owns: the LocustTest CRD and the reconciler's RBAC."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import jinja2
import lightkube
from lightkube import ApiError, codecs
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from charm_config import WEBHOOK_PORT
from kube import ClusterError, api_errors, check_version, metadata_of
from reconciler.crds import CRD_NAME, PART_OF_LABEL, ConversionWebhook, crd_manifest

logger = logging.getLogger(__name__)

TEMPLATES = Path(__file__).parent / "templates"


def object_name(app: str, namespace: str) -> str:
    """Name of the cluster-scoped objects: unique per application and model."""
    return f"{app}-{namespace}"


def labels(app: str, namespace: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/managed-by": "juju",
        "app.kubernetes.io/name": "locust-operator",
        "app.kubernetes.io/instance": object_name(app, namespace),
    }


def rbac_objects(app: str, namespace: str) -> list[ClusterRole | ClusterRoleBinding]:
    """The ClusterRole and ClusterRoleBinding for the application's ServiceAccount."""
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
    )
    return cast(list[ClusterRole | ClusterRoleBinding], codecs.load_all_yaml(text))


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
    kube: lightkube.Client, app: str, namespace: str, ca_bundle: str
) -> None:
    """Install or update the CRD (converted by our webhook), then the RBAC, with server-side apply.

    Refuses (and touches nothing) when a locusttests.locust.io CRD exists that is not ours: three
    unrelated projects use that name with different schemas, and overwriting another operator's
    CRD would break its tests, or silently prune their fields. Refuses too, before anything,
    a cluster too old for the operator's Jobs.
    """
    check_version(kube, app)
    with api_errors(app, "checking the LocustTest CRD"):
        try:
            existing = kube.get(CustomResourceDefinition, CRD_NAME)
        except ApiError as error:
            if error.status.code != 404:
                raise
        else:
            owner_labels = metadata_of(existing).labels or {}
            key, value = PART_OF_LABEL
            if owner_labels.get(key) != value:
                logger.warning(
                    "CRD %s exists without %s=%s; not touching it", CRD_NAME, key, value
                )
                raise ClusterError(
                    f"CRD {CRD_NAME} belongs to another Locust operator: remove it (and that "
                    f"operator), or label it {key}={value} if it is this charm's"
                )
    with api_errors(app, "applying the LocustTest CRD"):
        manifest = crd_manifest(_conversion_webhook(app, namespace, ca_bundle))
        crd = cast(CustomResourceDefinition, CustomResourceDefinition.from_dict(manifest))
        kube.apply(crd, field_manager=app, force=True)
    with api_errors(app, "applying the ClusterRole and ClusterRoleBinding"):
        for obj in rbac_objects(app, namespace):
            kube.apply(obj, field_manager=app, force=True)
    logger.info("Applied %s and RBAC %s", CRD_NAME, object_name(app, namespace))


def delete_rbac(kube: lightkube.Client, app: str, namespace: str) -> None:
    """Delete the ClusterRoleBinding and ClusterRole; never the CRD (that deletes every test)."""
    name = object_name(app, namespace)
    with api_errors(app, "deleting the ClusterRole and ClusterRoleBinding"):
        for resource in (ClusterRoleBinding, ClusterRole):
            try:
                kube.delete(resource, name)
            except ApiError as error:
                if error.status.code != 404:
                    raise
    logger.info("Deleted RBAC %s", name)
