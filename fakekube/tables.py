"""Server-side printing: ``meta.k8s.io/v1 Table`` responses, as ``kubectl get`` requests them.

Custom resources print Name plus their CRD's ``additionalPrinterColumns`` (evaluated from simple
JSONPaths such as ``.spec.x.y``, ``.items[0]`` or ``.conditions[?(@.type=="Ready")].status``);
built-in kinds print Name and Age.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

from .meta import parse_time
from .resources import ResourceType

_NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_BUILTIN_COLUMNS = ({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},)
_STEP_RE = re.compile(r"""\.([^.\[]+)|\[(\d+)\]|\[\?\(@\.([\w.-]+)\s*==\s*["']([^"']*)["']\)\]""")


def wants_table(accept: str) -> bool:
    """Whether an Accept header asks for a Table (kubectl lists several media types)."""
    for media_range in accept.split(","):
        params = dict(p.strip().split("=", 1) for p in media_range.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def evaluate_json_path(obj: Any, path: str) -> Any:
    """Evaluate a simple JSONPath; None when any step is missing."""
    value = obj
    for match in _STEP_RE.finditer(path.strip().strip("{}")):
        key, index, filter_key, filter_value = match.groups()
        if key is not None:
            value = value.get(key) if isinstance(value, dict) else None
        elif index is not None:
            value = (
                value[int(index)] if isinstance(value, list) and int(index) < len(value) else None
            )
        else:
            items = value if isinstance(value, list) else []
            value = next(
                (
                    item
                    for item in items
                    if isinstance(item, dict)
                    and str(evaluate_json_path(item, "." + filter_key)) == filter_value
                ),
                None,
            )
        if value is None:
            return None
    return value


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration`` from apimachinery."""
    seconds = int(seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _cell(column: dict[str, Any], obj: dict[str, Any]) -> Any:
    value = evaluate_json_path(obj, column["jsonPath"])
    if value is None:
        return None
    kind = column.get("type")
    if kind == "date":
        try:
            age = datetime.now(timezone.utc) - parse_time(value)
        except (TypeError, ValueError):
            return "<invalid>"
        return human_duration(age.total_seconds())
    if kind == "integer":
        return (
            int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        )
    if kind == "number":
        return (
            float(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else None
        )
    if kind == "boolean":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else json.dumps(value)


def to_table(
    rt: ResourceType, objects: list[dict[str, Any]], resource_version: str
) -> dict[str, Any]:
    columns = rt.printer_columns if rt.printer_columns is not None else _BUILTIN_COLUMNS
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": _NAME_DESCRIPTION,
            "priority": 0,
        }
    ]
    for column in columns:
        definitions.append(
            {
                "name": column["name"],
                "type": column["type"],
                "format": column.get("format", ""),
                "description": column.get("description")
                or f"Custom resource definition column (in JSONPath format): {column['jsonPath']}",
                "priority": column.get("priority", 0),
            }
        )
    rows = []
    for obj in objects:
        rows.append(
            {
                "cells": [obj["metadata"]["name"], *(_cell(column, obj) for column in columns)],
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    }
