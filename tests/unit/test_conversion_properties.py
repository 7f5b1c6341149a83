"""Round trips through the other version, on LocustTests generated from the CRD's own schemas.

Every valid v2 test (one `parse` accepts) comes back unchanged from its v1 view, as the apiserver
hands that view back (JSON through Go maps, v1 defaults applied), and the v1 view is one v1 accepts
and reads as the same test. A v1 test in normal form (nothing empty, which both versions leave
out) comes back unchanged from v2, and any v1 test reads the same after the trip.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

from hypothesis import HealthCheck, assume, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from reconciler.api import schema
from reconciler.api.conversion import SPEC_ANNOTATION, convert
from reconciler.api.parse import parse
from reconciler.api.types import SpecError
from reconciler.crds import version_schema

V1, V2 = "locust.io/v1", "locust.io/v2"
V1_SCHEMA, V2_SCHEMA = version_schema("v1"), version_schema("v2")
PROPERTIES = settings(
    max_examples=100,
    deadline=None,  # two shared cores: speed is no property
    derandomize=True,  # the same examples every run: a red suite means a bug, never bad luck
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# Short strings from a small alphabet, so that names meet and rules (paths, references) apply.
WORDS = st.text(alphabet="ab/-.", min_size=0, max_size=6)
KEYS = st.text(alphabet="abc", min_size=1, max_size=3)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=8,
)


def samples(*values: Any) -> st.SearchStrategy[Any]:
    """One of `values`, a fresh copy each time: conversion and defaulting change what they get."""
    return st.sampled_from(values).map(copy.deepcopy)


DNS_LABELS = st.from_regex(r"[a-z]([a-z0-9]{0,4})", fullmatch=True)
RESOURCES = st.fixed_dictionaries(
    {},
    optional={
        "requests": st.fixed_dictionaries(
            {}, optional={"cpu": st.sampled_from(["100m", "1"]), "memory": st.just("64Mi")}
        ),
        "limits": st.fixed_dictionaries(
            {}, optional={"cpu": st.sampled_from(["1", "2"]), "memory": st.just("1Gi")}
        ),
    },
)
VOLUME_SOURCES = samples(
    {"emptyDir": {}}, {"configMap": {"name": "files"}}, {"secret": {"secretName": "keys"}}
)


@st.composite
def tolerations(draw: st.DrawFn, *, v1: bool = False) -> dict[str, Any]:
    """A toleration Kubernetes accepts; v1's have an operator and an effect, and no seconds."""
    toleration: dict[str, Any] = {"key": draw(st.sampled_from(["zone", "example.com/gpu"]))}
    operator = draw(st.sampled_from(["Exists", "Equal"] if v1 else [None, "Exists", "Equal"]))
    if operator:
        toleration["operator"] = operator
    if operator != "Exists" and draw(st.booleans()):
        toleration["value"] = draw(DNS_LABELS)
    effects = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
    effect = draw(st.sampled_from(effects if v1 else [None, *effects]))
    if effect:
        toleration["effect"] = effect
    if not v1 and effect == "NoExecute" and draw(st.booleans()):
        toleration["tolerationSeconds"] = draw(st.integers(0, 3600))
    return toleration


