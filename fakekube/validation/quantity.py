"""``resource.Quantity``: the grammar, the canonical string form and comparison.

Quantities are parsed exactly as apimachinery parses them (``ParseQuantity``): a signed decimal
number and a suffix (binary SI ``Ki``..``Ei``, decimal SI ``n``..``E``, or an exponent ``e3``).
Values are kept as exact fractions, rounded up to nano units as Kubernetes does, and serialized in
the canonical form the apiserver stores (``1000m`` becomes ``1``, ``1024Mi`` becomes ``1Gi``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from math import ceil, floor

SPLIT_RE_STRING = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
FORMAT_WRONG = f"quantities must match the regular expression '{SPLIT_RE_STRING}'"
NUMERIC_WRONG = "unable to parse numeric part of quantity"
SUFFIX_WRONG = "unable to parse quantity's suffix"

DECIMAL_SI, BINARY_SI, DECIMAL_EXPONENT = "DecimalSI", "BinarySI", "DecimalExponent"
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_BY_EXPONENT = {v: k for k, v in _BINARY.items()} | {0: ""}
_DECIMAL_BY_EXPONENT = {v: k for k, v in _DECIMAL.items()}
_SUFFIX_CHARS = "eEinumkKMGTP"
_MAX_INT64 = 2**63 - 1
_NANO = Fraction(1, 10**9)
_EXPONENT_RE = re.compile("[+-]?[0-9]+")


class QuantityError(ValueError):
    """The message Kubernetes gives for an unparseable quantity."""


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    format: str
    # The string as written, kept when ``ParseQuantity`` finds it already canonical.
    written: str | None = None

    def __str__(self) -> str:
        return self.written if self.written is not None else canonical(self.value, self.format)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __gt__(self, other: Quantity) -> bool:
        return self.value > other.value


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """``parseQuantityString``: sign, the number as written, numerator, denominator, suffix."""
    positive, pos, end = True, 0, len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos].isdigit() and text[pos].isascii():
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos].isdigit() and text[pos].isascii():
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos >= end:
        return positive, value, num, denom, text[suffix_start:]
    if text[pos] in "+-":
        pos += 1
    while pos < end:
        if not (text[pos].isdigit() and text[pos].isascii()):
            raise QuantityError(FORMAT_WRONG)
        pos += 1
    return positive, value, num, denom, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int, str]:
    """Base, exponent and format of a suffix."""
    if suffix in _DECIMAL:
        return 10, _DECIMAL[suffix], DECIMAL_SI
    if suffix in _BINARY:
        return 2, _BINARY[suffix], BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE" and _EXPONENT_RE.fullmatch(suffix[1:]):
        return 10, int(suffix[1:]), DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_WRONG)


def _round_up_to_nano(value: Fraction) -> Fraction:
    """``inf.RoundUp`` at 9 decimal places: away from zero."""
    scaled = value / _NANO
    rounded = ceil(scaled) if value >= 0 else floor(scaled)
    return rounded * _NANO


@lru_cache(maxsize=4096)
def parse(text: str) -> Quantity:
    """``ParseQuantity``; raises ``QuantityError`` with Kubernetes' message."""
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return Quantity(Fraction(0), DECIMAL_SI, "0")
    positive, _, num, denom, suffix = _split(text)
    base, exponent, fmt = _interpret(suffix)
    magnitude = Fraction(int(num + denom), 10 ** len(denom))
    magnitude *= Fraction(10) ** exponent if base == 10 else Fraction(2) ** exponent
    value = magnitude if positive else -magnitude
    if value != _round_up_to_nano(value):
        value = _round_up_to_nano(value)
    if fmt == BINARY_SI and abs(value) > _MAX_INT64:
        value = Fraction(_MAX_INT64) if value > 0 else -Fraction(_MAX_INT64)
    if fmt == BINARY_SI and 0 < abs(value) < 1:
        fmt = DECIMAL_SI
    written = text if _keeps_written_form(num, denom, exponent, fmt) else None
    return Quantity(value, fmt, written)


def _keeps_written_form(num: str, denom: str, exponent: int, fmt: str) -> bool:
    """The fast path of ``ParseQuantity`` that reuses the input string as the canonical form."""
    shifted = num + denom
    if fmt == BINARY_SI:
        if denom or exponent < 0:
            return False
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1
        return precision >= 0 and exponent % 10 == 0 and int(shifted) & 0x07 != 0
    precision = 18 - len(num) - len(denom)
    scale = exponent - len(denom)
    return (
        precision >= 0
        and scale >= -9
        and int(shifted) < 2**63
        and scale % 3 == 0
        and not shifted.endswith("000")
        and shifted[0] != "0"
    )


def canonical(value: Fraction, fmt: str) -> str:
    """``CanonicalizeBytes``: the largest suffix that keeps an integer mantissa."""
    if value == 0:
        return "0"
    if fmt == BINARY_SI and -1024 < value < 1024 or fmt == BINARY_SI and value.denominator != 1:
        fmt = DECIMAL_SI
    if fmt == BINARY_SI:
        mantissa, exponent = int(value), 0
        while mantissa % 1024 == 0:
            mantissa //= 1024
            exponent += 10
        # Go only knows suffixes up to Ei; beyond that it writes no suffix at all.
        return f"{mantissa}{_BINARY_BY_EXPONENT.get(exponent, '')}"
    mantissa, exponent = value, 0
    while mantissa.denominator != 1:
        mantissa *= 10
        exponent -= 1
    number = int(mantissa)
    while number % 10 == 0:
        number //= 10
        exponent += 1
    while exponent % 3 != 0:
        number *= 10
        exponent -= 1
    if fmt == DECIMAL_EXPONENT:
        return f"{number}e{exponent}" if exponent else str(number)
    return f"{number}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"


def parse_json_value(value: object) -> Quantity:
    """``Quantity.UnmarshalJSON``: a JSON string or number (anything else fails to parse)."""
    if isinstance(value, (bool, dict, list)):
        return parse(json.dumps(value, separators=(",", ":")))
    if isinstance(value, (int, float)):
        return parse(_json_number(value))
    return parse(str(value).strip())


def _json_number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    text = repr(value)
    return text.removesuffix(".0")
