"""Kubernetes' syntax rules for names and quantities, as apimachinery's validation words them.

The operator checks settings and tests offline (`render`, startup) with the same rules the API
server applies, so a mistake is reported before anything reaches a cluster.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# A Kubernetes resource.Quantity: a decimal number with an optional binary (Ki..Ei), decimal (n..E)
# or exponent suffix. Stricter than a float parse: "1.5 Gi" or "10MB" are rejected, as the
# apiserver rejects them.
_QUANTITY = re.compile(
    r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
# Kubernetes' own wording (apimachinery's validation), so a message reads like the apiserver's.
DNS1123_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
DNS1123_SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)


_SUFFIXES = {
    **{
        suffix: Decimal(1024) ** power
        for power, suffix in enumerate(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"], 1)
    },
    **{
        suffix: Decimal(10) ** power
        for suffix, power in (
            ("n", -9),
            ("u", -6),
            ("m", -3),
            ("k", 3),
            ("M", 6),
            ("G", 9),
            ("T", 12),
            ("P", 15),
            ("E", 18),
        )
    },
}


def is_quantity(value: str) -> bool:
    """True if `value` parses as a Kubernetes resource quantity."""
    return bool(_QUANTITY.match(value))


def quantity_value(value: str | int | float) -> Decimal:
    """The amount a quantity stands for (`500m` is 0.5, `1Ki` 1024); ValueError if it is none.

    A YAML number (`cpu: 1`) is a quantity too, as the API server reads it.
    """
    text = str(value).strip() if isinstance(value, (int, float)) else value
    if isinstance(value, bool) or not isinstance(text, str) or not _QUANTITY.match(text):
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = re.match(r"^([+-]?[0-9.]*)(.*)$", text).groups()  # type: ignore[union-attr]
    try:
        amount = Decimal(number)
    except InvalidOperation:
        raise ValueError(f"not a quantity: {value!r}") from None
    if suffix[:1] in ("e", "E"):
        return amount * Decimal(10) ** int(suffix[1:])
    return amount * _SUFFIXES.get(suffix, Decimal(1))


def is_dns1123_label(value: str) -> bool:
    """True for a valid namespace name (an RFC 1123 label)."""
    return bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    """True for a valid object name (an RFC 1123 subdomain)."""
    return bool(_DNS1123_SUBDOMAIN.match(value))


def dns1123_problem(value: str, *, label: bool) -> str | None:
    """Why `value` is not an RFC 1123 label (or subdomain), in Kubernetes' words; None if it is."""
    longest = 63 if label else 253
    if len(value) > longest:
        return f"must be no more than {longest} characters"
    if label and not is_dns1123_label(value):
        return DNS1123_LABEL_RULE
    if not label and not is_dns1123_subdomain(value):
        return DNS1123_SUBDOMAIN_RULE
    return None


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
ENV_VAR_NAME_RULE = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)


def qualified_name_problems(key: str) -> list[str]:
    """Why `key` is not a label or annotation key (`[prefix/]name`), in Kubernetes' words."""
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif slash and (problem := dns1123_problem(prefix, label=False)):
        problems.append(f"prefix part {problem}")
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME.match(name):
        problems.append(_QUALIFIED_NAME_RULE)
    return problems


def label_value_problems(value: str) -> list[str]:
    """Why `value` is not a label value, in Kubernetes' words."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        problems.append(_LABEL_VALUE_RULE)
    return problems


def is_env_var_name(name: str) -> bool:
    """Kubernetes' rule for environment variable names since 1.32 (printable ASCII, no `=`)."""
    return bool(name) and all(" " <= char <= "~" for char in name) and "=" not in name
