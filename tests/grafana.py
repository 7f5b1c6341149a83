"""The charm's Grafana dashboard, and the metric names its queries read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import grafana_dashboard

DASHBOARD_FILE = grafana_dashboard.DASHBOARDS_DIR / "locust-operator.json"

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w:$.])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:])(?!\s*\()")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"}
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<selector>.*),\s*\w+\s*\)\s*$")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD_FILE.read_text())


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those nested in rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression: the panels' targets and the query variables' selectors."""
    found = [t["expr"] for panel in panels(dashboard) for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["query"]["query"])
            assert match, f"variable {variable['name']}: not a label_values() query"
            found.append(match["selector"])
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    bare = _STRING.sub('""', expr)
    bare = _MATCHERS.sub("", bare)
    bare = _RANGE.sub("", bare)
    bare = _GROUPING.sub("", bare)
    return {name for name in _NAME.findall(bare) if name.lower() not in _KEYWORDS}
