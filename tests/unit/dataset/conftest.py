"""A small schema document the dataset tests vary one key at a time."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataset.schema import DatasetSchema, SchemaError, parse_schema

WHERE = "tiny.yaml"

BASE: dict[str, Any] = {
    "name": "tiny",
    "version": "1",
    "target": {"column": "churned", "positive": "yes"},
    "source": {"rename": {"rownames": "account"}},
    "columns": [
        {"name": "account", "type": "string", "role": "id"},
        {"name": "churned", "type": "string", "role": "target", "checks": {"allowed": ["yes", "no"]}},
        {"name": "phone", "type": "string", "role": "passthrough", "pii": True},
        {"name": "seen_at", "type": "date", "role": "event_time"},
        {"name": "plan", "type": "string", "role": "categorical", "checks": {"allowed": ["pre", "post"]}},
        {"name": "tenure", "type": "integer", "role": "numeric"},
        {"name": "spend", "type": "double", "role": "numeric"},
        {"name": "fees", "type": "double", "role": "numeric"},
        {"name": "roaming", "type": "boolean", "role": "boolean", "true_values": ["on"], "false_values": ["off"]},
    ],
    "usage": {"window_days": 30, "features": ["usage_calls", "usage_minutes"]},
}


def document(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    doc.update(copy.deepcopy(changes))
    return doc


def with_features(*features: dict[str, Any]) -> dict[str, Any]:
    return document(engineered_features=list(features))


def parse(doc: dict[str, Any]) -> DatasetSchema:
    return parse_schema(doc, WHERE)


def rejection(doc: dict[str, Any]) -> str:
    """The SchemaError message for `doc`; it must be a single line naming the file."""
    with pytest.raises(SchemaError) as exc:
        parse_schema(doc, WHERE)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{WHERE}: "), message
    return message
