"""Kubernetes' syntax rules for names and quantities, as apimachinery's validation words them.

The operator checks settings and tests offline (`render`, startup) with the same rules the API
server applies, so a mistake is reported before anything reaches a cluster.
"""

from __future__ import annotations

import re

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


def is_quantity(value: str) -> bool:
    """True if `value` parses as a Kubernetes resource quantity."""
    return bool(_QUANTITY.match(value))


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
