"""The local kubelet's mapping of a container to a local command (``containers``), rule by rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fakekube.containers import (
    LOCUST_IMAGE,
    ContainerNotCreated,
    NoEndpointYet,
    PodContext,
    expand,
    image_repository,
    local_command,
    service_of,
)

POD_IP = "127.50.0.7"
HOME = Path("/node/load/pod-a/home/worker")
SRC = Path("/node/load/pod-a/volumes/scripts")
LIB = Path("/node/load/pod-a/volumes/locust-lib")
SERVICES = {("demo-master", "load"): "127.50.0.2", ("target", "shop"): "127.253.1.1"}


def lookup(name: str, namespace: str) -> str | None:
    if (name, namespace) == ("starting", "load"):
        return None
    try:
        return SERVICES[(name, namespace)]
    except KeyError:
        raise LookupError(f"{namespace}/{name}") from None


OBJECTS = {
    ("ConfigMap", "settings"): {"kind": "ConfigMap", "data": {"USERS": "50", "bad key": "x"}},
    ("Secret", "creds"): {"kind": "Secret", "data": {"TOKEN": "czNjcjN0"}},  # "s3cr3t"
}


def objects(kind: str, namespace: str, name: str) -> dict | None:
    assert namespace == "load"
    return OBJECTS.get((kind, name))


POD = PodContext(
    name="pod-a",
    namespace="load",
    ip=POD_IP,
    node_name="fakekube-node",
    mounts={"/lotest/src": SRC, "/opt/locust/lib": LIB},
    home=HOME,
    lookup=lookup,
    objects=objects,
)


def run(args: list[str], **container: object) -> tuple[list[str], dict[str, str]]:
    command = local_command({"name": "worker", "args": args, **container}, LOCUST_IMAGE, POD)
    assert command.argv[:3] == (sys.executable, "-m", "locust")
    return list(command.argv[3:]), dict(command.env)


# --- Images -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        "locustio/locust",
        "locustio/locust:2.47.0",
        "docker.io/locustio/locust:2.47.0",
        "registry.example.com:5000/locustio/locust@sha256:abc",
        "localhost/locustio/locust:dev",
    ],
)
def test_the_locust_image_is_recognised_whatever_its_registry_tag_or_digest(image: str) -> None:
    assert image_repository(image) == "locustio/locust"


def test_other_images_are_not_the_locust_image() -> None:
    assert (
        image_repository("containersol/locust_exporter:v0.5.0") == "containersol/locust_exporter"
    )
    assert image_repository("busybox") == "busybox"
    assert image_repository("docker.io/library/busybox:1.36") == "busybox"


def test_the_entrypoint_runs_with_exactly_the_containers_args() -> None:
    args, _ = run(["--users", "10", "--spawn-rate=5", "--only-summary"])

    assert args == ["--users", "10", "--spawn-rate=5", "--only-summary"]


def test_a_command_naming_the_entrypoint_is_the_entrypoint() -> None:
    args, _ = run(["--worker"], command=["locust", "--headless"])

    assert args == ["--headless", "--worker"]


def test_another_command_cannot_run_locally() -> None:
    with pytest.raises(ContainerNotCreated) as raised:
        run([], command=["sh", "-c", "locust"])

    assert raised.value.reason == "CreateContainerError"
    assert "'sh'" in raised.value.message


# --- Environment ------------------------------------------------------------------------------


def test_env_is_the_images_then_the_containers_and_nothing_of_the_kubelets(monkeypatch) -> None:
    monkeypatch.setenv("LOCUST_USERS", "999")

    _, env = run([], env=[{"name": "KAFKA_USERNAME", "value": "alice"}])

    assert "LOCUST_USERS" not in env
    assert env["KAFKA_USERNAME"] == "alice"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == str(HOME) and env["HOSTNAME"] == "pod-a"
    assert env["PATH"].startswith(str(Path(sys.executable).parent))


def test_the_pod_listens_on_its_own_address() -> None:
    _, env = run([])

    assert env["LOCUST_MASTER_BIND_HOST"] == POD_IP
    assert env["LOCUST_WEB_HOST"] == POD_IP


@pytest.mark.parametrize("wildcard", ["*", "0.0.0.0", "", "localhost", "127.0.0.1"])
def test_wildcard_and_localhost_bind_hosts_mean_the_pods_address(wildcard: str) -> None:
    args, _ = run([f"--web-host={wildcard}", "--master-bind-host", wildcard])

    assert args == [f"--web-host={POD_IP}", "--master-bind-host", POD_IP]


def test_field_references_give_the_pods_name_namespace_and_address() -> None:
    _, env = run(
        [],
        env=[
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        ],
    )

    assert (env["POD"], env["NS"], env["IP"]) == ("pod-a", "load", POD_IP)


def test_env_from_config_maps_and_secrets_comes_before_env_which_wins() -> None:
    _, env = run(
        [],
        envFrom=[
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "creds"}, "prefix": "APP_"},
        ],
        env=[
            {"name": "USERS", "value": "5"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "N", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "USERS"}}},
        ],
    )

    assert env["USERS"] == "5" and env["N"] == "50"
    assert env["APP_TOKEN"] == "s3cr3t" and env["KEY"] == "s3cr3t"
    assert "bad key" not in env  # not a valid variable name: the kubelet skips it


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"configMapKeyRef": {"name": "missing", "key": "k"}}, 'configmap "missing" not found'),
        (
            {"secretKeyRef": {"name": "creds", "key": "nope"}},
            "couldn't find key nope in Secret load/creds",
        ),
        ({"resourceFieldRef": {"resource": "limits.cpu"}}, "not supported"),
    ],
)
def test_a_missing_env_source_is_a_config_error(source: dict, message: str) -> None:
    with pytest.raises(ContainerNotCreated) as raised:
        run([], env=[{"name": "X", "valueFrom": source}])

    assert raised.value.reason == "CreateContainerConfigError"
    assert message in raised.value.message


def test_optional_env_sources_may_be_missing() -> None:
    _, env = run(
        [],
        envFrom=[{"configMapRef": {"name": "missing", "optional": True}}],
        env=[
            {
                "name": "X",
                "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}},
            }
        ],
    )

    assert "X" not in env


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("$(USERS)", "10"),
        ("--users=$(USERS)", "--users=10"),
        ("$$(USERS)", "$(USERS)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$USERS", "$USERS"),
        ("$(USERS", "$(USERS"),
        ("cost: $", "cost: $"),
    ],
)
def test_variable_references_expand_as_kubernetes_expands_them(text: str, expanded: str) -> None:
    assert expand(text, {"USERS": "10"}) == expanded


def test_args_and_env_values_see_earlier_variables() -> None:
    args, env = run(
        ["--users", "$(USERS)"],
        env=[{"name": "USERS", "value": "7"}, {"name": "RATE", "value": "$(USERS)"}],
    )

    assert args == ["--users", "7"]
    assert env["RATE"] == "7"


# --- Service names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("demo-master", ("demo-master", "load")),
        ("demo-master.load", ("demo-master", "load")),
        ("demo-master.load.svc", ("demo-master", "load")),
        ("demo-master.load.svc.cluster.local", ("demo-master", "load")),
        ("demo-master.load.svc.cluster.local.", ("demo-master", "load")),
        ("target.shop", ("target", "shop")),
        ("docs.locust.io", None),
        ("a.b.c.d", None),
        ("Under_Score", None),
    ],
)
def test_service_names_follow_the_pods_dns_search_path(host: str, service: object) -> None:
    assert service_of(host, "load") == service


def test_the_master_host_becomes_the_address_behind_the_service() -> None:
    args, _ = run(["--worker", "--master-port=5557", "--master-host=demo-master"])
    assert args[-1] == "--master-host=127.50.0.2"

    args, _ = run(["--master-host", "demo-master.load.svc.cluster.local"])
    assert args == ["--master-host", "127.50.0.2"]


def test_a_url_keeps_its_scheme_port_path_and_credentials() -> None:
    args, _ = run(
        ["--host", "http://user:pw@target.shop.svc:8080/api?x=1", "-H=https://target.shop"]
    )

    assert args == ["--host", "http://user:pw@127.253.1.1:8080/api?x=1", "-H=https://127.253.1.1"]


def test_localhost_in_a_url_is_the_pod_itself() -> None:
    args, _ = run(["--host", "http://localhost:8089"])

    assert args == ["--host", f"http://{POD_IP}:8089"]


def test_a_service_without_an_endpoint_yet_holds_the_container_back() -> None:
    with pytest.raises(NoEndpointYet):
        run(["--master-host=starting"])


@pytest.mark.parametrize(
    "args",
    [
        ["--host", "https://docs.locust.io"],
        ["--master-host=no-such-service"],
        ["--host", "http://10.0.0.8:8080"],
        ["-f", "https://example.com/locustfile.py"],
    ],
)
def test_nothing_outside_the_loopback_network_is_ever_contacted(args: list[str]) -> None:
    with pytest.raises(ContainerNotCreated) as raised:
        run(args)

    assert raised.value.reason == "CreateContainerError"
    assert "sends no traffic off this machine" in raised.value.message


def test_an_outside_url_in_env_is_refused_too() -> None:
    with pytest.raises(ContainerNotCreated):
        run([], env=[{"name": "LOCUST_HOST", "value": "https://example.com"}])


def test_names_elsewhere_are_left_alone() -> None:
    # A tag or a user class that happens to be named like a Service is not a host.
    args, _ = run(["--tags", "demo-master", "Visitor"])

    assert args == ["--tags", "demo-master", "Visitor"]


# --- Paths ------------------------------------------------------------------------------------


def test_mount_paths_become_the_volumes_folders_in_every_form() -> None:
    args, _ = run(
        [
            "--locustfile",
            "/lotest/src/locustfile.py",
            "-f=/lotest/src/a.py,/lotest/src/b.py",
            "--config",
            "/lotest/src/",
            "/opt/locust/lib/helpers.py",
        ]
    )

    assert args == [
        "--locustfile",
        f"{SRC}/locustfile.py",
        f"-f={SRC}/a.py,{SRC}/b.py",
        "--config",
        f"{SRC}/",
        f"{LIB}/helpers.py",
    ]


def test_a_path_that_only_starts_like_a_mount_is_not_mapped() -> None:
    args, _ = run(["--locustfile", "/lotest/srcfile.py", "--web-base-path", "/locust"])

    assert args == ["--locustfile", "/lotest/srcfile.py", "--web-base-path", "/locust"]


def test_the_images_working_directory_is_the_containers_home() -> None:
    args, env = run(
        ["--html", "/home/locust/report.html"], env=[{"name": "D", "value": "/home/locust"}]
    )
    command = local_command({"name": "worker"}, LOCUST_IMAGE, POD)

    assert args == ["--html", f"{HOME}/report.html"]
    assert env["D"] == str(HOME)
    assert command.cwd == HOME


def test_mount_paths_in_env_values_are_mapped() -> None:
    _, env = run([], env=[{"name": "LOCUST_LOCUSTFILE", "value": "/lotest/src/locustfile.py"}])

    assert env["LOCUST_LOCUSTFILE"] == f"{SRC}/locustfile.py"
