"""``x-kubernetes-validations``: CEL rules in CRD schemas, checked as the apiextensions apiserver
checks them.

Rules are compiled with cel-python (``celpy``, a CEL implementation in Python) when a CRD is
written, so a rule that does not compile fails the CRD write with 422 (``celschema`` holds those
checks, the cost budget among them); the compiled programs are cached by their source text and
reused for every custom resource write. Behaviour follows Kubernetes 1.33:

* ``self`` is the value at the rule's schema node; a rule runs only where that value is present and
  not null. At a resource root ``self`` holds apiVersion, kind, spec, status and, of the metadata,
  only ``name`` and ``generateName``.
* Rules that use ``oldSelf`` (transition rules) run on updates only, where the old value
  correlates: through object properties (unless ``x-kubernetes-map-type: atomic``) and map-type
  lists (by their keys). Using ``oldSelf`` anywhere else fails the CRD write.
* Ratcheting: on update, a rule without ``oldSelf`` is not evaluated on a value that is unchanged.
* A failure reads ``<field>: Invalid value: "<schema type>": <message>`` (root rules name the field
  ``<nil>``), where the message is ``messageExpression``'s result, else ``message``, else
  ``failed rule: <rule>``; ``reason`` and ``fieldPath`` shape the error as documented.
* When the object already fails schema type checks, rules do not run (one error says so).

cel-python parses but does not type-check, so at CRD write time this module checks what cel-go's
checker would most often reject: unknown functions and variables, and ``self``/``oldSelf`` field
chains that name fields the schema does not declare.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any

import celpy
import lark
from celpy import celtypes

from .errors import FieldError
from .schema import Schema

ROOT_FIELD = "<nil>"  # how apimachinery prints the empty field path of a root-level rule
SUPPORTED_REASONS = (
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
)
_NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; correct the existing "
    "errors to complete validation"
)
_RESOURCE_META = ("name", "generateName")
_MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
_COMPREHENSIONS = _MACROS - {"has"}
_TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type", "uint"}
)
_VARIABLES = frozenset({"self", "oldSelf"})


# Kubernetes' CEL libraries beyond the standard ones celpy provides: the strings extension and the
# Kubernetes list functions. Each returns a CELEvalError instead of raising, as celpy expects.


def _library(function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except (IndexError, ValueError, TypeError) as error:
            return celpy.CELEvalError(str(error), error.__class__, error.args)

    return call


def _index_of(target: Any, item: Any, start: int = 0) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.find(item, start))
    return celtypes.IntType(list(target).index(item) if item in target else -1)


def _last_index_of(target: Any, item: Any) -> celtypes.IntType:
    if isinstance(target, str):
        return celtypes.IntType(target.rfind(item))
    items = list(target)
    return celtypes.IntType(len(items) - 1 - items[::-1].index(item) if item in items else -1)


def _substring(text: str, start: int, end: int | None = None) -> celtypes.StringType:
    end = len(text) if end is None else end
    if not 0 <= start <= end <= len(text):
        raise IndexError(f"index out of range: {end if end > len(text) else start}")
    return celtypes.StringType(text[start:end])


def _split(text: str, separator: str, limit: int = -1) -> celtypes.ListType:
    if limit == 0:
        return celtypes.ListType([])
    parts = text.split(separator, limit - 1) if limit > 0 else text.split(separator)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _replace(text: str, old: str, new: str, limit: int = -1) -> celtypes.StringType:
    return celtypes.StringType(text.replace(old, new, limit))


def _ascii(convert: Callable[[str], str]) -> Callable[[str], celtypes.StringType]:
    return lambda text: celtypes.StringType(
        "".join(convert(c) if c.isascii() else c for c in text)
    )


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: _library(function)
    for name, function in {
        "charAt": lambda text, i: celtypes.StringType(text[i : i + 1] if i != len(text) else ""),
        "indexOf": _index_of,
        "lastIndexOf": _last_index_of,
        "lowerAscii": _ascii(str.lower),
        "upperAscii": _ascii(str.upper),
        "replace": _replace,
        "split": _split,
        "substring": _substring,
        "trim": lambda text: celtypes.StringType(text.strip()),
        "join": lambda items, sep="": celtypes.StringType(sep.join(items)),
        "isSorted": lambda items: celtypes.BoolType(list(items) == sorted(items)),
        "sum": lambda items: sum(items, celtypes.IntType(0)),
        "min": lambda items: min(items),
        "max": lambda items: max(items),
        "dyn": lambda value: value,
    }.items()
}
_KNOWN_FUNCTIONS = frozenset(_FUNCTIONS) | frozenset(celpy.base_functions) | _MACROS


@lru_cache(maxsize=1)
def _environment() -> celpy.Environment:
    # Built on first use: its parser takes a noticeable fraction of a second to set up.
    return celpy.Environment()


class CelCompileError(Exception):
    """A rule cel-go would refuse to compile; ``str()`` reads like cel-go's ``ERROR:`` lines."""


