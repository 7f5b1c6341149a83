"""``x-kubernetes-validations``: CEL rules compiled when a CRD is written and checked on every
custom resource write, with the apiserver's messages."""

from __future__ import annotations

import copy
from typing import Any

import celpy
import httpx2 as httpx
import pytest
import yaml
from lightkube import ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.types import PatchType

from fakekube import FakeKube, StatusError
from fakekube.cel import compile_expression

from .gadgets import V1, V2, gadget_v1, gadget_v2, gadgets_crd, same_shape_crd, version

GadgetV2 = create_namespaced_resource("example.com", "v2", "Gadget", "gadgets")
MERGE = {"Content-Type": "application/merge-patch+json"}
CRD_INVALID = 'CustomResourceDefinition.apiextensions.k8s.io "gadgets.example.com" is invalid: '
SCHEMA = "spec.validation.openAPIV3Schema"


def cel_crd(rules: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Gadgets served in v2 only, with ``rules`` at the schema nodes named by dotted paths
    ("" is the root, "spec.workers" a nested object, "spec.ports.items" a list's items). The
    lists and strings the rules walk are bounded, as the apiserver's cost budget requires."""
    crd = gadgets_crd()
    crd["spec"]["versions"] = [version(crd, "v2")]
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    root["properties"]["spec"]["properties"] |= {
        "tier": {"type": "string", "maxLength": 16},
        "tags": {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 64}},
        "ports": {
            "type": "array",
            "maxItems": 16,
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "maxLength": 63},
                    "port": {"type": "integer"},
                },
            },
        },
    }
    for path, node_rules in rules.items():
        node = root
        for key in filter(None, path.split(".")):
            node = node["items"] if key == "items" else node["properties"][key]
        node["x-kubernetes-validations"] = node_rules
    return crd


def install(fakekube: FakeKube, **rules: list[dict[str, Any]]) -> None:
    fakekube.apply_yaml(
        yaml.safe_dump(cel_crd({k.replace("__", "."): v for k, v in rules.items()}))
    )


