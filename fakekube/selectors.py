"""Label and field selectors in the apiserver's query-string syntax.

Label selectors support ``=``, ``==``, ``!=``, ``in``, ``notin``, existence (``key``), absence
(``!key``) and the numeric ``>``/``<``. Field selectors support ``=``, ``==`` and ``!=`` on the
fields a kind declares selectable (``metadata.name`` and ``metadata.namespace`` everywhere).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import StatusError

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQUALITY_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_NUMERIC_RE = re.compile(rf"^\s*({_KEY})\s*(>|<)\s*(-?\d+)\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # in, notin, =, !=, exists, !, gt, lt
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("in", "="):
            return present and value in self.values
        if self.operator in ("notin", "!="):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present or not re.fullmatch(r"-?\d+", value or ""):
            return False
        bound = int(next(iter(self.values)))
        return int(value) > bound if self.operator == "gt" else int(value) < bound


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside a parenthesised value set."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


class LabelSelector:
    """A parsed ``labelSelector``; the empty selector matches everything."""

    def __init__(self, requirements: tuple[Requirement, ...] = ()):
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        if not text or not text.strip():
            return cls()
        return cls(tuple(_parse_requirement(part) for part in _split_top_level(text)))

    @classmethod
    def from_dict(cls, labels: dict[str, str]) -> LabelSelector:
        return cls(tuple(Requirement(k, "=", frozenset({v})) for k, v in labels.items()))

    @classmethod
    def from_label_selector(cls, selector: dict[str, Any]) -> LabelSelector:
        """Build from a metav1.LabelSelector object (matchLabels + matchExpressions)."""
        requirements = list(cls.from_dict(selector.get("matchLabels") or {}).requirements)
        operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
        for expression in selector.get("matchExpressions") or ():
            requirements.append(
                Requirement(
                    expression["key"],
                    operators[expression["operator"]],
                    frozenset(expression.get("values") or ()),
                )
            )
        return cls(tuple(requirements))

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _parse_requirement(text: str) -> Requirement:
    if match := _SET_RE.match(text):
        values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(match.group(1), match.group(2), values)
    if match := _EQUALITY_RE.match(text):
        operator = "!=" if match.group(2) == "!=" else "="
        return Requirement(match.group(1), operator, frozenset({match.group(3)}))
    if match := _NUMERIC_RE.match(text):
        return Requirement(
            match.group(1), "gt" if match.group(2) == ">" else "lt", frozenset({match.group(3)})
        )
    if match := _EXISTS_RE.match(text):
        return Requirement(match.group(2), "!" if match.group(1) else "exists")
    raise StatusError.bad_request(
        f"unable to parse requirement: found '{text.strip()}', expected: identifier"
    )


FieldGetter = Callable[[dict[str, Any]], str]


def field_path_getter(path: str) -> FieldGetter:
    """Read a dotted field path as the string a field selector compares against."""
    keys = path.split(".")

    def read(obj: dict[str, Any]) -> str:
        value: Any = obj
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return read


class FieldSelector:
    """A parsed ``fieldSelector`` restricted to the fields the kind supports."""

    def __init__(self, terms: tuple[tuple[FieldGetter, str, str, str], ...] = ()):
        self._terms = terms  # (getter, field, operator, value)

    @classmethod
    def parse(cls, text: str | None, supported: frozenset[str]) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        terms = []
        for part in text.split(","):
            match = re.match(r"^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
            if not match:
                raise StatusError.bad_request(
                    f"invalid selector: '{text}'; can't understand '{part}'"
                )
            field, operator, value = match.groups()
            if field not in supported:
                raise StatusError.bad_request(f"field label not supported: {field}")
            terms.append(
                (field_path_getter(field), field, "!=" if operator == "!=" else "=", value)
            )
        return cls(tuple(terms))

    def names_exactly(self) -> str | None:
        """The single ``metadata.name`` this selector pins, if it does (a cheap index lookup)."""
        for _, field, operator, value in self._terms:
            if field == "metadata.name" and operator == "=":
                return value
        return None

    def matches(self, obj: dict[str, Any]) -> bool:
        for getter, _, operator, value in self._terms:
            if (getter(obj) == value) != (operator == "="):
                return False
        return True
