"""How the local kubelet turns one container of a pod into a local command: the mapping rules.

A container runs as ``<image entrypoint> <args>`` with the container's env, exactly as written in the
pod spec (after Kubernetes' own ``$(VAR)`` expansion), except for this mapping of cluster things to
local ones, and nothing else:

Images
    Only images in the kubelet's table run. Each names a local entrypoint and the image's working
    directory and environment: ``locustio/locust`` (any registry, tag or digest) is
    ``python -m locust`` from the Python running the kubelet, working directory ``/home/locust``.
    The tag is not honoured: the installed Locust runs whatever version the image names.

Network: a pod's network namespace is its own loopback address
    Every pod gets its own address from 127.0.0.0/8 as its ``podIP``, so two masters can both use
    5557 and 8089. Listening on "all interfaces" inside a pod means that address, so the runner sets
    ``LOCUST_MASTER_BIND_HOST`` and ``LOCUST_WEB_HOST`` to it (Locust binds ``*`` by default), and
    maps wildcard or localhost values of ``--master-bind-host`` / ``--web-host`` in args to it. For
    the same reason ``localhost`` and ``127.0.0.1`` as a host in args mean the pod's own address.

Service DNS names
    ``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc`` and ``<svc>.<ns>.svc.cluster.local`` (relative to the
    pod's namespace, as the pod's DNS search path makes them), in the value of ``--master-host`` and
    as the host of any URL in args or env values, become the address of an endpoint of that Service
    (see ``kubelet.ServiceDirectory``). Ports are kept, so this is exact for Services whose
    targetPort equals their port, as the operator's master Service does. A name is resolved once,
    when the container starts; while the Service has no endpoint the container is not started yet
    (a real worker would start and retry against the Service's clusterIP; here it starts as soon as
    there is an address to retry against).

Paths
    A volume's ``mountPath`` (and anything below it) in args and env values, including items of
    comma-separated lists (``-f a.py,b.py``), becomes the volume's local folder; the image's working
    directory becomes the container's own home folder, which is also its cwd and ``HOME``.

Nothing leaves this machine
    After mapping, every host the args name (``--master-host``, URLs) must be a loopback address;
    otherwise the container is not created (``CreateContainerError``): the sandbox never sends
    traffic, DNS lookups included, anywhere else. Hosts inside a locustfile are not seen: keep them
    relative to ``--host``.

This module is pure: the kubelet hands it the pod's address, folders and a Service lookup.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .validation.names import is_dns1123_label
from .volumes import ObjectLookup, object_data

LOCUST_REPOSITORY = "locustio/locust"
MASTER_HOST_FLAG = "--master-host"
BIND_HOST_FLAGS = ("--master-bind-host", "--web-host")
# Where Locust listens when no bind host is given; the runner points both at the pod's address.
BIND_HOST_ENV = ("LOCUST_MASTER_BIND_HOST", "LOCUST_WEB_HOST")
WILDCARD_HOSTS = frozenset({"", "*", "0.0.0.0", "::", "[::]"})
LOCALHOST_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
CLUSTER_DOMAIN = "cluster.local"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class LocalImage:
    """What the kubelet needs to know of an image to run it locally."""

    #: The local command standing for the image's ENTRYPOINT.
    entrypoint: tuple[str, ...]
    #: The image's WORKDIR (also its HOME), mapped to the container's own folder.
    workdir: str
    #: The image's ENV.
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``command`` values that name the entrypoint itself (``command: [locust]`` is allowed).
    entrypoint_names: frozenset[str] = frozenset()


LOCUST_IMAGE = LocalImage(
    entrypoint=(sys.executable, "-m", "locust"),
    workdir="/home/locust",
    # The image's Python runs unbuffered, so log lines reach the container log as they happen.
    env={"PYTHONUNBUFFERED": "1"},
    entrypoint_names=frozenset({"locust"}),
)
DEFAULT_IMAGES: Mapping[str, LocalImage] = {LOCUST_REPOSITORY: LOCUST_IMAGE}


def image_repository(image: str) -> str:
    """``docker.io/locustio/locust:2.47.0`` and ``locustio/locust@sha256:...`` -> ``locustio/locust``."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    if ":" in name[last_slash + 1 :]:
        name = name[: name.rfind(":")]
    parts = name.split("/")
    # A first component with a dot or a port, or "localhost", is a registry host.
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    if len(parts) > 1 and parts[0] == "library":
        parts = parts[1:]
    return "/".join(parts)


