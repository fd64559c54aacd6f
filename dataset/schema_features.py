"""Parsing and validating `engineered_features` (see docs/dataset-schema.md)."""

from __future__ import annotations

from typing import Any

from dataset.schema_fields import mapping, only_keys, text
from dataset.schema_model import NAME_PATTERN, ColumnSpec, EngineeredFeature, SchemaError, UsageSpec

ENGINEERED_OPS = ("ratio", "log1p", "count_equal", "product")


def parse_engineered(raw: Any, where: str, columns: tuple[ColumnSpec, ...],
                     usage: UsageSpec | None) -> tuple[EngineeredFeature, ...]:
    feature_names = {c.name for c in columns} | set(usage.features if usage else ())
    categorical_names = {c.name for c in columns if c.role == "categorical"}
    raw_eng = raw or []
    if not isinstance(raw_eng, list):
        raise SchemaError(f"{where}: engineered_features must be a list")
    engineered = []
    for i, e in enumerate(raw_eng):
        feat = _parse_feature(e, where, f"engineered_features[{i}]", feature_names, categorical_names)
        engineered.append(feat)
        feature_names.add(feat.name)
    return tuple(engineered)


def _parse_feature(raw: Any, where: str, ctx: str, feature_names: set[str],
                   categorical_names: set[str]) -> EngineeredFeature:
    m = mapping(raw, where, ctx)
    only_keys(m, where, ctx, {"name", "op", "inputs", "value"})
    ename = text(m, "name", where, ctx)
    if not NAME_PATTERN.match(ename) or ename in feature_names:
        raise SchemaError(f"{where}: {ctx}.name '{ename}' must be a new lower_snake_case name")
    op = text(m, "op", where, ctx)
    if op not in ENGINEERED_OPS:
        raise SchemaError(f"{where}: {ctx}.op '{op}' is not one of {list(ENGINEERED_OPS)}")
    inputs = m.get("inputs")
    if not isinstance(inputs, list) or not inputs or any(x not in feature_names for x in inputs):
        raise SchemaError(f"{where}: {ctx}.inputs must list declared columns, got {inputs!r}")
    arity = {"ratio": 2, "log1p": 1}.get(op)
    if arity is not None and len(inputs) != arity:
        raise SchemaError(f"{where}: {ctx}: op '{op}' takes {arity} input(s), got {len(inputs)}")
    if op == "count_equal" and "value" not in m:
        raise SchemaError(f"{where}: {ctx}: op 'count_equal' needs a 'value'")
    if op == "product" and len(inputs) < 2:
        raise SchemaError(f"{where}: {ctx}: op 'product' takes at least 2 inputs, got {len(inputs)}")
    if op == "product" and "value" not in m and any(x in categorical_names for x in inputs):
        raise SchemaError(f"{where}: {ctx}: op 'product' with a categorical input needs a 'value' "
                          "(the category whose indicator enters the product)")
    return EngineeredFeature(ename, op, tuple(str(x) for x in inputs), m.get("value"))
