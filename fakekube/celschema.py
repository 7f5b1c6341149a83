"""What the apiserver checks of a schema's ``x-kubernetes-validations`` when a CRD is written.

The walk follows ``ValidateCustomResourceDefinitionOpenAPISchema``: a node's children are checked
before its own rules, schema errors (a rule's message, reason, fieldPath) are all listed before
CEL errors (compilation, transition rules, cost), and a node with a schema error at or below it
has no CEL errors reported. Every rule and messageExpression that compiles is estimated (see
``celcost``): one over the per-expression budget is refused (a rule's cost counts once for every
time it may run: the product of maxItems and maxProperties above it, or, under an unbounded list
or map, as often as its value fits in a request), and so is a schema whose rules together exceed
the per-CRD budget. On update, a version whose schema did not change is spared the
per-expression budget, not the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import celast
from .cel import (
    SUPPORTED_REASONS,
    CelCompileError,
    Program,
    check_fields,
    compile_expression,
    normalize_field_path,
)
from .celbudget import PER_EXPRESSION_LIMIT, TotalCost, over_budget, times_cardinality
from .celcost import estimate
from .celdecl import DeclType, escape, max_cardinality, schema_decl_type
from .errors import FieldError
from .schema import Schema


def schema_rule_errors(schema: Schema, path: str, *, unchanged: bool = False) -> list[FieldError]:
    """Every problem with the ``x-kubernetes-validations`` in ``schema``, found at ``path``.

    ``unchanged``: the schema is that of the same version before an update."""
    total = TotalCost()
    context = _Context(schema_decl_type(schema, resource_root=True), 1, True, None)
    found = _Walk(total, suppress_per_expression=unchanged).visit(schema, path, context)
    return [*found.schema, *found.cel, *total.errors(path)]


@dataclass(frozen=True)
class _Context:
    decl: DeclType | None  # the CEL type of the node's values
    cardinality: int | None  # how often the node's value may occur; None: unbounded
    resource_root: bool
    uncorrelatable: str | None  # the path under which oldSelf has nothing to compare with


@dataclass
class _Found:
    schema: list[FieldError]
    cel: list[FieldError]

    def extend(self, other: _Found) -> None:
        self.schema += other.schema
        self.cel += other.cel


def _fan_out(schema: Schema) -> int | None:
    """How many values of a child one value of ``schema`` holds (``extractMaxElements``)."""
    kind = schema.get("type")
    if kind == "object" and "additionalProperties" in schema:
        limit = schema.get("maxProperties")
    elif kind == "array":
        limit = schema.get("maxItems")
    else:
        return 1
    return None if limit is None else max(limit, 0)


class _Walk:
    def __init__(self, total: TotalCost, *, suppress_per_expression: bool):
        self.total = total
        self.suppress = suppress_per_expression

    def visit(self, schema: Schema, path: str, context: _Context) -> _Found:
        found = _Found([], [])
        for child, child_path, correlatable, decl in self._children(schema, path, context):
            embedded = bool(child.get("x-kubernetes-embedded-resource"))
            if decl is None:
                decl = schema_decl_type(child, embedded)
            uncorrelatable = context.uncorrelatable or (None if correlatable else path)
            child_context = _Context(
                decl, self._cardinality(schema, context), embedded, uncorrelatable
            )
            found.extend(self.visit(child, child_path, child_context))
        rules = schema.get("x-kubernetes-validations") or ()
        for index, raw in enumerate(rules):
            found.schema += _rule_schema_errors(raw, schema, _rule_path(path, index))
        if not found.schema:
            for index, raw in enumerate(rules):
                found.cel += self._rule_cel_errors(raw, schema, _rule_path(path, index), context)
        return found

    @staticmethod
    def _children(
        schema: Schema, path: str, context: _Context
    ) -> list[tuple[Schema, str, bool, DeclType | None]]:
        """(schema, path, correlatable, CEL type if the parent's gives it) of each child, in
        the apiserver's order."""
        decl = context.decl
        children: list[tuple[Schema, str, bool, DeclType | None]] = []
        granular = schema.get("x-kubernetes-map-type") != "atomic"
        if isinstance(additional := schema.get("additionalProperties"), dict):
            elem = decl.elem if decl is not None and decl.kind == "map" else None
            children.append((additional, f"{path}.additionalProperties", granular, elem))
        for key, sub in (schema.get("properties") or {}).items():
            cel_name = escape(key)
            field_type = None
            if decl is not None and cel_name is not None:
                field_type = decl.fields.get(cel_name)
            children.append((sub, f"{path}.properties[{key}]", granular, field_type))
        if isinstance(items := schema.get("items"), dict):
            elem = decl.elem if decl is not None and decl.kind == "list" else None
            map_list = schema.get("x-kubernetes-list-type") == "map"
            children.append((items, f"{path}.items", map_list, elem))
        return children

    @staticmethod
    def _cardinality(schema: Schema, context: _Context) -> int | None:
        fan_out = _fan_out(schema)
        if context.cardinality is None or fan_out is None:
            return None
        return times_cardinality(context.cardinality, fan_out)

    def _rule_cel_errors(
        self, raw: dict[str, Any], schema: Schema, path: str, context: _Context
    ) -> list[FieldError]:
        errors: list[FieldError] = []
        try:
            program = compile_expression(raw["rule"])
            check_fields(program, schema, context.resource_root)
        except CelCompileError as error:
            return [FieldError.invalid(f"{path}.rule", raw, f"compilation failed: {error}")]
        cost = self._cost(program, context)
        runs = context.cardinality
        if runs is None:
            runs = max_cardinality(context.decl.min_size) if context.decl is not None else 1
        rule_cost = times_cardinality(cost, runs)
        if not self.suppress and rule_cost > PER_EXPRESSION_LIMIT:
            detail = over_budget("estimated rule cost", rule_cost, PER_EXPRESSION_LIMIT)
            errors.append(FieldError.forbidden(f"{path}.rule", detail))
        self.total.observe(f"{path}.rule", rule_cost)
        if raw.get("messageExpression"):
            errors += self._message_expression_errors(raw, schema, path, context)
        if context.uncorrelatable is not None and program.uses_old_self:
            errors.append(
                FieldError.invalid(
                    f"{path}.rule",
                    raw["rule"],
                    f"oldSelf cannot be used on the uncorrelatable portion of the schema within "
                    f"{context.uncorrelatable}",
                )
            )
        elif raw.get("optionalOldSelf") is not None:
            if not program.uses_old_self:
                errors.append(
                    FieldError.invalid(
                        f"{path}.optionalOldSelf",
                        raw["optionalOldSelf"],
                        "may not be set if oldSelf is not used in rule",
                    )
                )
            else:
                # CEL optionals (oldSelf.hasValue()) are beyond celpy: say so rather than misjudge.
                errors.append(
                    FieldError.forbidden(
                        f"{path}.optionalOldSelf", "fakekube does not support optionalOldSelf"
                    )
                )
        return errors

    def _message_expression_errors(
        self, raw: dict[str, Any], schema: Schema, path: str, context: _Context
    ) -> list[FieldError]:
        try:
            program = compile_expression(raw["messageExpression"])
            check_fields(program, schema, context.resource_root)
        except CelCompileError as error:
            return [
                FieldError.invalid(
                    f"{path}.messageExpression",
                    raw,
                    f"messageExpression compilation failed: {error}",
                )
            ]
        # A message is built once per failure of its rule: its cost is not multiplied.
        cost = self._cost(program, context)
        errors = []
        if not self.suppress and cost > PER_EXPRESSION_LIMIT:
            detail = over_budget("estimated messageExpression cost", cost, PER_EXPRESSION_LIMIT)
            errors.append(FieldError.forbidden(f"{path}.messageExpression", detail))
        self.total.observe(f"{path}.messageExpression", cost)
        return errors

    @staticmethod
    def _cost(program: Program, context: _Context) -> int:
        if context.decl is None:
            return 0  # rules cannot see this node's values; nothing to estimate
        return estimate(celast.build(program.tree), context.decl).max


def _rule_path(path: str, index: int) -> str:
    return f"{path}.x-kubernetes-validations[{index}]"


def _rule_schema_errors(raw: dict[str, Any], schema: Schema, path: str) -> list[FieldError]:
    rule = (raw.get("rule") or "").strip()
    message = raw.get("message") or ""
    errors: list[FieldError] = []
    if not rule:
        errors.append(FieldError.required(f"{path}.rule", "rule is not specified"))
    elif message and not message.strip():
        errors.append(
            FieldError.invalid(
                f"{path}.message", message, "message must be non-empty if specified"
            )
        )
    elif "\n" in message.strip() or "\r" in message.strip():
        errors.append(
            FieldError.invalid(f"{path}.message", message, "message must not contain line breaks")
        )
    elif ("\n" in rule or "\r" in rule) and not message.strip():
        errors.append(
            FieldError.required(
                f"{path}.message", "message must be specified if rule contains line breaks"
            )
        )
    expression = raw.get("messageExpression")
    if expression is not None and expression != "" and not expression.strip():
        errors.append(
            FieldError.required(
                f"{path}.messageExpression", "messageExpression must be non-empty if specified"
            )
        )
    if raw.get("reason") is not None and raw["reason"] not in SUPPORTED_REASONS:
        errors.append(
            FieldError.not_supported(f"{path}.reason", raw["reason"], list(SUPPORTED_REASONS))
        )
    if raw.get("fieldPath") and normalize_field_path(raw["fieldPath"], schema) is None:
        errors.append(
            FieldError.invalid(
                f"{path}.fieldPath", raw["fieldPath"], "fieldPath must be a valid path"
            )
        )
    return errors