# Kubernetes-typed fields (preserved as they are by the CRD, or checked by `parse` against the
# real types): random values are almost never a valid Volume, Affinity or toleration, so every
# test holding one would be thrown away and the fields below it never generated.
KUBERNETES_TYPED: dict[str, st.SearchStrategy[Any]] = {
    ".master.resources": RESOURCES,
    ".worker.resources": RESOURCES,
    ".resources": RESOURCES,
    ".scheduling.affinity": samples(
        {},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                    ]
                }
            }
        },
    ),
    ".scheduling.nodeSelector.*": DNS_LABELS,
    ".scheduling.tolerations[]": tolerations(),
    ".tolerations[]": tolerations(v1=True),
    ".master.labels.*": DNS_LABELS,
    ".worker.labels.*": DNS_LABELS,
    ".volumes": st.lists(
        st.builds(
            lambda name, source: {"name": name, **source},
            DNS_LABELS.filter(lambda name: name != "locust-lib"),
            VOLUME_SOURCES,
        ),
        max_size=3,
        unique_by=lambda volume: volume["name"],
    ),
    ".volumeMounts[].mountPath": st.sampled_from(["/data", "/mnt/extra", "/var/cache/x"]),
    ".env.secretMounts[].mountPath": st.sampled_from(["/secrets", "/etc/keys", "/run/tls"]),
    ".env.variables[]": st.builds(
        lambda name, value: {"name": name, **value},
        st.from_regex(r"[A-Z_][A-Z0-9_]{0,4}", fullmatch=True),
        samples({}, {"value": "x"}, {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    ),
    ".security.podSecurityContext": samples(
        {}, {"runAsNonRoot": True}, {"runAsUser": 1000, "fsGroup": 2000}
    ),
    ".security.containerSecurityContext": samples(
        {}, {"readOnlyRootFilesystem": True}, {"capabilities": {"drop": ["ALL"]}}
    ),
}


def from_schema(
    node: dict[str, Any], *, normal: bool = False, path: str = ""
) -> st.SearchStrategy[Any]:
    """Values of an openAPIV3Schema node at `path` below the spec. `normal`: no empty strings,
    lists or objects."""
    if path in KUBERNETES_TYPED:
        typed = KUBERNETES_TYPED[path]
        return typed.filter(bool) if normal else typed
    least = 1 if normal else 0
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "boolean":
        return st.booleans()
    if kind == "number":
        return st.integers(-1000, 1000) | st.floats(-1e6, 1e6, width=32)
    if kind == "integer":
        low = node.get("minimum", -(2**31) if node.get("format") == "int32" else -(2**53))
        high = node.get("maximum", 2**31 - 1 if node.get("format") == "int32" else 2**53)
        return st.integers(low, high)
    if kind == "string":
        if "pattern" in node:
            return st.from_regex(node["pattern"], fullmatch=True).filter(
                lambda text: len(text) <= node.get("maxLength", 1024) and len(text) >= least
            )
        return st.text(alphabet="ab/-.", min_size=max(least, node.get("minLength", 0)), max_size=6)
    if kind == "array":
        items = from_schema(node["items"], normal=normal, path=f"{path}[]")
        return st.lists(items, min_size=least, max_size=min(3, node.get("maxItems", 3)))
    if kind == "object":
        return _object(node, normal=normal, path=path)
    raise AssertionError(f"no strategy for {node}")


def _object(node: dict[str, Any], *, normal: bool, path: str) -> st.SearchStrategy[dict[str, Any]]:
    least = 1 if normal else 0
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    if not properties:
        if isinstance(extra, dict):
            values = from_schema(extra, normal=normal, path=f"{path}.*")
            return st.dictionaries(KEYS, values, min_size=least, max_size=3)
        # x-kubernetes-preserve-unknown-fields: any JSON object (a Kubernetes-typed field).
        return st.dictionaries(KEYS, JSON, min_size=least, max_size=3)
    required = set(node.get("required", ()))
    known = st.fixed_dictionaries(
        {
            key: from_schema(properties[key], normal=normal, path=f"{path}.{key}")
            for key in required
        },
        optional={
            key: from_schema(value, normal=normal, path=f"{path}.{key}")
            for key, value in properties.items()
            if key not in required
        },
    )
    if node.get("x-kubernetes-preserve-unknown-fields"):
        unknown = st.dictionaries(KEYS.filter(lambda key: key not in properties), JSON, max_size=2)
        known = st.builds(lambda named, rest: {**rest, **named}, known, unknown)
    return known.filter(bool) if normal else known


@st.composite
def metadata(draw: st.DrawFn) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": draw(st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)),
        "namespace": "default",
        "uid": draw(st.uuids()).hex,
        "resourceVersion": str(draw(st.integers(1, 10**6))),
        "generation": draw(st.integers(1, 100)),
    }
    # Never the empty map: the apiserver drops an empty annotations map, and so do we.
    labels = draw(st.dictionaries(KEYS, KEYS, max_size=2))
    annotations = draw(st.dictionaries(KEYS, st.text(max_size=8), max_size=2))
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return meta


