"""Upstream's webhook rules (`locusttest_webhook_test.go`), in Python and as the CRD's CEL rules.

`validate` is checked on the model, as upstream checks its Go types. The CEL rules are compiled and
evaluated with cel-python on defaulted documents, as the apiserver evaluates them, and must reject
exactly what `validate` rejects, with upstream's text.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from reconciler.api import schema
from reconciler.api.validation import paths_conflict, reserved_paths, validate
from reconciler.crds import version_schema
from reconciler.api.types import (
    OpenTelemetry,
    RoleSpec,
    SecretMount,
    SpecError,
    TestSpec,
    Threshold,
    UserVolumeMount,
)
from reconciler.api.parse import parse

SAMPLES = Path(__file__).parent.parent / "data" / "upstream-v2"
BASE = TestSpec(
    name="test",
    namespace="default",
    image="locustio/locust:2.20.0",
    master=RoleSpec(command_seed="locust -f /lotest/src/locustfile.py"),
    worker=RoleSpec(command_seed="locust -f /lotest/src/locustfile.py"),
    worker_replicas=1,
)


def spec(**changes: Any) -> TestSpec:
    return dataclasses.replace(BASE, **changes)


def volumes(*names: str) -> tuple[dict[str, Any], ...]:
    return tuple({"name": name, "emptyDir": {}} for name in names)


def mount(name: str, path: str, target: str = "both") -> UserVolumeMount:
    return UserVolumeMount(mount={"name": name, "mountPath": path}, target=target)


# --- paths ---------------------------------------------------------------------------------------


CONFLICTING_PATHS = [
    ("/lotest/src", "/lotest/src"),  # exact
    ("/opt/locust/lib", "/opt/locust/lib"),
    ("/lotest/src", "/lotest/src/secrets"),  # subpath, either way
    ("/lotest/src/secrets", "/lotest/src"),
    ("/opt/locust/lib", "/opt/locust/lib/utils"),
    ("/opt/locust/lib/utils", "/opt/locust/lib"),
    ("/lotest/src/", "/lotest/src"),  # trailing slash
    ("/lotest/src", "/lotest/src/"),
    ("/lotest/src/", "/lotest/src/"),
    ("/lotest/", "/lotest/src"),
    ("/", "/lotest/src"),
]
DISTINCT_PATHS = [
    ("/lotest/src", "/etc/certs"),
    ("/opt/locust/lib", "/var/secrets"),
    ("/lotest/src", "/lotest/src2"),  # a common prefix is not a subpath
    ("/lotest/src2", "/lotest/src"),
    ("/lotest/src2/", "/lotest/src/"),
]


@pytest.mark.parametrize(("first", "second"), CONFLICTING_PATHS)
def test_paths_conflict_when_one_is_or_holds_the_other(first: str, second: str):
    assert paths_conflict(first, second)


@pytest.mark.parametrize(("first", "second"), DISTINCT_PATHS)
def test_paths_do_not_conflict_otherwise(first: str, second: str):
    assert not paths_conflict(first, second)


@pytest.mark.parametrize(
    ("changes", "reserved"),
    [
        ({}, ("/lotest/src", "/opt/locust/lib")),  # no test files yet: both stay reserved
        ({"config_map": "my-scripts"}, ("/lotest/src",)),
        (
            {"config_map": "my-scripts", "lib_config_map": "my-lib"},
            ("/lotest/src", "/opt/locust/lib"),
        ),
        ({"lib_config_map": "my-lib"}, ("/opt/locust/lib",)),
        (
            {
                "config_map": "my-scripts",
                "lib_config_map": "my-lib",
                "src_mount_path": "/custom/src",
                "lib_mount_path": "/custom/lib",
            },
            ("/custom/src", "/custom/lib"),
        ),
        ({"src_mount_path": "/custom/src"}, ("/custom/src", "/opt/locust/lib")),
    ],
)
def test_reserved_paths_are_those_of_the_test_files(changes: dict[str, Any], reserved: tuple):
    assert reserved_paths(spec(**changes)) == reserved


# --- the rules, one by one ----------------------------------------------------------------------


def test_a_plain_test_is_valid():
    assert validate(BASE) == []


def test_a_secret_mount_outside_the_reserved_paths_is_valid():
    assert validate(spec(secret_mounts=(SecretMount("tls-certs", "/etc/locust/certs"),))) == []


@pytest.mark.parametrize(
    ("changes", "path", "reserved"),
    [
        ({}, "/lotest/src", "/lotest/src"),
        ({}, "/opt/locust/lib", "/opt/locust/lib"),
        ({}, "/lotest/src/secrets", "/lotest/src"),
        (
            {"config_map": "my-scripts", "src_mount_path": "/custom/src"},
            "/custom/src/secrets",
            "/custom/src",
        ),
    ],
    ids=["default src", "default lib", "subpath", "custom path"],
)
def test_a_secret_mount_on_a_reserved_path_is_rejected(changes, path, reserved):
    problems = validate(spec(secret_mounts=(SecretMount("bad-secret", path),), **changes))

    assert problems == [
        (
            f'spec.env.secretMounts[0].mountPath: secretMount path "{path}" conflicts with '
            f'reserved path "{reserved}"; operator uses this path for test files'
        )
    ]


def test_a_custom_source_path_frees_the_default_one():
    custom = spec(
        config_map="my-scripts",
        src_mount_path="/custom/src",
        secret_mounts=(SecretMount("secret", "/lotest/src"),),
    )

    assert validate(custom) == []


def test_volumes_with_their_own_names_and_paths_are_valid():
    test = spec(
        volumes=volumes("test-results", "shared-data"),
        volume_mounts=(
            mount("test-results", "/results", "master"),
            mount("shared-data", "/shared"),
        ),
    )

    assert validate(test) == []


@pytest.mark.parametrize(
    ("name", "volume", "reason"),
    [
        ("my-test", "secret-custom", 'uses reserved prefix "secret-"'),
        ("my-test", "locust-lib", "is reserved by the operator"),
        ("my-test", "my-test-master", "conflicts with operator-generated name"),
        ("my-test", "my-test-worker", "conflicts with operator-generated name"),
        ("my-test.v2", "my-test-v2-master", "conflicts with operator-generated name"),
        ("my-test.v2", "my-test-v2-worker", "conflicts with operator-generated name"),
    ],
)
def test_a_volume_named_like_an_operator_volume_is_rejected(name, volume, reason):
    test = spec(name=name, volumes=volumes(volume), volume_mounts=(mount(volume, "/custom"),))

    assert validate(test) == [f'spec.volumes[0].name: volume name "{volume}" {reason}']


@pytest.mark.parametrize("volume", ["my-test.v2-master", "my-test.v2-worker", "test-results"])
def test_names_the_operator_never_generates_are_free(volume: str):
    test = spec(
        name="my-test.v2", volumes=volumes(volume), volume_mounts=(mount(volume, "/data"),)
    )

    assert validate(test) == []


def test_a_volume_mount_on_a_reserved_path_is_rejected():
    test = spec(volumes=volumes("bad-volume"), volume_mounts=(mount("bad-volume", "/lotest/src"),))

    assert validate(test) == [
        (
            'spec.volumeMounts[0].mountPath: volumeMount path "/lotest/src" conflicts with '
            'reserved path "/lotest/src"'
        )
    ]


def test_a_volume_mount_of_an_undefined_volume_is_rejected():
    test = spec(
        volumes=volumes("vol1"),
        volume_mounts=(mount("vol1", "/data1"), mount("missing", "/data2")),
    )

    assert validate(test) == [
        'spec.volumeMounts[1].name: volumeMount "missing" references undefined volume'
    ]


@pytest.mark.parametrize(
    "otel",
    [
        OpenTelemetry(),
        OpenTelemetry(enabled=True, endpoint="otel-collector:4317", protocol="grpc"),
        OpenTelemetry(enabled=True, endpoint="otel-collector:4318", protocol="http/protobuf"),
    ],
)
def test_open_telemetry_off_or_with_an_endpoint_is_valid(otel: OpenTelemetry):
    assert validate(spec(open_telemetry=otel)) == []


def test_open_telemetry_without_an_endpoint_is_rejected():
    assert validate(spec(open_telemetry=OpenTelemetry(enabled=True))) == [
        (
            "spec.observability.openTelemetry.endpoint: observability.openTelemetry.endpoint is "
            "required when OpenTelemetry is enabled"
        )
    ]


def test_a_56_character_name_is_valid():
    assert validate(spec(name="a123456789-123456789-123456789-123456789-123456789-12345")) == []


def test_a_57_character_name_is_too_long_for_the_job_names():
    name = "a123456789-123456789-123456789-123456789-123456789-123456"

    assert validate(spec(name=name)) == [
        (
            f'metadata.name: name "{name}" is too long: generated Job names would exceed 63 '
            "characters (max CR name length is 56)"
        )
    ]


def test_problems_come_in_upstreams_order():
    test = spec(
        open_telemetry=OpenTelemetry(enabled=True),
        volumes=volumes("secret-bad"),
        volume_mounts=(mount("secret-bad", "/data"),),
        secret_mounts=(SecretMount("bad-secret", "/lotest/src"),),
    )

    problems = validate(test)

    assert [problem.split(":")[0] for problem in problems] == [
        "spec.env.secretMounts[0].mountPath",
        "spec.volumes[0].name",
        "spec.observability.openTelemetry.endpoint",
    ]


# --- parse holds the rules too -------------------------------------------------------------------


def v2_document(**spec_fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "locust.io/v2",
        "kind": "LocustTest",
        "metadata": {"name": "test", "namespace": "default"},
        "spec": {
            "image": "locustio/locust:2.20.0",
            "master": {"command": "locust -f /lotest/src/locustfile.py"},
            "worker": {"command": "locust -f /lotest/src/locustfile.py", "replicas": 1},
            **spec_fields,
        },
    }


def test_parse_raises_the_first_problem():
    document = v2_document(
        env={"secretMounts": [{"name": "bad-secret", "mountPath": "/lotest/src"}]},
        volumes=[{"name": "secret-bad", "emptyDir": {}}],
    )

    with pytest.raises(SpecError, match=r"^spec\.env\.secretMounts\[0\]\.mountPath: secretMount"):
        parse(document)


@pytest.mark.parametrize(
    ("thresholds", "message"),
    [
        (
            [{"metric": "rps", "min": 1}, {"metric": "p95Ms"}],
            "spec.thresholds[1]: set exactly one",
        ),
        ([{"metric": "p95Ms", "max": 1, "min": 2}], "spec.thresholds[0]: set exactly one of"),
        (
            [{"metric": "p95Ms", "max": 1, "request": "GET"}],
            'spec.thresholds[0].request: must be "METHOD name"',
        ),
        ([{"metric": "p90Ms", "max": 1}], 'spec.thresholds[0].metric: Unsupported value: "p90Ms"'),
        ([{"metric": "rps", "max": "10"}], "spec.thresholds[0].max: Invalid value: "),
    ],
)
def test_parse_refuses_a_bad_threshold_naming_it(thresholds: list, message: str):
    with pytest.raises(SpecError) as raised:
        parse(v2_document(thresholds=thresholds))

    assert str(raised.value).startswith(message)


def test_validate_holds_the_threshold_rules_on_the_model():
    # What a v1 test brings through its annotation reaches the model without the CEL rules.
    bad = spec(
        thresholds=(
            Threshold("p95Ms", max=1.0),
            Threshold("p95Ms"),
            Threshold("nonsense", min=1.0, request="/x"),
        )
    )

    assert validate(bad) == [
        "spec.thresholds[1]: set exactly one of max or min",
        'spec.thresholds[2].metric: Unsupported value: "nonsense": supported values: '
        '"requests", "failures", "failRatio", "rps", "avgMs", "p50Ms", "p95Ms", "p99Ms", "maxMs"',
        'spec.thresholds[2].request: must be "METHOD name"',
    ]


def test_parse_reads_thresholds_into_the_model():
    document = v2_document(
        thresholds=[
            {"metric": "p95Ms", "max": 500, "request": "GET /checkout", "abortOnFail": True},
            {"metric": "requests", "min": 1000},
        ]
    )

    assert parse(document).thresholds == (
        Threshold("p95Ms", max=500.0, request="GET /checkout", abort_on_fail=True),
        Threshold("requests", min=1000.0),
    )
    assert parse(v2_document()).thresholds == ()


def test_the_thresholds_example_reads_and_passes_the_cel_rules():
    document = yaml.safe_load(
        (Path(__file__).parents[2] / "examples" / "thresholds" / "locusttest.yaml").read_text()
    )

    assert cel_violations(document) == []
    assert parse(document).thresholds == (
        Threshold("failRatio", max=0.01),
        Threshold("rps", min=10.0),
        Threshold("p95Ms", max=500.0, request="GET /", abort_on_fail=True),
    )


def test_parse_holds_the_rules_for_a_v1_test():
    document = {
        "apiVersion": "locust.io/v1",
        "kind": "LocustTest",
        "metadata": {"name": "n" * 57},
        "spec": {"image": "i", "masterCommandSeed": "m", "workerCommandSeed": "w"},
    }

    with pytest.raises(SpecError, match=r'^metadata\.name: name "n{57}" is too long'):
        parse(document)


# --- the CRD's CEL rules -------------------------------------------------------------------------

CEL = celpy.Environment()
# The one function the rules use beyond standard CEL, from the strings extension library that
# Kubernetes CEL includes: `text.replace(old, new)` replaces every occurrence.
KUBERNETES_FUNCTIONS = {
    "replace": lambda text, old, new: celpy.celtypes.StringType(text.replace(old, new)),
}


@cache
def program(expression: str) -> celpy.Runner:
    return CEL.program(CEL.compile(expression), functions=KUBERNETES_FUNCTIONS)


def rules(node: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield from node.get("x-kubernetes-validations", ())
    for child in (node.get("properties") or {}).values():
        yield from rules(child)
    if isinstance(node.get("items"), dict):
        yield from rules(node["items"])


def cel_violations(document: dict[str, Any]) -> list[str]:
    """The messages of the CEL rules `document` breaks, evaluated after defaulting, as the
    apiserver does."""
    version = version_schema(document["apiVersion"].rpartition("/")[2])
    defaulted = schema.apply_defaults(copy.deepcopy(document), version)
    return list(_violations(defaulted, version))


def _violations(value: Any, node: dict[str, Any]) -> Iterator[str]:
    for rule in node.get("x-kubernetes-validations", ()):
        if not program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)}):
            if "messageExpression" in rule:
                yield str(
                    program(rule["messageExpression"]).evaluate({"self": celpy.json_to_cel(value)})
                )
            else:
                yield rule["message"]
    if isinstance(value, dict):
        for key, child in (node.get("properties") or {}).items():
            if key in value:
                yield from _violations(value[key], child)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            yield from _violations(item, node["items"])


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_every_cel_rule_and_message_compiles(version: str):
    found = list(rules(version_schema(version)))

    assert found
    for rule in found:
        program(rule["rule"])
        if "messageExpression" in rule:
            program(rule["messageExpression"])


def _secret_mounts(*paths: str) -> dict[str, Any]:
    return {
        "secretMounts": [{"name": f"s{index}", "mountPath": p} for index, p in enumerate(paths)]
    }


def _volume_mounts(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "mountPath": path} for name, path in pairs]


# Each case: the document's spec fields, then what CEL says. `validate` must reject exactly the
# same documents (its messages carry the field and the offending values).
CEL_CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "plain": ({}, []),
    "secret mount elsewhere": ({"env": _secret_mounts("/etc/certs")}, []),
    "secret mount on default src": (
        {"env": _secret_mounts("/lotest/src")},
        ["secretMount path conflicts with reserved path; operator uses this path for test files"],
    ),
    "secret mount under default lib, trailing slash": (
        {"env": _secret_mounts("/opt/locust/lib/x/")},
        ["secretMount path conflicts with reserved path; operator uses this path for test files"],
    ),
    "secret mount above a reserved path": (
        {"env": _secret_mounts("/opt/")},
        ["secretMount path conflicts with reserved path; operator uses this path for test files"],
    ),
    "secret mount on a path the test files do not use": (
        {"testFiles": {"configMapRef": "scripts"}, "env": _secret_mounts("/opt/locust/lib")},
        [],
    ),
    "secret mount on a custom src path": (
        {
            "testFiles": {"configMapRef": "scripts", "srcMountPath": "/custom/src/"},
            "env": _secret_mounts("/custom/src/secrets"),
        },
        ["secretMount path conflicts with reserved path; operator uses this path for test files"],
    ),
    "empty ConfigMap names count as none": (
        {
            "testFiles": {"configMapRef": "", "libConfigMapRef": ""},
            "env": _secret_mounts("/opt/locust/lib"),
        },
        ["secretMount path conflicts with reserved path; operator uses this path for test files"],
    ),
    "lib only frees the src path": (
        {"testFiles": {"libConfigMapRef": "lib"}, "env": _secret_mounts("/lotest/src")},
        [],
    ),
    "volume mounts of defined volumes": (
        {
            "volumes": [{"name": "results", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("results", "/results")),
        },
        [],
    ),
    "volume with the secret- prefix": (
        {
            "volumes": [{"name": "secret-x", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("secret-x", "/x")),
        },
        ['volume name "secret-x" uses reserved prefix "secret-"'],
    ),
    "volume named like the master Job": (
        {
            "volumes": [{"name": "test-master", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("test-master", "/x")),
        },
        ['volume name "test-master" conflicts with operator-generated name'],
    ),
    "volume named like the worker Job": (
        {
            "volumes": [{"name": "test-worker", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("test-worker", "/x")),
        },
        ['volume name "test-worker" conflicts with operator-generated name'],
    ),
    "volume named locust-lib": (
        {
            "volumes": [{"name": "locust-lib", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("locust-lib", "/x")),
        },
        ['volume name "locust-lib" is reserved by the operator'],
    ),
    "volume mount on a reserved path": (
        {
            "volumes": [{"name": "data", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("data", "/lotest/src/data")),
        },
        ["volumeMount path conflicts with reserved path"],
    ),
    "volume mount of an undefined volume": (
        {
            "volumes": [{"name": "data", "emptyDir": {}}],
            "volumeMounts": _volume_mounts(("data", "/data"), ("missing", "/missing")),
        },
        ['volumeMount "missing" references undefined volume'],
    ),
    "volume mount without any volume": (
        {"volumeMounts": _volume_mounts(("missing", "/missing"))},
        ['volumeMount "missing" references undefined volume'],
    ),
    "OpenTelemetry with an endpoint": (
        {"observability": {"openTelemetry": {"enabled": True, "endpoint": "collector:4317"}}},
        [],
    ),
    "OpenTelemetry disabled without an endpoint": (
        {"observability": {"openTelemetry": {"enabled": False}}},
        [],
    ),
    "OpenTelemetry without an endpoint": (
        {"observability": {"openTelemetry": {"enabled": True}}},
        ["observability.openTelemetry.endpoint is required when OpenTelemetry is enabled"],
    ),
    "thresholds with max or min, on the total or on a request": (
        {
            "thresholds": [
                {"metric": "p95Ms", "max": 500, "request": "GET /checkout"},
                {"metric": "rps", "min": 50},
                {"metric": "p99Ms", "max": 900, "request": "grpc Shop Checkout"},
            ]
        },
        [],
    ),
    "a threshold with neither max nor min": (
        {"thresholds": [{"metric": "p95Ms"}]},
        ["set exactly one of max or min"],
    ),
    "a threshold with both max and min": (
        {"thresholds": [{"metric": "p95Ms", "max": 1, "min": 0}]},
        ["set exactly one of max or min"],
    ),
    "a threshold on a request without its method": (
        {"thresholds": [{"metric": "p95Ms", "max": 1, "request": "/checkout"}]},
        ['must be "METHOD name"'],
    ),
    "a threshold on a request with a method only": (
        {"thresholds": [{"metric": "p95Ms", "max": 1, "request": "GET "}]},
        ['must be "METHOD name"'],
    ),
    "OpenTelemetry with an empty endpoint": (
        {"observability": {"openTelemetry": {"enabled": True, "endpoint": ""}}},
        ["observability.openTelemetry.endpoint is required when OpenTelemetry is enabled"],
    ),
}


@pytest.mark.parametrize("case", list(CEL_CASES))
def test_the_cel_rules_reject_what_validate_rejects(case: str):
    fields, expected = CEL_CASES[case]
    document = v2_document(**fields)

    assert cel_violations(document) == expected
    if expected:
        with pytest.raises(SpecError):
            parse(document)
    else:
        parse(document)


@pytest.mark.parametrize("sample", sorted(SAMPLES.glob("*.yaml")), ids=lambda path: path.name)
def test_upstreams_samples_pass_the_cel_rules(sample: Path):
    assert cel_violations(yaml.safe_load(sample.read_text())) == []


@pytest.mark.parametrize(("path", "reserved"), CONFLICTING_PATHS + DISTINCT_PATHS)
def test_the_cel_rules_compare_paths_as_validate_does(path: str, reserved: str):
    document = v2_document(
        testFiles={"configMapRef": "scripts", "srcMountPath": reserved},
        env={"secretMounts": [{"name": "s", "mountPath": path}]},
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": path}],
    )

    violations = cel_violations(document)

    assert len(violations) == (2 if paths_conflict(path, reserved) else 0)


@pytest.mark.parametrize(("length", "accepted"), [(56, True), (57, False)])
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_cel_name_rule_allows_56_characters(version: str, length: int, accepted: bool):
    name = "a" * length
    document = {
        "apiVersion": f"locust.io/{version}",
        "kind": "LocustTest",
        "metadata": {"name": name},
        "spec": {},
    }

    too_long = (
        f'name "{name}" is too long: generated Job names would exceed 63 characters '
        "(max CR name length is 56)"
    )

    assert cel_violations(document) == ([] if accepted else [too_long])


@pytest.mark.parametrize(
    ("volume", "conflicts"),
    [("team-a-load-master", True), ("team-a-load-worker", True), ("team-a.load-master", False)],
)
def test_the_cel_rule_on_generated_names_uses_the_name_with_dots_as_dashes(volume, conflicts):
    document = v2_document(
        volumes=[{"name": volume, "emptyDir": {}}],
        volumeMounts=_volume_mounts((volume, "/data")),
    )
    document["metadata"]["name"] = "team-a.load"

    expected = [f'volume name "{volume}" conflicts with operator-generated name']
    assert cel_violations(document) == (expected if conflicts else [])