@dataclass(frozen=True)
class Program:
    """One compiled CEL expression."""

    source: str
    tree: lark.Tree
    runner: celpy.Runner
    uses_old_self: bool

    def evaluate(self, activation: dict[str, Any]) -> Any:
        return self.runner.evaluate(activation)


def _error_line(source: str, line: int, column: int, text: str) -> str:
    lines = source.splitlines() or [""]
    pointer = "." * (column - 1) + "^"
    return f"ERROR: <input>:{line}:{column}: {text}\n | {lines[line - 1]}\n | {pointer}"


@lru_cache(maxsize=2048)
def compile_expression(source: str) -> Program:
    """Parse and check ``source`` once; raises CelCompileError."""
    environment = _environment()
    try:
        tree = environment.compile(source)
    except celpy.CELParseError as error:
        raise CelCompileError(
            _error_line(
                source, error.line or 1, error.column or 1, "Syntax error: unexpected input"
            )
        ) from None
    variables = _check_references(source, tree)
    runner = environment.program(tree, functions=_FUNCTIONS)
    return Program(source, tree, runner, "oldSelf" in variables)


def _check_references(source: str, tree: lark.Tree) -> set[str]:
    """Reject undeclared functions and variables, as cel-go's checker does; return the variables."""
    bound = {
        _bound_variable(call.children[2])
        for call in tree.find_data("member_dot_arg")
        if str(call.children[1]) in _COMPREHENSIONS and len(call.children) > 2
    }
    used: set[str] = set()
    for node in tree.iter_subtrees():
        if node.data in ("ident_arg", "member_dot_arg"):
            name = node.children[0] if node.data == "ident_arg" else node.children[1]
            if str(name) not in _KNOWN_FUNCTIONS:
                raise CelCompileError(_undeclared(source, name))
        elif node.data == "ident":
            name = node.children[0]
            if str(name) not in _VARIABLES | _TYPE_NAMES | bound:
                raise CelCompileError(_undeclared(source, name))
            used.add(str(name))
    return used


def _bound_variable(exprlist: Any) -> str | None:
    """The variable a comprehension macro binds: its first argument, a bare identifier."""
    if not isinstance(exprlist, lark.Tree) or not exprlist.children:
        return None
    variable = next(exprlist.children[0].find_data("ident"), None)
    return str(variable.children[0]) if variable is not None else None


def _undeclared(source: str, token: Any) -> str:
    return _error_line(
        source,
        getattr(token, "line", 1),
        getattr(token, "column", 1),
        f"undeclared reference to '{token}' (in container '')",
    )