def _small_status() -> st.SearchStrategy[dict[str, Any]]:
    """Statuses of the schema, with at most one results entry: conversion copies the status
    whatever it holds, and big statuses would crowd out the specs the properties are about."""
    node = copy.deepcopy(V2_SCHEMA["properties"]["status"])
    node["properties"]["results"]["properties"]["entries"]["maxItems"] = 1
    return from_schema(node)


STATUSES = _small_status()


@st.composite
def v2_tests(draw: st.DrawFn) -> dict[str, Any]:
    """A valid v2 LocustTest, sometimes in its stored form (with the schema's defaults)."""
    spec = draw(from_schema(V2_SCHEMA["properties"]["spec"]))
    volumes = [volume["name"] for volume in spec.get("volumes") or ()]
    for mount in spec.get("volumeMounts") or ():
        if volumes:  # mounts must name a volume
            mount["name"] = draw(st.sampled_from(volumes))
    for threshold in spec.get("thresholds") or ():
        _make_valid(draw, threshold)
    if draw(st.booleans()):
        spec = schema.apply_defaults(spec, V2_SCHEMA["properties"]["spec"])
    test = {"apiVersion": V2, "kind": "LocustTest", "metadata": draw(metadata()), "spec": spec}
    if draw(st.booleans()):
        test["status"] = draw(STATUSES)
    assume(parses(test))
    return test


# Request entries as thresholds name them: "METHOD name", the name possibly with spaces.
REQUESTS = st.builds(
    "{} {}".format, st.sampled_from(["GET", "POST", "grpc"]), st.text(alphabet="ab/ -", min_size=1)
)


def _make_valid(draw: st.DrawFn, threshold: dict[str, Any]) -> None:
    """Exactly one of max and min, and a request as "METHOD name" (rules the schema alone
    cannot say, so the drawn values would rarely meet them)."""
    if ("max" in threshold) == ("min" in threshold):
        keep = draw(st.sampled_from(["max", "min"]))
        threshold.pop("min" if keep == "max" else "max", None)
        threshold.setdefault(keep, draw(from_schema({"type": "number"})))
    if "request" in threshold:
        threshold["request"] = draw(REQUESTS)


@st.composite
def v1_tests(draw: st.DrawFn, *, normal: bool) -> dict[str, Any]:
    spec = draw(from_schema(V1_SCHEMA["properties"]["spec"], normal=normal))
    test = {"apiVersion": V1, "kind": "LocustTest", "metadata": draw(metadata()), "spec": spec}
    assume(parses(test))
    return test


def parses(test: dict[str, Any]) -> bool:
    try:
        parse(test)
    except SpecError:
        return False
    return True


def as_the_apiserver_hands_back(view: dict[str, Any], version_schema: dict[str, Any]) -> Any:
    """What a client reads and writes back unchanged: JSON through Go maps (sorted keys), with
    the version's defaults applied, as they are to every write."""
    returned = json.loads(json.dumps(view, sort_keys=True))
    schema.apply_defaults(returned["spec"], version_schema["properties"]["spec"])
    return returned


@PROPERTIES
@given(v2_tests())
def test_every_v2_test_comes_back_unchanged_from_v1(v2: dict[str, Any]):
    before = copy.deepcopy(v2)

    view = as_the_apiserver_hands_back(convert(v2, V1), V1_SCHEMA)

    assert convert(view, V2) == v2
    assert v2 == before


