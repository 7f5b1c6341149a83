"""The apiserver's CEL cost budget: a CRD whose rules could cost too much is refused when written,
with the apiserver's messages and field paths; the project's own CRD fits in it."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from fakekube import FakeKube
from reconciler.crds import ConversionWebhook, crd_manifest

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
INVALID = 'CustomResourceDefinition.apiextensions.k8s.io "budgets.example.com" is invalid: '
SCHEMA = "spec.validation.openAPIV3Schema"
SPEC_RULE = f"{SCHEMA}.properties[spec].x-kubernetes-validations[0]"
HINT = (
    " (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, "
    "maps, and strings are declared)"
)
TOTAL = (
    f"{SCHEMA}: Forbidden: x-kubernetes-validations estimated rule cost total for entire "
    "OpenAPIv3 schema exceeds budget by factor of "
)
CONTRIBUTED = (
    "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire "
    "OpenAPIv3 schema"
)


def budget_crd(spec: dict[str, Any], **root: Any) -> dict[str, Any]:
    """A one-version CRD whose ``spec`` has the given schema."""
    schema = {"type": "object", "properties": {"spec": {"type": "object", **spec}}, **root}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "budgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Budget", "plural": "budgets"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def names(max_items: int | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "array", "items": {"type": "string", "maxLength": 63}}
    if max_items is not None:
        schema["maxItems"] = max_items
    return schema


def owner_rule(max_items: int | None) -> dict[str, Any]:
    """Each name compared with an unbounded string: 314605 per name."""
    return {
        "properties": {"names": names(max_items), "owner": {"type": "string"}},
        "x-kubernetes-validations": [
            {"rule": "self.names.all(n, n != self.owner + '-x')", "message": "taken"}
        ],
    }


def refused(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    status = response.json()
    assert status["reason"] == "Invalid"
    return status["message"]


@pytest.mark.parametrize("webhook", [False, True], ids=["plain", "conversion webhook"])
def test_every_crd_the_project_prints_is_installed(
    http: httpx.Client, fakekube: FakeKube, webhook: bool
) -> None:
    conversion = ConversionWebhook("locust-operator", "ops", 443, b"PEM") if webhook else None
    response = http.post(CRDS, json=crd_manifest(conversion))
    assert response.status_code == 201, response.text
    crd = fakekube.get(
        "apiextensions.k8s.io/v1", "CustomResourceDefinition", "locusttests.locust.io"
    )
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}


def test_a_rule_over_the_per_rule_budget_is_refused(http: httpx.Client) -> None:
    # 64 names at 314605 each (the unbounded owner counts as 3 MiB): about twice the budget.
    message = refused(http.post(CRDS, json=budget_crd(owner_rule(64))))
    assert message == (
        f"{INVALID}{SPEC_RULE}.rule: Forbidden: estimated rule cost exceeds budget by factor "
        f"of 2.0x{HINT}"
    )
    assert http.get(f"{CRDS}/budgets.example.com").status_code == 404


def test_a_factor_under_one_and_a_half_is_shown_in_full(http: httpx.Client) -> None:
    message = refused(http.post(CRDS, json=budget_crd(owner_rule(32))))
    assert message == (
        f"{INVALID}{SPEC_RULE}.rule: Forbidden: estimated rule cost exceeds budget by factor "
        f"of 1.006736x{HINT}"
    )


def test_bounding_what_the_rule_reads_brings_it_within_budget(http: httpx.Client) -> None:
    bounded = owner_rule(64)
    bounded["properties"]["owner"]["maxLength"] = 253
    assert http.post(CRDS, json=budget_crd(bounded)).status_code == 201


def test_a_rule_under_an_unbounded_list_counts_once_for_every_item_that_fits(
    http: httpx.Client,
) -> None:
    tags = {
        "type": "array",
        "items": {"type": "string", "x-kubernetes-validations": [{"rule": "!self.contains('/')"}]},
    }
    message = refused(http.post(CRDS, json=budget_crd({"properties": {"tags": tags}})))
    rule = f"{SCHEMA}.properties[spec].properties[tags].items.x-kubernetes-validations[0].rule"
    assert message == (
        f"{INVALID}["
        f"{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x{HINT}, "
        f"{rule}: {CONTRIBUTED}, "
        f"{TOTAL}more than 100x{HINT}]"
    )
    tags["maxItems"] = 10
    tags["items"]["maxLength"] = 64
    assert http.post(CRDS, json=budget_crd({"properties": {"tags": tags}})).status_code == 201


def test_a_message_expression_is_estimated_too(http: httpx.Client) -> None:
    # string(int) has no size bound, so the message could be any length.
    spec = {
        "properties": {"count": {"type": "integer"}},
        "x-kubernetes-validations": [
            {"rule": "self.count < 10", "messageExpression": "'count ' + string(self.count)"}
        ],
    }
    message = refused(http.post(CRDS, json=budget_crd(spec)))
    field = f"{SPEC_RULE}.messageExpression"
    assert message == (
        f"{INVALID}["
        f"{field}: Forbidden: estimated messageExpression cost exceeds budget by factor of more "
        f"than 100x{HINT}, "
        f"{field}: {CONTRIBUTED}, "
        f"{TOTAL}more than 100x{HINT}]"
    )


def test_rules_each_within_budget_may_still_exceed_the_crds(http: httpx.Client) -> None:
    # Eleven rules of about 9.5 million each; the four costliest are named.
    properties = {
        f"p{i}": {
            "type": "array",
            "maxItems": 4750 - i,
            "items": {
                "type": "string",
                "maxLength": 5000,
                "x-kubernetes-validations": [{"rule": "self.contains('keyword')"}],
            },
        }
        for i in range(11)
    }
    response = http.post(CRDS, json=budget_crd({"properties": properties}))
    message = refused(response)
    named = [
        f"{SCHEMA}.properties[spec].properties[p{i}].items.x-kubernetes-validations[0].rule"
        for i in range(4)
    ]
    assert message == (
        f"{INVALID}[{', '.join(f'{path}: {CONTRIBUTED}' for path in named)}, "
        f"{TOTAL}1.044422x{HINT}]"
    )
    causes = response.json()["details"]["causes"]
    assert [c["field"] for c in causes] == [*named, SCHEMA]
    assert {c["reason"] for c in causes} == {"FieldValueForbidden"}


def test_an_update_is_held_to_the_budget(http: httpx.Client) -> None:
    crd = budget_crd(owner_rule(8))
    assert http.post(CRDS, json=crd).status_code == 201
    current = http.get(f"{CRDS}/budgets.example.com").json()
    current["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = {
        "type": "object",
        **owner_rule(64),
    }
    message = refused(http.put(f"{CRDS}/budgets.example.com", json=current))
    assert message.endswith(
        f"{SPEC_RULE}.rule: Forbidden: estimated rule cost exceeds budget by factor of 2.0x{HINT}"
    )


# metadata: only name and generateName, whose bounds the rules then see.


NAME_RULE = {"rule": "self.spec.names.all(n, self.metadata.name.contains(n))", "message": "m"}
NAME_RULE_REFUSED = (
    f"{INVALID}["
    f"{SCHEMA}.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget "
    f"by factor of 52.3x{HINT}, "
    f"{SCHEMA}.x-kubernetes-validations[0].rule: {CONTRIBUTED}, "
    f"{TOTAL}5.2x{HINT}]"
)


def name_rule_crd(metadata: dict[str, Any] | None) -> dict[str, Any]:
    crd = budget_crd(
        {"properties": {"names": names(64)}}, **{"x-kubernetes-validations": [NAME_RULE]}
    )
    if metadata is not None:
        # Rules see the schema's metadata only where apiVersion and kind are declared too.
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"] |= {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": metadata,
        }
    return crd


def test_an_undeclared_name_counts_as_unbounded_a_declared_one_does_not(
    http: httpx.Client,
) -> None:
    # contains() costs the product of both lengths: 3 MiB against each of 64 names...
    assert refused(http.post(CRDS, json=name_rule_crd(None))) == NAME_RULE_REFUSED
    # ...but a 253-character name fits, once metadata declares both names with a maxLength.
    bounded = {"type": "string", "maxLength": 253}
    metadata = {"type": "object", "properties": {"name": bounded, "generateName": bounded}}
    assert http.post(CRDS, json=name_rule_crd(metadata)).status_code == 201


def test_declaring_the_name_alone_leaves_it_unbounded(http: httpx.Client) -> None:
    metadata = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 253}}}
    assert refused(http.post(CRDS, json=name_rule_crd(metadata))) == NAME_RULE_REFUSED


def test_a_declared_name_bound_applies_to_the_custom_resources(
    http: httpx.Client, fakekube: FakeKube
) -> None:
    short = {"type": "string", "maxLength": 8}
    metadata = {"type": "object", "properties": {"name": short, "generateName": short}}
    fakekube.create(budget_crd({}, properties={"spec": {"type": "object"}, "metadata": metadata}))
    budget = {"apiVersion": "example.com/v1", "kind": "Budget", "spec": {}}
    path = "/apis/example.com/v1/namespaces/default/budgets"
    response = http.post(path, json=budget | {"metadata": {"name": "ninechars"}})
    assert response.status_code == 422
    assert response.json()["message"] == (
        'Budget.example.com "ninechars" is invalid: metadata.name: Too long: may not be more '
        "than 8 bytes"
    )
    assert http.post(path, json=budget | {"metadata": {"name": "eight-ch"}}).status_code == 201


ONLY_NAMES = (
    f"{SCHEMA}.properties[metadata]: Forbidden: must not specify anything other than name and "
    "generateName, but metadata is implicitly specified"
)


@pytest.mark.parametrize(
    ("metadata", "error"),
    [
        (
            {"type": "object", "description": "The object's metadata."},
            ONLY_NAMES,
        ),
        (
            {"type": "object", "properties": {"labels": {"type": "object"}}},
            ONLY_NAMES,
        ),
        (
            {"type": "string"},
            f'{SCHEMA}.properties[metadata].type: Invalid value: "string": must be object',
        ),
    ],
)
def test_metadata_may_only_restrict_the_name_and_generate_name(
    http: httpx.Client, metadata: dict[str, Any], error: str
) -> None:
    # The rule would not compile; as in the apiserver, a structural error leaves rules unchecked.
    crd = budget_crd({}, **{"x-kubernetes-validations": [{"rule": "self.nope"}]})
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["metadata"] = metadata
    assert refused(http.post(CRDS, json=crd)) == f"{INVALID}{error}"


def test_kind_and_api_version_may_only_be_strings(http: httpx.Client) -> None:
    crd = budget_crd({})
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["kind"] = {
        "type": "integer"
    }
    assert refused(http.post(CRDS, json=crd)) == (
        f'{INVALID}{SCHEMA}.properties[kind].type: Invalid value: "integer": must be string'
    )
