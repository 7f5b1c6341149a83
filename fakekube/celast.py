"""CEL expressions as cel-go's checker sees them, built from cel-python's parse tree.

cel-python parses CEL with a grammar of its own; cost estimation needs the tree cel-go builds
instead: operators as calls named like cel-go's (``_+_``, ``_[_]``, ``@in``, ...), ``has()`` as a
presence-testing select, and every comprehension macro (``all``, ``exists``, ``exists_one``,
``map``, ``filter``) expanded into the same fold cel-go's parser expands it into, since the cost
of a macro is the cost of its expansion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import lark

ACCUMULATOR = "@result"
# Receivers that name a function namespace rather than a value, as in ``strings.quote(s)``.
_NAMESPACES = frozenset({"strings", "format", "math", "base64", "sets", "lists", "regex"})


class Expr:
    """A node of the expression tree. Nodes compare by identity: each is one cel-go expr id."""

    __hash__ = object.__hash__


@dataclass(eq=False)
class Literal(Expr):
    kind: str  # bool, int, uint, double, string, bytes, null
    value: Any


@dataclass(eq=False)
class Ident(Expr):
    name: str


@dataclass(eq=False)
class Select(Expr):
    operand: Expr
    field: str
    test_only: bool = False  # has(operand.field)


@dataclass(eq=False)
class Call(Expr):
    function: str
    args: list[Expr]
    target: Expr | None = None  # the receiver of a member call


@dataclass(eq=False)
class CreateList(Expr):
    elements: list[Expr]


@dataclass(eq=False)
class CreateMap(Expr):
    entries: list[tuple[Expr, Expr]]


@dataclass(eq=False)
class CreateStruct(Expr):
    name: str
    fields: list[tuple[str, Expr]]


@dataclass(eq=False)
class Comprehension(Expr):
    iter_range: Expr
    iter_var: str
    accu_var: str
    accu_init: Expr
    loop_condition: Expr
    loop_step: Expr
    result: Expr
    macro: str = field(default="")  # all, exists, exists_one, map, filter or bind


class CelSyntaxError(ValueError):
    """An expression this module cannot turn into cel-go's tree (cel-go would refuse it too)."""


_BINARY = {
    "relation_lt": "_<_",
    "relation_le": "_<=_",
    "relation_gt": "_>_",
    "relation_ge": "_>=_",
    "relation_eq": "_==_",
    "relation_ne": "_!=_",
    "relation_in": "@in",
    "addition_add": "_+_",
    "addition_sub": "_-_",
    "multiplication_mul": "_*_",
    "multiplication_div": "_/_",
    "multiplication_mod": "_%_",
}


def build(tree: lark.Tree) -> Expr:
    """cel-go's expression tree for one parsed ``expr``."""
    return _Builder().expr(tree)


class _Builder:
    def expr(self, node: Any) -> Expr:
        kind = node.data
        children = [c for c in node.children if c is not None]
        if kind == "expr":
            if len(children) == 1:
                return self.expr(children[0])
            condition, if_true, if_false = (self.expr(c) for c in children)
            return Call("_?_:_", [condition, if_true, if_false])
        if kind in ("conditionalor", "conditionaland"):
            if len(children) == 1:
                return self.expr(children[0])
            operator = "_||_" if kind == "conditionalor" else "_&&_"
            return Call(operator, [self.expr(children[0]), self.expr(children[1])])
        if kind in ("relation", "addition", "multiplication"):
            if len(children) == 1:
                return self.expr(children[0])
            operator, right = children
            left = operator.children[0]
            return Call(_BINARY[operator.data], [self.expr(left), self.expr(right)])
        if kind == "unary":
            if len(children) == 1:
                return self.expr(children[0])
            operator = "!_" if children[0].data == "unary_not" else "-_"
            return Call(operator, [self.expr(children[1])])
        if kind in ("member", "primary", "paren_expr"):
            return self.expr(children[0])
        if kind == "member_dot":
            return Select(self.expr(children[0]), str(children[1]))
        if kind == "member_dot_arg":
            args = self.args(children[2] if len(children) > 2 else None)
            return self.member_call(children[0], str(children[1]), args)
        if kind == "member_index":
            return Call("_[_]", [self.expr(children[0]), self.expr(children[1])])
        if kind == "member_object":
            return self.struct(children[0], children[1] if len(children) > 1 else None)
        if kind in ("ident", "dot_ident"):
            return Ident(str(children[0]))
        if kind in ("ident_arg", "dot_ident_arg"):
            args = self.args(children[1] if len(children) > 1 else None)
            return self.global_call(str(children[0]), args)
        if kind == "literal":
            return literal(children[0])
        if kind == "list_lit":
            return CreateList(self.args(children[0] if children else None))
        if kind == "map_lit":
            items = self.args(children[0] if children else None)
            return CreateMap(list(zip(items[::2], items[1::2])))
        raise CelSyntaxError(f"unsupported syntax: {kind}")

    def args(self, exprlist: Any) -> list[Expr]:
        if exprlist is None:
            return []
        return [self.expr(c) for c in exprlist.children if isinstance(c, lark.Tree)]

    def struct(self, member: Any, inits: Any) -> Expr:
        name = self.expr(member)
        if not isinstance(name, Ident):
            raise CelSyntaxError("unsupported message construction")
        parts = list(inits.children) if inits is not None else []
        fields = [(str(parts[i]), self.expr(parts[i + 1])) for i in range(0, len(parts), 2)]
        return CreateStruct(name.name, fields)

    def global_call(self, name: str, args: list[Expr]) -> Expr:
        if name == "has":
            if len(args) != 1 or not isinstance(args[0], Select):
                raise CelSyntaxError("invalid argument to has() macro")
            return Select(args[0].operand, args[0].field, test_only=True)
        return Call(name, args)

    def member_call(self, receiver: Any, name: str, args: list[Expr]) -> Expr:
        target = self.expr(receiver)
        if isinstance(target, Ident) and target.name == "cel" and name == "bind":
            return _bind(args)
        if isinstance(target, Ident) and target.name in _NAMESPACES:
            return Call(f"{target.name}.{name}", args)
        macro = _MACROS.get((name, len(args)))
        if macro is not None:
            variable = args[0]
            if not isinstance(variable, Ident):
                raise CelSyntaxError("argument must be a simple name")
            if variable.name in (ACCUMULATOR, "__result__"):
                raise CelSyntaxError("iteration variable overwrites accumulator variable")
            return macro(target, variable.name, args[1:])
        return Call(name, args, target)