def _field_chains(tree: lark.Tree) -> Iterator[list[Any]]:
    """The field name tokens of every ``self.a.b`` and ``oldSelf.a.b`` chain, in order."""
    for node in tree.find_data("member_dot"):
        names: list[Any] = []
        current: Any = node
        while isinstance(current, lark.Tree) and current.data in ("member", "member_dot"):
            if current.data == "member_dot":
                names.append(current.children[1])
            current = current.children[0]
        if isinstance(current, lark.Tree) and current.data == "primary":
            head = current.children[0]
            is_variable = isinstance(head, lark.Tree) and head.data == "ident"
            if is_variable and str(head.children[0]) in _VARIABLES:
                yield names[::-1]


def _undefined_field(schema: Schema, names: list[Any], resource_root: bool) -> Any | None:
    """The first name in a field chain the schema does not declare, if any."""
    node: Schema | None = schema
    at_resource_root = resource_root
    for name in names:
        if node is None or node.get("x-kubernetes-preserve-unknown-fields"):
            return None
        properties = node.get("properties") or {}
        if at_resource_root and str(name) in ("apiVersion", "kind", "metadata"):
            if str(name) != "metadata":
                node = {"type": "string"}
            else:
                node = {"type": "object", "properties": {k: {} for k in _RESOURCE_META}}
        elif str(name) in properties:
            node = properties[str(name)]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return name
        at_resource_root = bool(node.get("x-kubernetes-embedded-resource"))
    return None


def check_fields(program: Program, schema: Schema, resource_root: bool) -> None:
    for names in _field_chains(program.tree):
        missing = _undefined_field(schema, names, resource_root)
        if missing is not None:
            raise CelCompileError(
                _error_line(
                    program.source,
                    missing.line,
                    missing.column,
                    f"undefined field '{missing}'",
                )
            )


# Compiled rules and the validator tree.


@dataclass(frozen=True)
class CompiledRule:
    rule: Program
    message: str
    message_expression: Program | None
    reason: str | None
    field_path: str  # relative to the rule's node, in field-error form ("" when unset)

    @property
    def error_string(self) -> str:
        """``ruleErrorString``: the message when there is one, else the rule."""
        return self.message or self.rule.source.strip()

    @property
    def default_message(self) -> str:
        return self.message or f"failed rule: {self.rule.source.strip()}"


def _compile_rule(raw: dict[str, Any], schema: Schema, resource_root: bool) -> CompiledRule:
    rule = compile_expression(raw["rule"])
    check_fields(rule, schema, resource_root)
    message_expression = None
    if raw.get("messageExpression"):
        message_expression = compile_expression(raw["messageExpression"])
        check_fields(message_expression, schema, resource_root)
    field_path = normalize_field_path(raw["fieldPath"], schema) if raw.get("fieldPath") else ""
    return CompiledRule(
        rule,
        (raw.get("message") or "").strip(),
        message_expression,
        raw.get("reason"),
        field_path or "",  # a valid path: the CRD write checked it
    )


