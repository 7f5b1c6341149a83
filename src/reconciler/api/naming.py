"""Names derived from a test's name, in one place for the builders, validation and the charm.

A LocustTest `team.smoke` gets the Service and master Job `team-smoke-master` and the worker Job
`team-smoke-worker`: dots become dashes, so child names stay DNS labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .types import Role

# Child Job names are `<name>-master` / `<name>-worker` and must fit the 63-character label limit.
MAX_NAME_LENGTH = 63 - len("-worker")
# The lib ConfigMap's volume; each `env.secretMounts` entry becomes the volume `secret-<secret>`.
LIB_VOLUME = "locust-lib"
SECRET_VOLUME_PREFIX = "secret-"


class ObjectKey(NamedTuple):
    """Namespace and name: identifies an object in a cache, and a test in the work queue."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ChildNames:
    """Names of the three objects created for one LocustTest."""

    service: str
    master_job: str
    worker_job: str


def role_name(test_name: str, role: Role) -> str:
    """`<name>-master` or `<name>-worker`: a role's Job, its pods' label and its container."""
    return f"{test_name.replace('.', '-')}-{role}"


def child_names(test_name: str) -> ChildNames:
    """The Service and the master Job share the master's name; the worker Job has its own."""
    master = role_name(test_name, "master")
    return ChildNames(service=master, master_job=master, worker_job=role_name(test_name, "worker"))