class ContainerNotCreated(Exception):
    """The container cannot be created; it stays waiting with this reason and message."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class NoEndpointYet(Exception):
    """A Service the container names has no endpoint yet: try again when the cluster changes."""

    def __init__(self, service: str, namespace: str):
        super().__init__(f'Service "{namespace}/{service}" has no endpoint yet')
        self.service = service
        self.namespace = namespace


#: (service, namespace) -> the address of an endpoint, None while it has none; LookupError if
#: there is no such Service.
ServiceLookup = Callable[[str, str], "str | None"]


@dataclass(frozen=True)
class PodContext:
    """What the mapping needs to know about the pod a container belongs to."""

    name: str
    namespace: str
    ip: str
    node_name: str
    #: mountPath -> local folder, for every volume mount of the container.
    mounts: Mapping[str, Path]
    #: The container's own folder: the image's working directory and HOME.
    home: Path
    lookup: ServiceLookup
    #: ConfigMaps and Secrets, for env sources: (kind, namespace, name) -> the object or None.
    objects: ObjectLookup


@dataclass(frozen=True)
class LocalCommand:
    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path


def local_command(
    container: Mapping[str, Any], image: LocalImage, pod: PodContext
) -> LocalCommand:
    """The command, environment and working directory that run ``container`` locally."""
    env = _environment(container, image, pod)
    command = [expand(part, env) for part in container.get("command") or ()]
    if command and command[0] not in image.entrypoint_names:
        raise ContainerNotCreated(
            "CreateContainerError",
            f"fakekube kubelet: container {container['name']!r} overrides the entrypoint with "
            f"{command[0]!r}; only the image's own entrypoint runs locally",
        )
    mapper = _Mapper(pod, image)
    args = mapper.args([*command[1:], *(expand(arg, env) for arg in container.get("args") or ())])
    env = {name: mapper.value(value) for name, value in env.items()}
    # A pod listens on its own address: Locust's default bind host "*" would take the port on
    # every address of the machine and collide with the next pod.
    env.update(dict.fromkeys(BIND_HOST_ENV, pod.ip))
    mapper.check_hosts_are_local()
    return LocalCommand(argv=(*image.entrypoint, *args), env=env, cwd=pod.home)


# --- Environment ------------------------------------------------------------------------------


def _environment(
    container: Mapping[str, Any], image: LocalImage, pod: PodContext
) -> dict[str, str]:
    """The image's ENV, then ``envFrom``, then ``env`` in order, as the kubelet builds it.

    Nothing of the kubelet's own environment leaks in (a LOCUST_* variable there would change the
    test); only PATH, HOME and HOSTNAME, which any container has. A missing ConfigMap, Secret or
    key that is not optional is a ``CreateContainerConfigError``, as on a real node.
    """
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(pod.home),
        "HOSTNAME": pod.name,
        **image.env,
    }
    sources = _EnvSources(pod)
    for source in container.get("envFrom") or ():
        prefix = source.get("prefix", "")
        for key, value in sources.all_keys(source).items():
            if _ENV_NAME.match(prefix + key):  # the kubelet skips invalid names
                env[prefix + key] = value
    for variable in container.get("env") or ():
        name = variable["name"]
        if "valueFrom" in variable:
            value = sources.value(name, variable["valueFrom"])
            if value is not None:
                env[name] = value
        else:
            env[name] = expand(variable.get("value", ""), env)
    return env


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_ENV_FROM_KINDS = {"configMapRef": "ConfigMap", "secretRef": "Secret"}
_KEY_REF_KINDS = {"configMapKeyRef": "ConfigMap", "secretKeyRef": "Secret"}


class _EnvSources:
    """ConfigMaps, Secrets and pod fields as the sources of environment variables."""

    def __init__(self, pod: PodContext):
        self._pod = pod
        self._fields = {
            "metadata.name": pod.name,
            "metadata.namespace": pod.namespace,
            "status.podIP": pod.ip,
            "spec.nodeName": pod.node_name,
        }

    def all_keys(self, source: Mapping[str, Any]) -> dict[str, str]:
        ref_type = next((key for key in _ENV_FROM_KINDS if key in source), None)
        if ref_type is None:
            raise _config_error(f"envFrom {sorted(source)} is not supported")
        ref = source[ref_type]
        data = self._data(
            _ENV_FROM_KINDS[ref_type], ref.get("name", ""), ref.get("optional", False)
        )
        return data or {}

    def value(self, name: str, source: Mapping[str, Any]) -> str | None:
        if "fieldRef" in source:
            path = source["fieldRef"].get("fieldPath")
            if path not in self._fields:
                raise _config_error(f"env {name}: fieldRef {path!r} is not supported")
            return self._fields[path]
        ref_type = next((key for key in _KEY_REF_KINDS if key in source), None)
        if ref_type is None:
            raise _config_error(f"env {name}: valueFrom {sorted(source)} is not supported")
        ref, kind = source[ref_type], _KEY_REF_KINDS[ref_type]
        optional = ref.get("optional", False)
        data = self._data(kind, ref.get("name", ""), optional)
        if data is None:
            return None
        if ref["key"] not in data:
            if optional:
                return None
            raise _config_error(
                f"couldn't find key {ref['key']} in {kind} {self._pod.namespace}/{ref['name']}"
            )
        return data[ref["key"]]

    def _data(self, kind: str, name: str, optional: bool) -> dict[str, str] | None:
        obj = self._pod.objects(kind, self._pod.namespace, name)
        if obj is None:
            if optional:
                return None
            raise _config_error(f'{kind.lower()} "{name}" not found')
        return {key: value.decode(errors="replace") for key, value in object_data(obj).items()}


def _config_error(message: str) -> ContainerNotCreated:
    return ContainerNotCreated("CreateContainerConfigError", message)


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables are replaced, ``$$`` escapes a ``$``,
    and a reference to an undefined variable stays as written."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$" or i + 1 == len(text):
            out.append(char)
            i += 1
            continue
        following = text[i + 1]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2 : end]
            out.append(env[name] if name in env else text[i : end + 1])
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


# --- Args and values ----------------------------------------------------------------------------


def service_of(host: str, namespace: str) -> tuple[str, str] | None:
    """The (Service, namespace) a host names through the pod's DNS search path, if it can be one."""
    labels = host.lower().rstrip(".").split(".")
    if labels[-2:] == CLUSTER_DOMAIN.split("."):
        labels = labels[:-2]
    if len(labels) == 3 and labels[2] == "svc":
        labels = labels[:2]
    if any(is_dns1123_label(label) for label in labels):
        return None
    if len(labels) == 1:
        return labels[0], namespace
    if len(labels) == 2:
        return labels[0], labels[1]
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    return _is_ip(host) and ipaddress.ip_address(host.strip("[]")).is_loopback


