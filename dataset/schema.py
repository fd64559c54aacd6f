"""Declarative dataset schema shared by ETL, training, inference and monitoring.

One YAML file per dataset describes its columns, their roles, the target's positive
label and the data-quality rules. Every job reads column names from here; none is
hard-coded anywhere else, so a new churn dataset needs only a new schema file.

Kept free of heavy dependencies because it also ships to AWS Glue: a schema may be given
as YAML (needs PyYAML) or as the equivalent JSON (standard library only).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COLUMN_TYPES = ("string", "integer", "double", "boolean", "date", "timestamp")
ROLES = ("id", "target", "categorical", "numeric", "boolean", "event_time", "passthrough")
FEATURE_ROLES = ("categorical", "numeric", "boolean")
ENGINEERED_OPS = ("ratio", "log1p", "count_equal", "product")
DEFAULT_TRUE_VALUES = ("yes", "y", "true", "t", "1")
DEFAULT_FALSE_VALUES = ("no", "n", "false", "f", "0")

# Per-subscriber usage aggregates produced by the CDR aggregation job. A schema opts in
# to joining them with a `usage` section; the names are the contract between the
# aggregation job, the feature job and the feature transformer.
USAGE_FEATURES = (
    "usage_calls",
    "usage_minutes",
    "usage_minutes_night",
    "usage_minutes_morning",
    "usage_minutes_afternoon",
    "usage_minutes_evening",
    "usage_international_calls",
    "usage_dropped_calls",
    "usage_dropped_call_rate",
    "usage_distinct_cells",
    "usage_active_days",
)

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class SchemaError(ValueError):
    """A schema file is invalid; the message names the file, the field and what is allowed."""


@dataclass(frozen=True)
class NullFill:
    """Explicit rule for an expected null: fill `value` when `when_column` is within bounds."""

    value: Any
    when_column: str
    when_min: float | None
    when_max: float | None
    reason: str


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    role: str
    pii: bool = False
    not_null: bool = False
    unique: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    null_fill: NullFill | None = None
    true_values: tuple[str, ...] = DEFAULT_TRUE_VALUES
    false_values: tuple[str, ...] = DEFAULT_FALSE_VALUES
    description: str = ""


@dataclass(frozen=True)
class EngineeredFeature:
    """A derived numeric feature computed by the feature transformer.

    ops: ratio (inputs: [numerator, denominator]; 0 when the denominator is 0),
    log1p (inputs: [column]), count_equal (inputs: columns, counts those equal to `value`),
    product (inputs: two or more columns multiplied together; a numeric/boolean input contributes
    its value, a categorical input the indicator "equals `value`" — an interaction feature).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    value: Any = None


@dataclass(frozen=True)
class UsageSpec:
    window_days: int
    features: tuple[str, ...]


@dataclass(frozen=True)
class DatasetSchema:
    name: str
    version: str
    description: str
    columns: tuple[ColumnSpec, ...]
    positive_label: str
    engineered: tuple[EngineeredFeature, ...] = ()
    usage: UsageSpec | None = None
    source: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.path}: no column '{name}'")

    def _by_role(self, role: str) -> list[str]:
        return [c.name for c in self.columns if c.role == role]

    @property
    def id_column(self) -> str:
        return self._by_role("id")[0]

    @property
    def target_column(self) -> str:
        return self._by_role("target")[0]

    @property
    def event_time_column(self) -> str | None:
        names = self._by_role("event_time")
        return names[0] if names else None

    @property
    def pii_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.pii]

    @property
    def categorical_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "categorical" and not c.pii]

    @property
    def numeric_columns(self) -> list[str]:
        """Numeric inputs: schema numeric columns plus the joined usage aggregates."""
        base = [c.name for c in self.columns if c.role == "numeric" and not c.pii]
        return base + list(self.usage.features if self.usage else ())

    @property
    def boolean_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.role == "boolean" and not c.pii]

    @property
    def raw_feature_columns(self) -> list[str]:
        """Fields a caller sends for scoring (inference payload), in schema order."""
        return self.categorical_columns + self.numeric_columns + self.boolean_columns

    @property
    def source_columns(self) -> list[str]:
        """Columns expected in a raw snapshot file (everything declared in `columns`)."""
        return [c.name for c in self.columns]

    @property
    def fingerprint(self) -> str:
        """Stable short hash of the schema's meaning, stored with every model artefact."""
        canonical = repr((self.name, self.version, self.columns, self.positive_label,
                          self.engineered, self.usage))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def load_schema(path: str | Path) -> DatasetSchema:
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SchemaError(f"{where}: schema file not found") from None
    return parse_schema_text(text, where, is_json=path.suffix == ".json")


