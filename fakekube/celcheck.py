"""Types and overloads of a CEL expression, as far as cost estimation needs them.

cel-go's cost estimator reads what its type checker found: the type of every subexpression and,
for every call, the overloads it may resolve to (several when an argument is ``dyn``; the
estimate then covers all of them). This checker finds the same for the functions the fake's CEL
environment offers: the standard library, Kubernetes' strings extension and list library. Calls
it does not know resolve to ``unknown`` with a ``dyn`` result; the fake refuses such rules when
it compiles them, before estimating them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import celast as ast
from .celdecl import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    DeclType,
    list_of,
    map_of,
)

_NUMERIC = ("int", "uint", "double")
_ORDERED = (*_NUMERIC, "bool", "string", "bytes", "timestamp", "duration")
_TIME_GETTERS = (
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMilliseconds",
    "getMinutes",
    "getMonth",
    "getSeconds",
)


def _signatures() -> str:
    """The overloads, one a line: ``[receiver.]name(params) result id``."""
    lines = [
        "_+_(int, int) int add_int64",
        "_+_(uint, uint) uint add_uint64",
        "_+_(double, double) double add_double",
        "_+_(string, string) string add_string",
        "_+_(bytes, bytes) bytes add_bytes",
        "_+_(list(A), list(A)) list(A) add_list",
        "_+_(timestamp, duration) timestamp add_timestamp_duration",
        "_+_(duration, timestamp) timestamp add_duration_timestamp",
        "_+_(duration, duration) duration add_duration_duration",
        "_-_(timestamp, timestamp) duration subtract_timestamp_timestamp",
        "_-_(timestamp, duration) timestamp subtract_timestamp_duration",
        "_-_(duration, duration) duration subtract_duration_duration",
        "-_(int) int negate_int64",
        "-_(double) double negate_double",
        "_%_(int, int) int modulo_int64",
        "_%_(uint, uint) uint modulo_uint64",
        "!_(bool) bool logical_not",
        "@not_strictly_false(bool) bool not_strictly_false",
        "_&&_(bool, bool) bool logical_and",
        "_||_(bool, bool) bool logical_or",
        "_?_:_(bool, A, A) A conditional",
        "_==_(A, A) bool equals",
        "_!=_(A, A) bool not_equals",
        "@in(A, list(A)) bool in_list",
        "@in(A, map(A, B)) bool in_map",
        "_[_](list(A), int) A index_list",
        "_[_](map(A, B), A) B index_map",
        "size(string) int size_string",
        "size(bytes) int size_bytes",
        "size(list(A)) int size_list",
        "size(map(A, B)) int size_map",
        "string.size() int string_size",
        "bytes.size() int bytes_size",
        "list(A).size() int list_size",
        "map(A, B).size() int map_size",
        "matches(string, string) bool matches",
        "string.matches(string) bool matches_string",
        "string.contains(string) bool contains_string",
        "string.startsWith(string) bool starts_with_string",
        "string.endsWith(string) bool ends_with_string",
        "bytes(string) bytes string_to_bytes",
        "string(bytes) string bytes_to_string",
        "dyn(A) dyn to_dyn",
        "type(A) type type",
        # Kubernetes' strings extension (version 2) and list library.
        "string.charAt(int) string string_char_at_int",
        "string.indexOf(string) int string_index_of_string",
        "string.indexOf(string, int) int string_index_of_string_int",
        "string.lastIndexOf(string) int string_last_index_of_string",
        "string.lastIndexOf(string, int) int string_last_index_of_string_int",
        "string.lowerAscii() string string_lower_ascii",
        "string.upperAscii() string string_upper_ascii",
        "string.replace(string, string) string string_replace_string_string",
        "string.replace(string, string, int) string string_replace_string_string_int",
        "string.split(string) list(string) string_split_string",
        "string.split(string, int) list(string) string_split_string_int",
        "string.substring(int) string string_substring_int",
        "string.substring(int, int) string string_substring_int_int",
        "string.trim() string string_trim",
        "list(string).join() string list_join",
        "list(string).join(string) string list_join_string",
        "list(A).isSorted() bool list_is_sorted",
        "list(A).sum() A list_sum",
        "list(A).min() A list_min",
        "list(A).max() A list_max",
        "list(A).indexOf(A) int list_index_of",
        "list(A).lastIndexOf(A) int list_last_index_of",
    ]
    for operator, name in (("_-_", "subtract"), ("_*_", "multiply"), ("_/_", "divide")):
        lines += [f"{operator}({t}, {t}) {t} {name}_{t}" for t in _NUMERIC]
    for operator, name in (
        ("_<_", "less"),
        ("_<=_", "less_equals"),
        ("_>_", "greater"),
        ("_>=_", "greater_equals"),
    ):
        lines += [f"{operator}({t}, {t}) bool {name}_{t}" for t in _ORDERED]
        lines += [
            f"{operator}({a}, {b}) bool {name}_{a}_{b}"
            for a in _NUMERIC
            for b in _NUMERIC
            if a != b
        ]
    for target in ("int", "uint", "double", "string", "bool", "bytes", "timestamp", "duration"):
        sources = {
            "int": ("int", "uint", "double", "string", "timestamp"),
            "uint": ("int", "uint", "double", "string"),
            "double": ("int", "uint", "double", "string"),
            "string": ("int", "uint", "double", "string", "bool", "timestamp", "duration"),
            "bool": ("bool", "string"),
            "bytes": ("bytes",),
            "timestamp": ("string", "int", "timestamp"),
            "duration": ("string", "duration"),
        }[target]
        lines += [f"{target}({s}) {target} {s}_to_{target}" for s in sources]
    for getter in _TIME_GETTERS:
        lines += [
            f"timestamp.{getter}() int timestamp_{getter}",
            f"timestamp.{getter}(string) int timestamp_{getter}_with_tz",
        ]
    durations = ("getHours", "getMilliseconds", "getMinutes", "getSeconds")
    lines += [f"duration.{getter}() int duration_{getter}" for getter in durations]
    return "\n".join(lines)


@dataclass(frozen=True)
class _Pattern:
    kind: str  # a DeclType kind, or "var"
    name: str = ""  # of a type variable
    params: tuple[_Pattern, ...] = ()


@dataclass(frozen=True)
class Overload:
    id: str
    function: str
    member: bool
    params: tuple[_Pattern, ...]  # the receiver first, for member overloads
    result: _Pattern


_PRIMITIVES = {
    t.kind: t
    for t in (BOOL, INT, UINT, DOUBLE, STRING, BYTES, NULL, TIMESTAMP, DURATION, TYPE, DYN)
}


def _parse_type(text: str) -> _Pattern:
    text = text.strip()
    if re.fullmatch(r"[A-Z]", text):
        return _Pattern("var", text)
    name, _, rest = text.partition("(")
    if not rest:
        return _Pattern(name)
    return _Pattern(name, params=tuple(_parse_type(p) for p in _split_params(rest[:-1])))


def _parse_overload(line: str) -> Overload:
    match = re.fullmatch(r"(?:(.+)\.)?([^.(]+)\((.*)\) (\S+) (\S+)", line)
    if match is None:
        raise ValueError(line)
    receiver, function, params, result, overload_id = match.groups()
    patterns = [_parse_type(p) for p in _split_params(params)]
    if receiver:
        patterns.insert(0, _parse_type(receiver))
    return Overload(overload_id, function, bool(receiver), tuple(patterns), _parse_type(result))


def _split_params(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    return [p for p in (*parts, current) if p.strip()]


OVERLOADS: dict[str, list[Overload]] = {}
for _line in _signatures().splitlines():
    _overload = _parse_overload(_line)
    OVERLOADS.setdefault(_overload.function, []).append(_overload)


def _unify(pattern: _Pattern, actual: DeclType, bound: dict[str, DeclType]) -> bool:
    if pattern.kind == "var":
        previous = bound.get(pattern.name)
        if previous is None or previous.kind == "dyn":
            bound[pattern.name] = actual
            return True
        return actual.kind == "dyn" or previous.same_as(actual) or actual.kind == "null"
    if actual.kind == "dyn" or pattern.kind == "dyn":
        return True
    if pattern.kind != actual.kind:
        return False
    if pattern.kind == "list":
        return _unify(pattern.params[0], actual.elem or DYN, bound)
    if pattern.kind == "map":
        return _unify(pattern.params[0], actual.key or DYN, bound) and _unify(
            pattern.params[1], actual.elem or DYN, bound
        )
    return True


def _instantiate(pattern: _Pattern, bound: dict[str, DeclType]) -> DeclType:
    if pattern.kind == "var":
        return bound.get(pattern.name, DYN)
    if pattern.kind == "list":
        return list_of(_instantiate(pattern.params[0], bound))
    if pattern.kind == "map":
        return map_of(
            _instantiate(pattern.params[0], bound), _instantiate(pattern.params[1], bound)
        )
    return _PRIMITIVES[pattern.kind]


def resolve(function: str, member: bool, arg_types: list[DeclType]) -> tuple[list[str], DeclType]:
    """The overloads a call may take, and its result type."""
    candidates = [
        o
        for o in OVERLOADS.get(function, ())
        if o.member == member and len(o.params) == len(arg_types)
    ]
    matched: list[tuple[Overload, DeclType]] = []
    for overload in candidates:
        bound: dict[str, DeclType] = {}
        if all(_unify(p, a, bound) for p, a in zip(overload.params, arg_types)):
            matched.append((overload, _instantiate(overload.result, bound)))
    if not matched:
        # What cel-go would refuse; the fake's compiler let it through: assume any overload.
        if not candidates:
            return ["unknown"], DYN
        matched = [(o, _instantiate(o.result, {})) for o in candidates]
    results = [r for _, r in matched]
    result = results[0] if all(r.same_as(results[0]) for r in results) else DYN
    return [o.id for o, _ in matched], result


@dataclass
class Checked:
    """What the checker found: every subexpression's type, every call's overloads."""

    types: dict[ast.Expr, DeclType] = field(default_factory=dict)
    overloads: dict[ast.Call, list[str]] = field(default_factory=dict)

    def type_of(self, expr: ast.Expr) -> DeclType:
        return self.types.get(expr, DYN)


_TYPE_NAMES = frozenset(
    {"bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "type", "uint"}
)


def check(expr: ast.Expr, variables: dict[str, DeclType]) -> Checked:
    checked = Checked()
    _Checker(checked, dict(variables)).visit(expr)
    return checked


class _Checker:
    def __init__(self, checked: Checked, scope: dict[str, DeclType]):
        self.checked = checked
        self.scope = scope

    def visit(self, expr: ast.Expr) -> DeclType:
        found = self._type(expr)
        self.checked.types[expr] = found
        return found

    def _type(self, expr: ast.Expr) -> DeclType:
        if isinstance(expr, ast.Literal):
            return _PRIMITIVES[expr.kind]
        if isinstance(expr, ast.Ident):
            if expr.name in self.scope:
                return self.scope[expr.name]
            return TYPE if expr.name in _TYPE_NAMES else DYN
        if isinstance(expr, ast.Select):
            operand = self.visit(expr.operand)
            if expr.test_only:
                return BOOL
            if operand.kind == "object":
                return operand.fields.get(expr.field, DYN)
            if operand.kind == "map":
                return operand.elem or DYN
            return DYN
        if isinstance(expr, ast.Call):
            args = [self.visit(a) for a in expr.args]
            if expr.target is not None:
                args.insert(0, self.visit(expr.target))
            overloads, result = resolve(expr.function, expr.target is not None, args)
            self.checked.overloads[expr] = overloads
            return result
        if isinstance(expr, ast.CreateList):
            elements = [self.visit(e) for e in expr.elements]
            return list_of(_common(elements))
        if isinstance(expr, ast.CreateMap):
            keys = [self.visit(k) for k, _ in expr.entries]
            values = [self.visit(v) for _, v in expr.entries]
            return map_of(_common(keys), _common(values))
        if isinstance(expr, ast.CreateStruct):
            for _, value in expr.fields:
                self.visit(value)
            return DYN
        if isinstance(expr, ast.Comprehension):
            return self._comprehension(expr)
        return DYN

    def _comprehension(self, comp: ast.Comprehension) -> DeclType:
        range_type = self.visit(comp.iter_range)
        init_type = self.visit(comp.accu_init)
        if range_type.kind == "list":
            item = range_type.elem or DYN
        elif range_type.kind == "map":
            item = range_type.key or DYN
        else:
            item = DYN
        saved = dict(self.scope)
        self.scope[comp.iter_var] = item
        accu = {
            "all": BOOL,
            "exists": BOOL,
            "exists_one": INT,
            "filter": list_of(item),
        }.get(comp.macro, init_type)
        if comp.macro == "map":
            self.scope[comp.accu_var] = list_of(DYN)
            self.visit(comp.loop_step)
            accu = list_of(_map_transform_type(comp, self.checked))
        self.scope[comp.accu_var] = accu
        self.visit(comp.loop_condition)
        self.visit(comp.loop_step)
        self.scope = {**saved, comp.accu_var: accu}
        result = self.visit(comp.result)
        self.scope = saved
        return result


def _map_transform_type(comp: ast.Comprehension, checked: Checked) -> DeclType:
    step = comp.loop_step
    if isinstance(step, ast.Call) and step.function == "_?_:_":
        step = step.args[1]
    if isinstance(step, ast.Call) and isinstance(step.args[1], ast.CreateList):
        return checked.type_of(step.args[1].elements[0])
    return DYN


def _common(types: list[DeclType]) -> DeclType:
    if types and all(t.same_as(types[0]) for t in types):
        return types[0]
    return DYN
