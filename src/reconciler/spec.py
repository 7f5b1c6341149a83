"""LocustTest models: a custom resource, whatever its API version, becomes one internal `TestSpec`.

The builders and the controller only ever see `TestSpec`, so a new API version (v2) adds a parser here
and touches nothing downstream. The v1 parser validates against the CRD's own schema first, so offline
rendering rejects exactly what the apiserver rejects, then reads the fields into typed values.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from . import schema
from .config import is_dns1123_label, is_dns1123_subdomain
from .crds import GROUP, KIND, crd_manifest

# Child Job names are `<name>-master` / `<name>-worker` and must fit the 63-character label limit.
MAX_NAME_LENGTH = 56
DEFAULT_SRC_MOUNT_PATH = "/lotest/src"
DEFAULT_LIB_MOUNT_PATH = "/opt/locust/lib"
DEFAULT_AUTOQUIT_SECONDS = 60


class SpecError(ValueError):
    """The resource is not a valid LocustTest; the message names the field."""


@dataclass(frozen=True)
class RoleSpec:
    """What differs between the master and the workers."""

    command_seed: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestSpec:
    """One LocustTest, independent of the API version it was written in."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    namespace: str
    image: str
    master: RoleSpec
    worker: RoleSpec
    worker_replicas: int
    uid: str | None = None
    api_version: str = f"{GROUP}/v1"
    generation: int = 1
    image_pull_policy: str = "IfNotPresent"
    image_pull_secrets: tuple[str, ...] = ()
    config_map: str | None = None
    lib_config_map: str | None = None
    src_mount_path: str = DEFAULT_SRC_MOUNT_PATH
    lib_mount_path: str = DEFAULT_LIB_MOUNT_PATH
    autostart: bool = True
    autoquit_seconds: int | None = DEFAULT_AUTOQUIT_SECONDS
    # Kubernetes-shaped scheduling, so v2's full Affinity fits the same field.
    affinity: Mapping[str, Any] | None = None
    tolerations: tuple[Mapping[str, Any], ...] = field(default=())

    @property
    def child_prefix(self) -> str:
        """Base of the child names: dots become dashes, so `team.test` gives `team-test-master`."""
        return self.name.replace(".", "-")


def _v1_schema() -> dict[str, Any]:
    crd = crd_manifest()
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


_V1_SPEC_SCHEMA = _v1_schema()


def parse(obj: Any, *, default_namespace: str = "default") -> TestSpec:
    """Turn a LocustTest document (a dict) into a TestSpec, or raise SpecError naming the field."""
    if not isinstance(obj, Mapping):
        raise SpecError("not a LocustTest: expected a YAML mapping")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind != KIND:
        raise SpecError(f'kind: Unsupported value: "{kind}": supported values: "{KIND}"')
    if api_version != f"{GROUP}/v1":
        raise SpecError(
            f'apiVersion: Unsupported value: "{api_version}": supported values: "{GROUP}/v1"'
        )
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        raise SpecError("metadata: Required value")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise SpecError("metadata.name: Required value")
    if not is_dns1123_subdomain(name):
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist '
            "of lower case alphanumeric characters, '-' or '.'"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": name is too long: generated Job names would '
            f"exceed 63 characters (max LocustTest name length is {MAX_NAME_LENGTH})"
        )
    if not name[0].isalpha():
        # The master Service is named after the test, and Service names must start with a letter.
        raise SpecError(
            f'metadata.name: Invalid value: "{name}": must start with a letter, since the master '
            "Service is named after the test"
        )
    namespace = metadata.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and is_dns1123_label(namespace)):
        raise SpecError(
            f'metadata.namespace: Invalid value: "{namespace}": a lowercase RFC 1123 label must '
            "consist of lower case alphanumeric characters or '-'"
        )
    if "spec" not in obj:
        raise SpecError("spec: Required value")
    spec = schema.apply_defaults(copy.deepcopy(obj["spec"]), _V1_SPEC_SCHEMA)
    errors = schema.validate(spec, _V1_SPEC_SCHEMA, "spec")
    if errors:
        raise SpecError(errors[0])
    return _from_v1(spec, metadata, default_namespace)


def _from_v1(spec: dict[str, Any], metadata: Mapping[str, Any], default_namespace: str) -> TestSpec:
    labels = spec.get("labels") or {}
    annotations = spec.get("annotations") or {}
    required_nodes = (spec.get("affinity") or {}).get("nodeAffinity") or {}
    required_nodes = required_nodes.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    return TestSpec(
        name=metadata["name"],
        namespace=metadata.get("namespace") or default_namespace,
        uid=metadata.get("uid"),
        generation=metadata.get("generation") or 1,
        image=spec["image"],
        image_pull_policy=spec.get("imagePullPolicy") or "IfNotPresent",
        image_pull_secrets=tuple(spec.get("imagePullSecrets") or ()),
        master=RoleSpec(
            command_seed=spec["masterCommandSeed"],
            labels=MappingProxyType(dict(labels.get("master") or {})),
            annotations=MappingProxyType(dict(annotations.get("master") or {})),
        ),
        worker=RoleSpec(
            command_seed=spec["workerCommandSeed"],
            labels=MappingProxyType(dict(labels.get("worker") or {})),
            annotations=MappingProxyType(dict(annotations.get("worker") or {})),
        ),
        worker_replicas=spec["workerReplicas"],
        config_map=spec.get("configMap") or None,
        lib_config_map=spec.get("libConfigMap") or None,
        affinity=_v1_node_affinity(required_nodes),
        tolerations=tuple(_v1_toleration(t) for t in spec.get("tolerations") or ()),
    )


def _v1_node_affinity(required: Mapping[str, str]) -> Mapping[str, Any] | None:
    """v1's `label: value` map as the Kubernetes node affinity it stands for (one `In` per label)."""
    if not required:
        return None
    expressions = [
        {"key": key, "operator": "In", "values": [value]} for key, value in required.items()
    ]
    terms = [{"matchExpressions": expressions}]
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": terms}}}


def _v1_toleration(toleration: Mapping[str, Any]) -> Mapping[str, Any]:
    # The apiserver rejects a value with operator Exists, so it is kept only for Equal.
    result = {"key": toleration["key"], "operator": toleration["operator"]}
    if toleration["operator"] == "Equal" and toleration.get("value") is not None:
        result["value"] = toleration["value"]
    result["effect"] = toleration["effect"]
    return result