@PROPERTIES
@given(v2_tests())
def test_the_v1_view_of_a_v2_test_is_valid_v1_and_reads_as_the_same_test(v2: dict[str, Any]):
    view = as_the_apiserver_hands_back(convert(v2, V1), V1_SCHEMA)

    assert schema.validate(view["spec"], V1_SCHEMA["properties"]["spec"], "spec") == []
    assert {k: v for k, v in view["metadata"].items() if k != "annotations"} == {
        k: v for k, v in v2["metadata"].items() if k != "annotations"
    }
    assert view.get("status") == v2.get("status")
    assert dataclasses.replace(parse(view), api_version=V2) == parse(v2)


@PROPERTIES
@given(v2_tests(), st.integers(1, 500))
def test_a_v1_change_of_worker_replicas_changes_only_that(v2: dict[str, Any], replicas: int):
    view = as_the_apiserver_hands_back(convert(v2, V1), V1_SCHEMA)
    view["spec"]["workerReplicas"] = replicas

    back = convert(view, V2)

    assert back["spec"]["worker"] == {**v2["spec"]["worker"], "replicas": replicas}
    assert {k: v for k, v in back["spec"].items() if k != "worker"} == {
        k: v for k, v in v2["spec"].items() if k != "worker"
    }


@PROPERTIES
@given(v1_tests(normal=True))
def test_every_v1_test_in_normal_form_comes_back_unchanged_from_v2(v1: dict[str, Any]):
    # Exists ignores a toleration's value, which v2 therefore drops.
    tolerations = v1["spec"].get("tolerations") or ()
    assume(not any(t["operator"] == "Exists" and "value" in t for t in tolerations))

    v2 = json.loads(json.dumps(convert(v1, V2), sort_keys=True))

    assert convert(v2, V1) == v1
    assert SPEC_ANNOTATION not in convert(v2, V1)["metadata"].get("annotations", {})


@PROPERTIES
@given(v1_tests(normal=False))
def test_every_v1_test_reads_the_same_after_a_trip_through_v2(v1: dict[str, Any]):
    stored = convert(v1, V2)
    stored["spec"] = schema.apply_defaults(stored["spec"], V2_SCHEMA["properties"]["spec"])

    view = as_the_apiserver_hands_back(convert(stored, V1), V1_SCHEMA)

    assert parse(view) == parse(v1)
    assert convert(view, V2) == stored


def test_the_generated_tests_cover_every_v2_field():
    """The strategies come from the schema: a new v2 field is generated (and so checked) too."""
    spec_schema = V2_SCHEMA["properties"]["spec"]
    search = settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    seen: set[str] = set()

    @search
    @given(v2_tests())
    def collect(v2: dict[str, Any]) -> None:
        seen.update(_paths(v2["spec"], spec_schema))

    collect()
    # A field deep in optional objects can be rare in one batch: search for it before giving up.
    missing = []
    for path in sorted(set(_paths_of_schema(spec_schema)) - seen):
        try:
            find(
                v2_tests(),
                lambda v2, path=path: path in _paths(v2["spec"], spec_schema),
                settings=settings(search, max_examples=3000),
            )
        except NoSuchExample:
            missing.append(path)
    assert missing == []


def _paths(value: Any, node: dict[str, Any], prefix: str = "") -> set[str]:
    found = {prefix} if prefix else set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in node.get("properties", {}):
                found |= _paths(item, node["properties"][key], f"{prefix}.{key}")
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            found |= _paths(item, node["items"], prefix)
    return found


def _paths_of_schema(node: dict[str, Any], prefix: str = "") -> set[str]:
    found = {prefix} if prefix else set()
    for key, child in node.get("properties", {}).items():
        found |= _paths_of_schema(child, f"{prefix}.{key}")
    if isinstance(node.get("items"), dict):
        found |= _paths_of_schema(node["items"], prefix)
    return found