def parse_schema_text(text: str, where: str, is_json: bool = False) -> DatasetSchema:
    if is_json:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SchemaError(f"{where}: not valid JSON ({exc})") from None
    else:
        import yaml

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SchemaError(f"{where}: not valid YAML ({exc})") from None
    return parse_schema(raw, where)


def parse_schema(raw: Any, where: str = "<schema>") -> DatasetSchema:
    obj = _mapping(raw, where, "")
    _only_keys(obj, where, "", {"name", "version", "description", "source", "target",
                                "columns", "engineered_features", "usage"})
    name = _str(obj, "name", where, "")
    if not _NAME.match(name):
        raise SchemaError(f"{where}: name '{name}' must be lower_snake_case")
    version = str(_req(obj, "version", where, ""))
    target = _mapping(_req(obj, "target", where, ""), where, "target")
    _only_keys(target, where, "target", {"column", "positive"})
    target_column = _str(target, "column", where, "target")
    positive = str(_req(target, "positive", where, "target"))

    raw_cols = _req(obj, "columns", where, "")
    if not isinstance(raw_cols, list) or not raw_cols:
        raise SchemaError(f"{where}: columns must be a non-empty list")
    columns = tuple(_parse_column(c, where, f"columns[{i}]") for i, c in enumerate(raw_cols))

    names = [c.name for c in columns]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SchemaError(f"{where}: columns: duplicate names {dupes}")
    for role in ("id", "target"):
        found = [c.name for c in columns if c.role == role]
        if len(found) != 1:
            raise SchemaError(f"{where}: columns: exactly one column must have role '{role}', found {found}")
    target_spec = next(c for c in columns if c.role == "target")
    if target_spec.name != target_column:
        raise SchemaError(f"{where}: target.column '{target_column}' is not the column with role 'target' "
                          f"('{target_spec.name}')")
    if target_spec.allowed is not None and positive not in target_spec.allowed:
        raise SchemaError(f"{where}: target.positive '{positive}' is not one of {list(target_spec.allowed)}")
    if len([c for c in columns if c.role == "event_time"]) > 1:
        raise SchemaError(f"{where}: columns: at most one column may have role 'event_time'")
    for i, col in enumerate(columns):
        if col.null_fill and col.null_fill.when_column not in names:
            raise SchemaError(f"{where}: columns[{i}].null_fill.when.column '{col.null_fill.when_column}' "
                              f"is not a declared column")

    usage = None
    if obj.get("usage") is not None:
        u = _mapping(obj["usage"], where, "usage")
        _only_keys(u, where, "usage", {"window_days", "features"})
        window = _req(u, "window_days", where, "usage")
        if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 366:
            raise SchemaError(f"{where}: usage.window_days must be an integer 1..366, got {window!r}")
        feats = u.get("features", list(USAGE_FEATURES))
        if not isinstance(feats, list) or not all(f in USAGE_FEATURES for f in feats):
            raise SchemaError(f"{where}: usage.features must be a list drawn from {list(USAGE_FEATURES)}")
        usage = UsageSpec(window_days=window, features=tuple(feats))

    feature_names = set(names) | set(usage.features if usage else ())
    categorical_names = {c.name for c in columns if c.role == "categorical"}
    engineered = []
    raw_eng = obj.get("engineered_features") or []
    if not isinstance(raw_eng, list):
        raise SchemaError(f"{where}: engineered_features must be a list")
    for i, e in enumerate(raw_eng):
        ctx = f"engineered_features[{i}]"
        m = _mapping(e, where, ctx)
        _only_keys(m, where, ctx, {"name", "op", "inputs", "value"})
        ename = _str(m, "name", where, ctx)
        if not _NAME.match(ename) or ename in feature_names:
            raise SchemaError(f"{where}: {ctx}.name '{ename}' must be a new lower_snake_case name")
        op = _str(m, "op", where, ctx)
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
        engineered.append(EngineeredFeature(ename, op, tuple(str(x) for x in inputs), m.get("value")))
        feature_names.add(ename)

    source = obj.get("source") or {}
    if not isinstance(source, dict):
        raise SchemaError(f"{where}: source must be a mapping")
    return DatasetSchema(
        name=name, version=version, description=str(obj.get("description", "")),
        columns=columns, positive_label=positive, engineered=tuple(engineered),
        usage=usage, source=source, path=where,
    )