def _accu() -> Ident:
    return Ident(ACCUMULATOR)


def _quantifier(kind: str):  # type: ignore[no-untyped-def]
    def expand(target: Expr, var: str, args: list[Expr]) -> Comprehension:
        (predicate,) = args
        if kind == "all":
            init: Expr = Literal("bool", True)
            condition: Expr = Call("@not_strictly_false", [_accu()])
            step: Expr = Call("_&&_", [_accu(), predicate])
            result: Expr = _accu()
        elif kind == "exists":
            init = Literal("bool", False)
            condition = Call("@not_strictly_false", [Call("!_", [_accu()])])
            step = Call("_||_", [_accu(), predicate])
            result = _accu()
        else:  # exists_one
            init = Literal("int", 0)
            condition = Literal("bool", True)
            one = Literal("int", 1)
            step = Call("_?_:_", [predicate, Call("_+_", [_accu(), one]), _accu()])
            result = Call("_==_", [_accu(), Literal("int", 1)])
        return Comprehension(target, var, ACCUMULATOR, init, condition, step, result, kind)

    return expand


def _map(target: Expr, var: str, args: list[Expr]) -> Comprehension:
    *predicate, transform = args
    step: Expr = Call("_+_", [_accu(), CreateList([transform])])
    if predicate:
        step = Call("_?_:_", [predicate[0], step, _accu()])
    return Comprehension(
        target, var, ACCUMULATOR, CreateList([]), Literal("bool", True), step, _accu(), "map"
    )


def _filter(target: Expr, var: str, args: list[Expr]) -> Comprehension:
    (predicate,) = args
    kept = Call("_+_", [_accu(), CreateList([Ident(var)])])
    step = Call("_?_:_", [predicate, kept, _accu()])
    return Comprehension(
        target, var, ACCUMULATOR, CreateList([]), Literal("bool", True), step, _accu(), "filter"
    )


def _bind(args: list[Expr]) -> Comprehension:
    var = args[0] if len(args) == 3 else None
    if not isinstance(var, Ident):
        raise CelSyntaxError("cel.bind() variable name must be a simple identifier")
    init, body = args[1:]
    unused = Literal("bool", False)
    return Comprehension(
        CreateList([]), "#unused", var.name, init, unused, Ident(var.name), body, "bind"
    )


_MACROS = {
    ("all", 2): _quantifier("all"),
    ("exists", 2): _quantifier("exists"),
    ("exists_one", 2): _quantifier("exists_one"),
    ("existsOne", 2): _quantifier("exists_one"),
    ("map", 2): _map,
    ("map", 3): _map,
    ("filter", 2): _filter,
}

# CEL's escapes; octal, hex and unicode ones name a code point (a byte in a bytes literal).
_ESCAPE = re.compile(
    r"\\([abfnrtv\\\"'`?]|[0-3][0-7]{2}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"
)
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "`": "`",
    "?": "?",
}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code]
    if code[0] in "xuU":
        return chr(int(code[1:], 16))
    return chr(int(code, 8))


def _string_value(text: str) -> str:
    raw = text[:1] in "rR"
    if raw:
        text = text[1:]
    quote = 3 if text[:3] in ('"""', "'''") else 1
    body = text[quote:-quote]
    return body if raw else _ESCAPE.sub(_unescape, body)


def literal(token: Any) -> Literal:
    text = str(token)
    kind = token.type
    if kind in ("STRING_LIT", "MLSTRING_LIT"):
        return Literal("string", _string_value(text))
    if kind == "BYTES_LIT":
        # UTF-8 counts an escaped byte above 0x7f twice: a size over, never under, the real one.
        return Literal("bytes", _string_value(text[1:]).encode("utf-8"))
    if kind == "BOOL_LIT":
        return Literal("bool", text == "true")
    if kind == "NULL_LIT":
        return Literal("null", None)
    if kind == "FLOAT_LIT":
        return Literal("double", float(text))
    if kind == "UINT_LIT":
        return Literal("uint", _integer(text[:-1]))
    return Literal("int", _integer(text))


def _integer(text: str) -> int:
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text)
    if digits[:2] in ("0x", "0X"):
        return sign * int(digits, 0)
    return sign * int(digits, 10)