def rejected(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    return response.json()


def test_a_root_rule_sees_the_name_and_reports_the_nil_path(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    install(fakekube, **{"": [{"rule": "size(self.metadata.name) <= 10", "message": "too long"}]})
    status = rejected(http.post(V2, json=gadget_v2("eleven-char")))
    assert status["message"] == (
        'Gadget.example.com "eleven-char" is invalid: <nil>: Invalid value: "object": too long'
    )
    assert status["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "object": too long',
            "field": "<nil>",
        }
    ]
    generated = gadget_v2("") | {"metadata": {"generateName": "g-", "namespace": "default"}}
    assert http.post(V2, json=generated).status_code == 201  # the generated name is checked


def test_messages_come_from_the_expression_the_message_or_the_rule(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    install(
        fakekube,
        spec=[
            {"rule": "self.workers.replicas <= 100"},
            {
                "rule": "self.workers.replicas <= 50",
                "message": "at most 50 workers",
                # string(int) has no size bound: the apiserver refuses it in a message
                "messageExpression": (
                    "'asked for ' + (self.workers.replicas > 100 ? 'over 100' : 'over 50')"
                    " + ' workers'"
                ),
            },
            {
                "rule": "self.workers.replicas <= 20",
                "message": "at most 20 workers",
                # tier is not set: the expression fails and the message is used instead
                "messageExpression": "'asked for ' + self.tier",
            },
        ],
    )
    message = rejected(http.post(V2, json=gadget_v2("g", replicas=120)))["message"]
    assert message == (
        'Gadget.example.com "g" is invalid: ['
        'spec: Invalid value: "object": failed rule: self.workers.replicas <= 100, '
        'spec: Invalid value: "object": asked for over 100 workers, '
        'spec: Invalid value: "object": at most 20 workers]'
    )


def test_reason_and_field_path_shape_the_error(http: httpx.Client, fakekube: FakeKube) -> None:
    install(
        fakekube,
        spec=[
            {
                "rule": "self.workers.replicas <= 100",
                "message": "too many workers",
                "reason": "FieldValueForbidden",
                "fieldPath": ".workers.replicas",
            },
            {
                "rule": "has(self.tier)",
                "message": "say which tier",
                "reason": "FieldValueRequired",
                "fieldPath": ".tier",
            },
            {"rule": "self.image != 'dup'", "reason": "FieldValueDuplicate"},
        ],
    )
    causes = rejected(http.post(V2, json=gadget_v2("g", replicas=120, image="dup")))["details"][
        "causes"
    ]
    assert [(c["field"], c["message"]) for c in causes] == [
        ("spec.workers.replicas", "Forbidden: too many workers"),
        ("spec.tier", "Required value: say which tier"),
        ("spec", 'Duplicate value: "object"'),
    ]


def test_a_runtime_error_names_the_rule(http: httpx.Client, fakekube: FakeKube) -> None:
    install(fakekube, spec=[{"rule": "self.tier == 'gold'", "message": "gold only"}])
    assert rejected(http.post(V2, json=gadget_v2("g")))["message"] == (
        'Gadget.example.com "g" is invalid: spec: Invalid value: "object": '
        "no such key: tier evaluating rule: gold only"
    )
    assert http.post(V2, json=gadget_v2("g", tier="gold")).status_code == 201


def test_transition_rules_run_on_updates_only(http: httpx.Client, fakekube: FakeKube) -> None:
    install(
        fakekube,
        spec__image=[{"rule": "self == oldSelf", "message": "image is immutable"}],
        spec__ports__items=[{"rule": "self.port == oldSelf.port", "message": "port is fixed"}],
    )
    ports = [{"name": "web", "port": 80}, {"name": "api", "port": 81}]
    assert http.post(V2, json=gadget_v2("g", ports=ports)).status_code == 201
    assert (
        rejected(http.patch(f"{V2}/g", json={"spec": {"image": "other"}}, headers=MERGE))[
            "message"
        ]
        == 'Gadget.example.com "g" is invalid: spec.image: Invalid value: "string": '
        "image is immutable"
    )
    # Items of a map-type list are matched by key: reordering or adding keeps every port.
    reordered = [
        {"name": "api", "port": 81},
        {"name": "web", "port": 80},
        {"name": "x", "port": 9},
    ]
    assert http.patch(f"{V2}/g", json={"spec": {"ports": reordered}}, headers=MERGE).is_success
    moved = [{"name": "api", "port": 82}]
    assert (
        rejected(http.patch(f"{V2}/g", json={"spec": {"ports": moved}}, headers=MERGE))["details"][
            "causes"
        ][0]["field"]
        == "spec.ports[0]"
    )


def test_unchanged_values_are_not_checked_again(
    http: httpx.Client, fakekube: FakeKube, client: Client
) -> None:
    install(fakekube)
    http.post(V2, json=gadget_v2("g", replicas=300))
    install(fakekube, spec__workers=[{"rule": "self.replicas <= 100", "message": "too many"}])
    # Ratcheting: the stored object breaks the new rule, but writes that leave workers alone pass.
    status = {"status": {"phase": "Running"}}
    assert http.patch(f"{V2}/g/status", json=status, headers=MERGE).is_success
    assert http.patch(f"{V2}/g", json={"spec": {"image": "new"}}, headers=MERGE).is_success
    with pytest.raises(ApiError) as error:
        client.patch(
            GadgetV2,
            "g",
            {"spec": {"workers": {"command": "locust -f b.py"}}},
            namespace="default",
            patch_type=PatchType.MERGE,
        )
    assert error.value.status.code == 422
    assert error.value.status.details.causes[0].field == "spec.workers"


def test_rules_wait_for_a_well_typed_object(http: httpx.Client, fakekube: FakeKube) -> None:
    install(fakekube, spec=[{"rule": "self.workers.replicas <= 100"}])
    message = rejected(http.post(V2, json=gadget_v2("g", replicas="two")))["message"]
    assert message.endswith(
        "<nil>: Invalid value: null: some validation rules were not checked because the object "
        "was invalid; correct the existing errors to complete validation]"
    )
    assert "failed rule" not in message


def test_each_version_checks_its_own_rules(http: httpx.Client, fakekube: FakeKube) -> None:
    crd = same_shape_crd()
    rule = {"rule": "self.image.startsWith('locustio/')", "message": "locust images only"}
    version(crd, "v2")["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "x-kubernetes-validations"
    ] = [rule]
    fakekube.apply_yaml(yaml.safe_dump(crd))
    assert http.post(V1, json=gadget_v1("a", image="nginx")).status_code == 201
    through_v2 = gadget_v1("b", image="nginx") | {"apiVersion": "example.com/v2"}
    assert "locust images only" in rejected(http.post(V2, json=through_v2))["message"]


@pytest.mark.parametrize(
    ("rules", "field", "detail"),
    [
        (
            {"spec": [{"rule": "self.image =="}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].rule",
            "compilation failed: ERROR: <input>:1:12: Syntax error",
        ),
        (
            {"spec": [{"rule": "self.image.shout() == 'X'"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].rule",
            "compilation failed: ERROR: <input>:1:12: undeclared reference to 'shout'",
        ),
        (
            {"spec": [{"rule": "self.workers.replica <= 3"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].rule",
            "compilation failed: ERROR: <input>:1:14: undefined field 'replica'",
        ),
        (
            {"": [{"rule": "has(self.metadata.labels)"}]},
            f"{SCHEMA}.x-kubernetes-validations[0].rule",
            "undefined field 'labels'",
        ),
        (
            {"spec.tags.items": [{"rule": "self == oldSelf"}]},
            f"{SCHEMA}.properties[spec].properties[tags].items.x-kubernetes-validations[0].rule",
            (
                "oldSelf cannot be used on the uncorrelatable portion of the schema within "
                f"{SCHEMA}.properties[spec].properties[tags]"
            ),
        ),
        (
            {"spec": [{"rule": "true", "reason": "FieldValueWrong"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].reason",
            (
                'supported values: "FieldValueDuplicate", "FieldValueForbidden", '
                '"FieldValueInvalid", "FieldValueRequired"'
            ),
        ),
        (
            {"spec": [{"rule": "true", "fieldPath": ".workers.nothing"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].fieldPath",
            "fieldPath must be a valid path",
        ),
        (
            {"spec": [{"rule": "true &&\ntrue"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].message",
            "message must be specified if rule contains line breaks",
        ),
        (
            {"spec": [{"rule": "true", "messageExpression": "'a' +"}]},
            f"{SCHEMA}.properties[spec].x-kubernetes-validations[0].messageExpression",
            "messageExpression compilation failed: ERROR: <input>:1:5: Syntax error",
        ),
    ],
)
def test_a_crd_whose_rules_do_not_compile_is_refused(
    fakekube: FakeKube, rules: dict[str, list[dict[str, Any]]], field: str, detail: str
) -> None:
    with pytest.raises(StatusError) as error:
        fakekube.create(cel_crd(rules))
    assert error.value.code == 422
    assert error.value.message.startswith(f"{CRD_INVALID}{field}: ")
    assert detail in error.value.message
    assert (
        fakekube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", "gadgets.example.com")
        is None
    )


def test_rules_of_differing_versions_are_named_by_version(fakekube: FakeKube) -> None:
    crd = copy.deepcopy(same_shape_crd())
    version(crd, "v2")["schema"]["openAPIV3Schema"]["x-kubernetes-validations"] = [
        {"rule": "self.nope"}
    ]
    with pytest.raises(StatusError, match=r"spec\.versions\[1\]\.schema\.openAPIV3Schema\."):
        fakekube.create(crd)


def evaluate(expression: str, **variables: Any) -> Any:
    program = compile_expression(expression)
    return program.evaluate({name: celpy.json_to_cel(v) for name, v in variables.items()})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'Locust-IO'.lowerAscii()", "locust-io"),
        ("'locust'.upperAscii()", "LOCUST"),
        ("'/lotest/src/'.split('/')", ["", "lotest", "src", ""]),
        ("'/lotest/src/'.substring(1, 7)", "lotest"),
        ("'/lotest/src/'.substring(8)", "src/"),
        ("'/a/b/'.indexOf('/', 1)", 2),
        ("'/a/b/'.lastIndexOf('/')", 4),
        ("'a-b-c'.replace('-', '.')", "a.b.c"),
        ("'a-b-c'.replace('-', '.', 1)", "a.b-c"),
        ("'  x '.trim()", "x"),
        ("'abc'.charAt(1)", "b"),
        ("['a', 'b'].join('/')", "a/b"),
        ("[1, 2, 3].isSorted() && ![2, 1].isSorted()", True),
        ("[1, 2, 3].sum() + [4, 9].min() + [4, 9].max()", 19),
        ("[3, 5].indexOf(5)", 1),
        ("self.all(m, !m.startsWith('/lotest/src'))", False),
    ],
)
def test_the_string_and_list_libraries(expression: str, expected: Any) -> None:
    assert evaluate(expression, self=["/etc/x", "/lotest/src/y"]) == expected


def test_library_errors_are_cel_errors() -> None:
    with pytest.raises(celpy.CELEvalError, match="index out of range"):
        evaluate("'abc'.substring(2, 9)")
    assert evaluate("'abc'.substring(2, 9) == 'c' || true") is not None