def _parse_column(raw: Any, where: str, ctx: str) -> ColumnSpec:
    m = _mapping(raw, where, ctx)
    _only_keys(m, where, ctx, {"name", "type", "role", "pii", "checks", "null_fill", "true_values",
                               "false_values", "description"})
    name = _str(m, "name", where, ctx)
    if not _NAME.match(name):
        raise SchemaError(f"{where}: {ctx}.name '{name}' must be lower_snake_case (a-z, 0-9, _)")
    ctx = f"{ctx} ({name})"
    ctype = _str(m, "type", where, ctx)
    if ctype not in COLUMN_TYPES:
        raise SchemaError(f"{where}: {ctx}.type '{ctype}' is not one of {list(COLUMN_TYPES)}")
    role = _str(m, "role", where, ctx)
    if role not in ROLES:
        raise SchemaError(f"{where}: {ctx}.role '{role}' is not one of {list(ROLES)}")
    if role == "numeric" and ctype not in ("integer", "double"):
        raise SchemaError(f"{where}: {ctx}: role 'numeric' needs type integer or double, got '{ctype}'")
    if role == "boolean" and ctype != "boolean":
        raise SchemaError(f"{where}: {ctx}: role 'boolean' needs type boolean, got '{ctype}'")
    if role == "event_time" and ctype not in ("date", "timestamp"):
        raise SchemaError(f"{where}: {ctx}: role 'event_time' needs type date or timestamp, got '{ctype}'")

    checks = _mapping(m.get("checks") or {}, where, f"{ctx}.checks")
    _only_keys(checks, where, f"{ctx}.checks", {"not_null", "unique", "min", "max", "allowed"})
    lo, hi = checks.get("min"), checks.get("max")
    for key, val in (("min", lo), ("max", hi)):
        if val is not None and (not isinstance(val, (int, float)) or isinstance(val, bool)):
            raise SchemaError(f"{where}: {ctx}.checks.{key} must be a number, got {val!r}")
    if lo is not None and hi is not None and lo > hi:
        raise SchemaError(f"{where}: {ctx}.checks: min {lo} is greater than max {hi}")
    allowed = checks.get("allowed")
    if allowed is not None:
        if not isinstance(allowed, list) or not allowed:
            raise SchemaError(f"{where}: {ctx}.checks.allowed must be a non-empty list")
        allowed = tuple(str(a) for a in allowed)
    if role == "categorical" and allowed is None:
        raise SchemaError(f"{where}: {ctx}: a categorical column needs checks.allowed (its categories)")
    if role in ("id", "target"):
        checks.setdefault("not_null", True)
    if role == "id":
        checks.setdefault("unique", True)

    fill = None
    if m.get("null_fill") is not None:
        f = _mapping(m["null_fill"], where, f"{ctx}.null_fill")
        _only_keys(f, where, f"{ctx}.null_fill", {"value", "when", "reason"})
        when = _mapping(_req(f, "when", where, f"{ctx}.null_fill"), where, f"{ctx}.null_fill.when")
        _only_keys(when, where, f"{ctx}.null_fill.when", {"column", "min", "max"})
        fill = NullFill(
            value=_req(f, "value", where, f"{ctx}.null_fill"),
            when_column=_str(when, "column", where, f"{ctx}.null_fill.when"),
            when_min=when.get("min"), when_max=when.get("max"),
            reason=_str(f, "reason", where, f"{ctx}.null_fill"),
        )

    def _values(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        vals = m.get(key)
        if vals is None:
            return default
        if not isinstance(vals, list) or not vals:
            raise SchemaError(f"{where}: {ctx}.{key} must be a non-empty list")
        return tuple(str(v).strip().lower() for v in vals)

    return ColumnSpec(
        name=name, type=ctype, role=role, pii=bool(m.get("pii", False)),
        not_null=bool(checks.get("not_null", False)), unique=bool(checks.get("unique", False)),
        min=lo, max=hi, allowed=allowed, null_fill=fill,
        true_values=_values("true_values", DEFAULT_TRUE_VALUES),
        false_values=_values("false_values", DEFAULT_FALSE_VALUES),
        description=str(m.get("description", "")),
    )


def _mapping(raw: Any, where: str, ctx: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        label = ctx or "the document"
        raise SchemaError(f"{where}: {label} must be a mapping, got {type(raw).__name__}")
    return raw


def _only_keys(obj: dict[str, Any], where: str, ctx: str, allowed: set[str]) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: unknown key(s) {[prefix + k for k in unknown]}; allowed: {sorted(allowed)}")


def _req(obj: dict[str, Any], key: str, where: str, ctx: str) -> Any:
    if key not in obj or obj[key] is None:
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: {prefix}{key} is required")
    return obj[key]


def _str(obj: dict[str, Any], key: str, where: str, ctx: str) -> str:
    val = _req(obj, key, where, ctx)
    if not isinstance(val, str) or not val.strip():
        prefix = f"{ctx}." if ctx else ""
        raise SchemaError(f"{where}: {prefix}{key} must be a non-empty string, got {val!r}")
    return val
