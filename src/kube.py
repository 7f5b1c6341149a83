"""The charm's Kubernetes client, and the one-line errors API failures become.

Plain lightkube, no ops: the charm turns `ClusterError`s into statuses or action failures. The
client is built on demand (never at charm construction): in a pod lightkube uses the
ServiceAccount, elsewhere the KUBECONFIG file, which is how the tests point the charm at a fake
API server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2
import lightkube
from lightkube import ApiError
from lightkube.models.meta_v1 import ObjectMeta

from reconciler.api.compatibility import version_problem

logger = logging.getLogger(__name__)


class ClusterError(Exception):
    """A Kubernetes problem, with a one-line message a user can act on.

    `blocking` is False for problems that may go away by themselves (API server unavailable).
    """

    def __init__(self, message: str, *, blocking: bool = True):
        super().__init__(message)
        self.message = message
        self.blocking = blocking


def client(app: str) -> lightkube.Client:
    """A client whose server-side applies are recorded under the application's name."""
    try:
        return lightkube.Client(field_manager=app)
    except lightkube.ConfigError as error:  # neither in a pod nor given a kubeconfig
        raise ClusterError(f"no Kubernetes credentials: {error}") from None


def check_version(kube: lightkube.Client, app: str) -> None:
    """ClusterError if the cluster is older than the operator's Jobs need."""
    with api_errors(app, "reading the Kubernetes version"):
        # lightkube has no call for /version; its HTTP client carries the credentials.
        response = kube._client._client.get("/version")
        response.raise_for_status()
        problem = version_problem(response.json())
    if problem:
        raise ClusterError(problem)


def get_or_none(
    kube: lightkube.Client, resource: Any, name: str, namespace: str | None = None
) -> Any:
    """The object, or None where the API server has none (404)."""
    try:
        return kube.get(resource, name, namespace=namespace)
    except ApiError as error:
        if error.status.code == 404:
            return None
        raise


def metadata_of(obj: Any) -> ObjectMeta:
    """An object's metadata, which the API always returns (lightkube types it as optional)."""
    assert obj.metadata is not None
    return obj.metadata


def key_of(obj: Any) -> tuple[str, str]:
    meta_ = metadata_of(obj)
    return meta_.namespace or "", meta_.name or ""


@contextmanager
def api_errors(app: str, doing: str) -> Iterator[None]:
    """Turn lightkube and HTTP failures into ClusterErrors; log what happened."""
    try:
        yield
    except ApiError as error:
        code, message = error.status.code, error.status.message
        logger.warning("Kubernetes API error while %s: %s %s", doing, code, message)
        if code == 403:
            raise ClusterError(
                f"missing cluster permissions; run: juju trust {app} --scope=cluster"
            ) from None
        raise ClusterError(
            f"kubernetes API error {code} while {doing}: {message}",
            blocking=code is None or code < 500,
        ) from None
    except (httpx2.HTTPError, lightkube.ConfigError) as error:
        logger.warning("Cannot reach the Kubernetes API while %s: %s", doing, error)
        raise ClusterError(f"cannot reach the kubernetes API: {error}", blocking=False) from None
