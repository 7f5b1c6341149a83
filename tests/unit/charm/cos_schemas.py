"""JSON schemas of the COS relations' databags, written from the interfaces' specifications.

Juju databags hold strings only: a field the specification describes as JSON is a string whose
JSON decodes to the schema given here (`validate` decodes it first). Every schema is as strict as
the specification: what it requires is required, what it leaves open (extra keys in a scrape job
or in the topology) is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
NON_EMPTY = {"type": "string", "minLength": 1}

# --- prometheus_scrape (provider) ------------------------------------------------------------

ALERT_RULE = {
    "type": "object",
    "required": ["alert", "expr", "for", "labels", "annotations"],
    "properties": {
        "alert": NON_EMPTY,
        "expr": NON_EMPTY,
        "for": {"type": "string"},
        "labels": STRINGS,
        "annotations": STRINGS,
    },
}
ALERT_RULES = {
    "type": "object",
    "required": ["groups"],
    "properties": {
        "groups": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "properties": {
                    "name": NON_EMPTY,
                    "rules": {"type": "array", "items": ALERT_RULE},
                },
            },
        }
    },
}
SCRAPE_JOBS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["metrics_path", "static_configs"],
        "properties": {
            "job_name": {"type": "string"},
            "metrics_path": NON_EMPTY,
            "static_configs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["targets"],
                    "properties": {
                        "targets": {"type": "array", "items": NON_EMPTY},
                        "labels": STRINGS,
                    },
                },
            },
        },
    },
}
SCRAPE_METADATA = {
    "type": "object",
    "required": ["model", "model_uuid", "application", "unit"],
    "properties": {
        "model": NON_EMPTY,
        "model_uuid": NON_EMPTY,
        "application": NON_EMPTY,
        "unit": NON_EMPTY,
        "charm_name": NON_EMPTY,
    },
}
PROMETHEUS_SCRAPE_APP = {
    "scrape_metadata": SCRAPE_METADATA,
    "scrape_jobs": SCRAPE_JOBS,
    "alert_rules": ALERT_RULES,
}
PROMETHEUS_SCRAPE_UNIT = {
    "type": "object",
    "required": ["prometheus_scrape_unit_address", "prometheus_scrape_unit_name"],
    "properties": {
        "prometheus_scrape_unit_address": NON_EMPTY,
        "prometheus_scrape_unit_name": NON_EMPTY,
        "prometheus_scrape_unit_path": {"type": "string"},
    },
}

# --- grafana_dashboard (provider) ------------------------------------------------------------

GRAFANA_DASHBOARD_APP = {
    "dashboards": {
        "type": "object",
        "required": ["templates", "uuid"],
        "additionalProperties": False,
        "properties": {
            "uuid": NON_EMPTY,
            "templates": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": False,
                "patternProperties": {
                    "^file:.+$": {
                        "type": "object",
                        "required": ["charm", "content", "juju_topology", "inject_dropdowns"],
                        "properties": {
                            "charm": NON_EMPTY,
                            "content": NON_EMPTY,  # LZMA-compressed, base64-encoded JSON
                            "inject_dropdowns": {"type": "boolean"},
                            "juju_topology": {
                                "type": "object",
                                "required": ["model", "model_uuid", "application", "unit"],
                                "additionalProperties": False,
                                "properties": {
                                    key: NON_EMPTY
                                    for key in ("model", "model_uuid", "application", "unit")
                                },
                            },
                            "dashboard_alt_uid": NON_EMPTY,
                        },
                    }
                },
            },
        },
    }
}

# --- loki_push_api (requirer; the provider's unit data, for the tests' input) ------------------

LOKI_PUSH_API_APP = {"metadata": SCRAPE_METADATA, "alert_rules": {"type": "object"}}
LOKI_ENDPOINT = {"type": "object", "required": ["url"], "properties": {"url": NON_EMPTY}}


def validate(schemas: Mapping[str, dict[str, Any]], databag: Mapping[str, str]) -> dict[str, Any]:
    """Check that `databag` has exactly the keys of `schemas`, each a JSON string matching its
    schema; return the decoded values."""
    assert set(databag) == set(schemas), f"databag keys {sorted(databag)}"
    decoded = {key: json.loads(databag[key]) for key in schemas}
    for key, schema in schemas.items():
        jsonschema.validate(decoded[key], schema)
    return decoded


def validate_unit(schema: dict[str, Any], databag: Mapping[str, str]) -> None:
    """Check a databag of plain strings (a unit databag) against `schema`."""
    jsonschema.validate(dict(databag), schema)
