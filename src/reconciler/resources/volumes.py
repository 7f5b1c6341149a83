"""A role's volumes and the Locust container's mounts: test files, lib files, Secrets, and the
test's own volumes that mount in this role."""

from __future__ import annotations

from lightkube.models.core_v1 import (
    ConfigMapVolumeSource,
    SecretVolumeSource,
    Volume,
    VolumeMount,
)

from ..api.naming import LIB_VOLUME, SECRET_VOLUME_PREFIX, role_name
from ..api.pod_fields import from_test
from ..api.types import Role, TestSpec

# The roles a user's volumeMount goes to, by `target`: none (empty) means both, an unknown none.
_TARGET_ROLES: dict[str, tuple[Role, ...]] = {
    "": ("master", "worker"),
    "both": ("master", "worker"),
    "master": ("master",),
    "worker": ("worker",),
}


def volumes(spec: TestSpec, role: Role) -> tuple[list[Volume], list[VolumeMount]]:
    """A role's volumes and mounts, in upstream's order."""
    found: list[Volume] = []
    mounts: list[VolumeMount] = []
    # readOnly: false is explicit on the ConfigMap mounts, as upstream writes it (#69).
    if spec.config_map:
        name = role_name(spec.name, role)
        found.append(Volume(name=name, configMap=ConfigMapVolumeSource(name=spec.config_map)))
        mounts.append(VolumeMount(name=name, mountPath=spec.src_mount_path, readOnly=False))
    if spec.lib_config_map:
        source = ConfigMapVolumeSource(name=spec.lib_config_map)
        found.append(Volume(name=LIB_VOLUME, configMap=source))
        mounts.append(VolumeMount(name=LIB_VOLUME, mountPath=spec.lib_mount_path, readOnly=False))
    for secret in spec.secret_mounts:
        name = f"{SECRET_VOLUME_PREFIX}{secret.name}"
        found.append(Volume(name=name, secret=SecretVolumeSource(secretName=secret.name)))
        mounts.append(
            VolumeMount(name=name, mountPath=secret.mount_path, readOnly=secret.read_only)
        )
    own_mounts = [m.mount for m in spec.volume_mounts if role in _TARGET_ROLES.get(m.target, ())]
    # A volume no mount of this role uses stays out of its pods.
    mounted = {mount["name"] for mount in own_mounts}
    found += [from_test(Volume, volume) for volume in spec.volumes if volume["name"] in mounted]
    mounts += [from_test(VolumeMount, mount) for mount in own_mounts]
    return found, mounts