class _Mapper:
    """Applies the mapping to args and env values, remembering every host it saw."""

    def __init__(self, pod: PodContext, image: LocalImage):
        self._pod = pod
        # Longest first, so a mount inside another mount wins.
        self._paths = sorted(
            [(path.rstrip("/") or "/", local) for path, local in pod.mounts.items()]
            + [(image.workdir.rstrip("/"), pod.home)],
            key=lambda item: len(item[0]),
            reverse=True,
        )
        self.hosts: list[str] = []

    def args(self, args: Sequence[str]) -> list[str]:
        mapped: list[str] = []
        flag_waiting_for_value: str | None = None
        for arg in args:
            if flag_waiting_for_value is not None:
                mapped.append(self._flag_value(flag_waiting_for_value, arg))
                flag_waiting_for_value = None
            elif arg in (MASTER_HOST_FLAG, *BIND_HOST_FLAGS):
                mapped.append(arg)
                flag_waiting_for_value = arg
            elif arg.startswith("-") and "=" in arg:
                flag, _, value = arg.partition("=")
                mapped.append(f"{flag}={self._flag_value(flag, value)}")
            else:
                mapped.append(self.value(arg))
        return mapped

    def _flag_value(self, flag: str, value: str) -> str:
        if flag == MASTER_HOST_FLAG:
            return self._host(value)
        if flag in BIND_HOST_FLAGS and (value in WILDCARD_HOSTS or value in LOCALHOST_NAMES):
            return self._pod.ip
        return self.value(value)

    def value(self, value: str) -> str:
        """A URL gets its host mapped; anything else its paths, item by item."""
        if _URL.match(value):
            return self._url(value)
        return ",".join(self._path(item) for item in value.split(","))

    def _path(self, item: str) -> str:
        for mount, local in self._paths:
            if item == mount or item.startswith(mount + "/"):
                return str(local) + item[len(mount) :]
        return item

    def _url(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname
        if not host:
            return url
        mapped = self._host(host)
        netloc = f"[{mapped}]" if ":" in mapped else mapped
        if parts.port is not None:
            netloc = f"{netloc}:{parts.port}"
        if parts.username is not None:
            credentials = parts.username + (f":{parts.password}" if parts.password else "")
            netloc = f"{credentials}@{netloc}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _host(self, host: str) -> str:
        if host.lower() in LOCALHOST_NAMES:
            mapped = self._pod.ip
        elif _is_ip(host) or (service := service_of(host, self._pod.namespace)) is None:
            mapped = host
        else:
            try:
                address = self._pod.lookup(*service)
            except LookupError:
                mapped = host  # not a Service: an outside name, which the guard refuses
            else:
                if address is None:
                    raise NoEndpointYet(*service)
                mapped = address
        self.hosts.append(mapped)
        return mapped

    def check_hosts_are_local(self) -> None:
        outside = [host for host in self.hosts if not is_loopback(host)]
        if outside:
            raise ContainerNotCreated(
                "CreateContainerError",
                f"fakekube kubelet: {', '.join(sorted(set(outside)))} is neither a Service in the "
                "cluster nor a loopback address; the sandbox sends no traffic off this machine",
            )


def mounts_of(
    container: Mapping[str, Any], volumes: Mapping[str, Path]
) -> Iterator[tuple[str, Path]]:
    """(mountPath, local folder) for each of the container's mounts (``subPath`` included)."""
    for mount in container.get("volumeMounts") or ():
        local = volumes[mount["name"]]
        if mount.get("subPath"):
            local = local / mount["subPath"]
        yield mount["mountPath"], local
