"""The static cost estimate of single CEL expressions, against Kubernetes' own figures: where a
case below has a figure for an unbounded and a bounded schema, it is the one the apiextensions
apiserver computes for that rule and schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fakekube import celast
from fakekube.cel import compile_expression
from fakekube.celbudget import PER_EXPRESSION_LIMIT, TotalCost, over_budget
from fakekube.celcost import U64, estimate
from fakekube.celdecl import schema_decl_type
from fakekube.celschema import schema_rule_errors


def cost(rule: str, schema: dict[str, Any], *, resource_root: bool = False) -> int:
    """The worst-case cost of ``rule`` at a schema node (before multiplying by cardinality)."""
    self_type = schema_decl_type(schema, resource_root)
    assert self_type is not None
    return estimate(celast.build(compile_expression(rule).tree), self_type).max


def string(max_length: int | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "string", **more} | ({} if max_length is None else {"maxLength": max_length})


def array(items: dict[str, Any], max_items: int | None = None) -> dict[str, Any]:
    return {"type": "array", "items": items} | (
        {} if max_items is None else {"maxItems": max_items}
    )


def dictionary(values: dict[str, Any], max_properties: int | None = None) -> dict[str, Any]:
    schema = {"type": "object", "additionalProperties": values}
    return schema | ({} if max_properties is None else {"maxProperties": max_properties})


def record(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


NUMBER = {"type": "number"}
ITEM = {
    "type": "object",
    "required": ["required"],
    "properties": {"required": string(), "optional": string()},
}


# (rule, schema at a bound (None: unbounded), the bound, cost unbounded, cost bounded)
KUBERNETES_FIGURES = [
    ("self.contains('test')", string, 10, 314574, 5),
    ("self.startsWith('test')", string, 15, 2, 2),
    ("self.endsWith('test')", string, 30, 2, 2),
    ('size(self + "hello") > size("hello")', string, 4, 314578, 7),
    ('self.matches("x")', string, 50, 314574, 22),
    ("self.lowerAscii() == 'lower!'", string, 10, 314575, 6),
    ('self == "x"', string, 0, 2, 1),
    ("self.all(x, true)", lambda n: array(string(), n), 20, 3145727, 62),
    ("self.all(x, true)", lambda n: array(NUMBER, n), 10, 4718591, 32),
    ("self.all(x, true)", lambda n: array(ITEM, n), 50, 555128, 152),
    ("self.all(x, true)", lambda n: dictionary(NUMBER, n), 10, 1348169, 32),
    ("self.all(x, true)", lambda n: array(string(format="date-time"), n), 25, 428963, 77),
    ("self.all(x, x == 0.0)", lambda n: array(NUMBER, n), 3 * 1024 * 2048, 6291454, 25165826),
    ("self[1] == self[1]", lambda n: array(string(), n), 8, 314577, 314577),
    ("self.all(x, x.contains(self[x]))", lambda n: dictionary(string(n), n), 10, 2752507, 72),
    ("self.join(' ') == 'aa bb'", lambda n: array(string(n), n), 10, 329853068905, 43),
    ("self.isSorted() == true", lambda n: array(string(n), n), 10, 329854432052, 52),
    (
        "self.str.split(self.separator) == []",
        lambda n: record(str=string(n), separator=string(n)),
        10,
        629160,
        22,
    ),
    (
        "self.str.replace(self.before, self.after) == 'does not matter'",
        lambda n: record(str=string(n), before=string(2), after=string(4)),
        4,
        629154,
        12,
    ),
    ("oldSelf.size() == self.size()", lambda n: dictionary({"type": "integer"}, n), 10, 5, 5),
]


@pytest.mark.parametrize(("rule", "schema", "bound", "unbounded", "bounded"), KUBERNETES_FIGURES)
def test_costs_match_kubernetes(
    rule: str,
    schema: Callable[[int | None], dict[str, Any]],
    bound: int,
    unbounded: int,
    bounded: int,
) -> None:
    assert cost(rule, schema(None)) == unbounded
    assert cost(rule, schema(bound)) == bounded


def test_nested_loops_multiply() -> None:
    numbers = array(NUMBER, 10)
    assert cost("self.all(x, self.all(y, true))", numbers) == 352
    assert cost("self.all(x, self.all(y, self.all(z, true)))", numbers) == 3552
    assert cost("self.all(x, self.all(y, true))", array(NUMBER)) > PER_EXPRESSION_LIMIT


def test_exists_and_exists_one_cost_their_expansion() -> None:
    names = array(string(5), 10)
    # Each of the 10 names: the loop condition !accu (3), accu || (1) and x == 'a' (2).
    assert cost("self.exists(x, x == 'a')", names) == 1 + 10 * 6 + 1
    # Each: x == 'a' (2) and accu + 1 (2); after the loop accu == 1 (2).
    assert cost("self.exists_one(x, x == 'a')", names) == 1 + 10 * 4 + 2


def test_presence_tests_are_free() -> None:
    # Only reading self costs: Kubernetes' environment charges nothing for has().
    assert cost("has(self.x)", dictionary(string())) == 1


def test_a_filtered_item_keeps_its_size_but_not_its_fields() -> None:
    names = array(string(5), 10)
    # The filter: 10 (list) + 1 + 10 × (startsWith 2 + keeping the item 13); the item: 20 bytes.
    rule = "size(self.filter(x, x.startsWith('a'))[0] + '!') > 0"
    assert cost(rule, names) == 168
    volumes = array(record(name=string(63)), 64)
    lost = "self.filter(v, v.name != '')[0].name + '!' != ''"
    assert cost(lost, volumes) > U64 // 100  # the item's name counts as unbounded
    kept = "self.map(v, v.name).filter(n, n != '')[0] + '!' != ''"
    assert cost(kept, volumes) < 10_000


def test_a_list_built_in_the_rule_looks_its_items_up_at_the_rules_own_node() -> None:
    # As in cel-go with Kubernetes' size estimates: the item of [self.s] is sized as the object
    # holding the rule, which has no size, so contains() costs nothing here.
    assert cost("[self.s].all(p, p.contains('x'))", record(s=string())) == 17


def test_string_of_an_integer_has_no_size_bound() -> None:
    counted = record(count={"type": "integer"})
    assert cost("'count ' + string(self.count)", counted) > U64 // 100


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (None, 314576),  # 3 MiB against 'x'
        ({"name": string(253), "generateName": string(253)}, 105),
        ({"name": string(253)}, 314576),  # both names must be declared
    ],
)
def test_metadata_name_is_unbounded_unless_declared(
    metadata: dict[str, Any] | None, expected: int
) -> None:
    root: dict[str, Any] = {
        "type": "object",
        "properties": {"apiVersion": string(), "kind": string(), "spec": {"type": "object"}},
    }
    if metadata is not None:
        root["properties"]["metadata"] = {"type": "object", "properties": metadata}
    assert cost("self.metadata.name.contains('x')", root, resource_root=True) == expected


@pytest.mark.parametrize(
    ("estimated", "shown"),
    [
        (120_800_327, "12.1x"),
        (10_067_363, "1.006736x"),
        (1_000_000_000, "100.0x"),
        (1_000_000_001, "more than 100x"),
    ],
)
def test_the_budget_message_shows_the_factor_as_the_apiserver_does(
    estimated: int, shown: str
) -> None:
    assert over_budget("estimated rule cost", estimated, PER_EXPRESSION_LIMIT) == (
        f"estimated rule cost exceeds budget by factor of {shown} (try simplifying the rule, or "
        "adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are "
        "declared)"
    )


def test_the_total_names_the_four_costliest_rules_of_at_least_one_percent() -> None:
    total = TotalCost()
    for index, value in enumerate(
        [999_999, 5_000_000, 2_000_000, 40_000_000, 3_000_000, 1_000_000]
    ):
        total.observe(f"r{index}", value)
    assert total.total == 51_999_999
    assert total.most_expensive == [
        ("r3", 40_000_000),
        ("r1", 5_000_000),
        ("r4", 3_000_000),
        ("r2", 2_000_000),
    ]
    total.observe("big", U64)
    assert total.total == U64  # saturates rather than overflowing


def test_an_unchanged_schema_is_spared_the_per_rule_budget_not_the_total() -> None:
    rule = {"rule": "self.names.all(n, self.owner.contains(n))", "message": "m"}
    schema = record(names=array(string(63), 64), owner=string())
    schema["x-kubernetes-validations"] = [rule]
    fields = [e.field for e in schema_rule_errors(schema, "s")]
    assert fields == ["s.x-kubernetes-validations[0].rule"] * 2 + ["s"]
    spared = [(e.field, e.detail) for e in schema_rule_errors(schema, "s", unchanged=True)]
    assert [field for field, _ in spared] == ["s.x-kubernetes-validations[0].rule", "s"]
    assert spared[0][1].startswith("contributed to")