def normalize_field_path(json_path: str, schema: Schema) -> str | None:
    """A rule's ``fieldPath`` (``.a.b``, ``['a']``) as a relative field path; None if invalid."""
    tokens = re.findall(r"\.([^.\[\]]+)|\[('(?:[^'\\]|\\.)*')\]|(.)", json_path.strip())
    parts: list[str] = []
    node: Schema | None = schema
    for name, quoted, junk in tokens:
        if junk or node is None:
            return None
        key = name or quoted[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        properties = node.get("properties")
        if properties is not None:
            if key not in properties:
                return None
            parts.append(f".{key}" if parts else key)
            node = properties[key]
        elif isinstance(node.get("additionalProperties"), dict):
            parts.append(f"[{key}]")
            node = node["additionalProperties"]
        else:
            return None
    return "".join(parts)


@dataclass
class _Node:
    """The rules of one schema node, and the nodes below it that hold rules."""

    type: str
    rules: tuple[CompiledRule, ...] = ()
    resource_root: bool = False
    properties: dict[str, _Node] = field(default_factory=dict)
    additional: _Node | None = None
    items: _Node | None = None
    map_correlatable: bool = True  # object children correlate unless x-kubernetes-map-type: atomic
    list_keys: tuple[str, ...] = ()  # a map-type list correlates its items by these keys


def _build(schema: Schema, resource_root: bool) -> _Node | None:
    properties = {
        key: child
        for key, sub in (schema.get("properties") or {}).items()
        if (child := _build(sub, bool(sub.get("x-kubernetes-embedded-resource")))) is not None
    }
    additional_schema = schema.get("additionalProperties")
    additional = (
        _build(additional_schema, bool(additional_schema.get("x-kubernetes-embedded-resource")))
        if isinstance(additional_schema, dict)
        else None
    )
    items_schema = schema.get("items")
    items = (
        _build(items_schema, bool(items_schema.get("x-kubernetes-embedded-resource")))
        if isinstance(items_schema, dict)
        else None
    )
    rules = tuple(
        _compile_rule(raw, schema, resource_root)
        for raw in schema.get("x-kubernetes-validations") or ()
    )
    if not (rules or properties or additional or items):
        return None
    is_map_list = schema.get("x-kubernetes-list-type") == "map"
    return _Node(
        type=schema.get("type", ""),
        rules=rules,
        resource_root=resource_root,
        properties=properties,
        additional=additional,
        items=items,
        map_correlatable=schema.get("x-kubernetes-map-type") != "atomic",
        list_keys=tuple(schema.get("x-kubernetes-list-map-keys") or ()) if is_map_list else (),
    )


class CelValidator:
    """Evaluates every rule of one version's schema against objects of that version."""

    def __init__(self, root: _Node):
        self._root = root

    @classmethod
    def for_schema(cls, schema: Schema) -> CelValidator | None:
        """None when the schema holds no rules. Assumes ``schema_errors`` found nothing."""
        root = _build(schema, resource_root=True)
        return cls(root) if root is not None else None

    def validate(
        self,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        schema_errors: list[FieldError],
    ) -> list[FieldError]:
        if any(error.type == "FieldValueTypeInvalid" for error in schema_errors):
            return [FieldError.invalid(ROOT_FIELD, None, _NOT_CHECKED)]
        errors: list[FieldError] = []
        _Walk(errors).visit(self._root, "", obj, old, old is not None, unchanged=False)
        return errors


@dataclass
class _Walk:
    errors: list[FieldError]

    def visit(
        self, node: _Node, path: str, value: Any, old: Any, has_old: bool, *, unchanged: bool
    ) -> None:
        if value is None:
            return
        # A correlated value ratchets on its own equality; an uncorrelated one inherits its
        # nearest correlated ancestor's (an unchanged parent means unchanged children).
        unchanged = (old == value) if has_old else unchanged
        if node.rules:
            self._evaluate(node, path, value, old if has_old else None, unchanged)
        if isinstance(value, dict):
            self._visit_object(node, path, value, old if has_old else None, unchanged)
        elif isinstance(value, list) and node.items is not None:
            self._visit_list(node, path, value, old if has_old else None, unchanged)

    def _visit_object(
        self, node: _Node, path: str, value: dict[str, Any], old: Any, unchanged: bool
    ) -> None:
        old_map = old if isinstance(old, dict) and node.map_correlatable else None
        for key, item in value.items():
            child = node.properties.get(key) if node.properties else node.additional
            if child is None:
                continue
            child_path = (
                (f"{path}.{key}" if path else key) if node.properties else f"{path}[{key}]"
            )
            correlated = old_map is not None and key in old_map
            previous = old_map[key] if old_map is not None and correlated else None
            self.visit(child, child_path, item, previous, correlated, unchanged=unchanged)

    def _visit_list(
        self, node: _Node, path: str, value: list[Any], old: Any, unchanged: bool
    ) -> None:
        assert node.items is not None
        old_items: dict[tuple[Any, ...], Any] = {}
        if node.list_keys and isinstance(old, list):
            old_items = {
                tuple(item.get(k) for k in node.list_keys): item
                for item in old
                if isinstance(item, dict)
            }
        for index, item in enumerate(value):
            key = (
                tuple(item.get(k) for k in node.list_keys)
                if node.list_keys and isinstance(item, dict)
                else None
            )
            previous = old_items.get(key) if key is not None else None
            correlated = key is not None and key in old_items
            self.visit(
                node.items, f"{path}[{index}]", item, previous, correlated, unchanged=unchanged
            )

    def _evaluate(self, node: _Node, path: str, value: Any, old: Any, unchanged: bool) -> None:
        activation = {"self": _to_cel(value, node.resource_root)}
        if old is not None:
            activation["oldSelf"] = _to_cel(old, node.resource_root)
        for rule in node.rules:
            if rule.rule.uses_old_self and old is None:
                continue  # transition rules need a value to compare with
            if unchanged and not rule.rule.uses_old_self:
                continue  # ratcheting: an unchanged value keeps passing
            try:
                result = rule.rule.evaluate(activation)
            except celpy.CELEvalError as error:
                self.errors.append(
                    FieldError.invalid(
                        path or ROOT_FIELD, node.type, _runtime_error(error, rule.error_string)
                    )
                )
                continue
            if not isinstance(result, (bool, celtypes.BoolType)):
                # cel-go's checker refuses such a rule at CRD write; celpy cannot know beforehand.
                self.errors.append(
                    FieldError.invalid(
                        path or ROOT_FIELD,
                        node.type,
                        "rule compile error: cel expression must evaluate to a bool",
                    )
                )
            elif not result:
                self.errors.append(self._failure(node, path, rule, activation))

    @staticmethod
    def _failure(
        node: _Node, path: str, rule: CompiledRule, activation: dict[str, Any]
    ) -> FieldError:
        detail = _message(rule, activation)
        if rule.field_path:
            separator = "" if rule.field_path.startswith("[") or not path else "."
            path = f"{path}{separator}{rule.field_path}"
        where = path or ROOT_FIELD
        if rule.reason == "FieldValueForbidden":
            return FieldError.forbidden(where, detail)
        if rule.reason == "FieldValueRequired":
            return FieldError.required(where, detail)
        if rule.reason == "FieldValueDuplicate":
            return FieldError("FieldValueDuplicate", where, node.type)
        return FieldError.invalid(where, node.type, detail)


def _message(rule: CompiledRule, activation: dict[str, Any]) -> str:
    """``messageExpression``'s result when it gives a usable one-line string, else the message."""
    if rule.message_expression is not None:
        try:
            text = rule.message_expression.evaluate(activation)
        except celpy.CELEvalError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip():
            return text.strip()
    return rule.default_message


def _to_cel(value: Any, resource_root: bool) -> Any:
    if resource_root and isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        metadata = value["metadata"]
        value = {**value, "metadata": {k: metadata[k] for k in _RESOURCE_META if k in metadata}}
    return celpy.json_to_cel(value)


def _runtime_error(error: celpy.CELEvalError, rule: str) -> str:
    """Runtime failures worded as cel-go words them, with the apiserver's suffix."""
    message, kind = error.args[0], error.args[1] if len(error.args) > 1 else None
    if kind is TypeError and "overload" in str(message):
        return (
            "'no such overload': call arguments did not match a supported operator, function or "
            f"macro signature for rule: {rule}"
        )
    if kind is KeyError:
        quoted = re.search(r"'(.*)'", str(message))
        arguments = error.args[2] if len(error.args) > 2 else None
        key = quoted.group(1) if quoted else (arguments[0] if arguments else "")
        message = f"no such key: {key}"
    elif kind is ZeroDivisionError:
        message = "division by zero"
    return f"{message} evaluating rule: {rule}"
