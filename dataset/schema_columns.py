"""Parsing the `columns` and `usage` sections of a schema document (see docs/dataset-schema.md)."""

from __future__ import annotations

from typing import Any

from dataset.schema_fields import mapping, only_keys, required, text
from dataset.schema_model import (
    COLUMN_TYPES,
    DEFAULT_FALSE_VALUES,
    DEFAULT_ID_MAX_LENGTH,
    DEFAULT_OTHER_BUCKET,
    DEFAULT_TRUE_VALUES,
    NAME_PATTERN,
    ROLES,
    USAGE_FEATURES,
    ColumnSpec,
    NullFill,
    SchemaError,
    UsageSpec,
    Vocabulary,
)

_COLUMN_KEYS = {"name", "type", "role", "pii", "checks", "null_fill", "true_values", "false_values",
                "description", "vocabulary"}
_CHECK_KEYS = {"not_null", "unique", "min", "max", "allowed", "max_length"}
_VOCABULARY_KEYS = {"learn", "min_frequency", "other_bucket"}


def parse_columns(raw_cols: Any, where: str, target_column: str, positive: str) -> tuple[ColumnSpec, ...]:
    """Every column spec, then the rules that span columns (roles, target, null_fill references)."""
    if not isinstance(raw_cols, list) or not raw_cols:
        raise SchemaError(f"{where}: columns must be a non-empty list")
    columns = tuple(parse_column(c, where, f"columns[{i}]") for i, c in enumerate(raw_cols))
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
    return columns


def parse_column(raw: Any, where: str, ctx: str) -> ColumnSpec:
    m = mapping(raw, where, ctx)
    only_keys(m, where, ctx, _COLUMN_KEYS)
    name = text(m, "name", where, ctx)
    if not NAME_PATTERN.match(name):
        raise SchemaError(f"{where}: {ctx}.name '{name}' must be lower_snake_case (a-z, 0-9, _)")
    ctx = f"{ctx} ({name})"
    ctype, role = _type_and_role(m, where, ctx)
    vocabulary = _vocabulary(m, where, ctx, role)
    checks = _checks(m, where, ctx, role, learned=vocabulary is not None)
    return ColumnSpec(
        name=name, type=ctype, role=role, pii=bool(m.get("pii", False)),
        not_null=bool(checks.get("not_null", False)), unique=bool(checks.get("unique", False)),
        min=checks.get("min"), max=checks.get("max"), allowed=checks.get("allowed"),
        null_fill=_null_fill(m, where, ctx),
        true_values=_tokens(m, "true_values", DEFAULT_TRUE_VALUES, where, ctx),
        false_values=_tokens(m, "false_values", DEFAULT_FALSE_VALUES, where, ctx),
        description=str(m.get("description", "")),
        max_length=_max_length(checks, where, ctx, ctype, role), vocabulary=vocabulary,
    )


def _type_and_role(m: dict[str, Any], where: str, ctx: str) -> tuple[str, str]:
    ctype = text(m, "type", where, ctx)
    if ctype not in COLUMN_TYPES:
        raise SchemaError(f"{where}: {ctx}.type '{ctype}' is not one of {list(COLUMN_TYPES)}")
    role = text(m, "role", where, ctx)
    if role not in ROLES:
        raise SchemaError(f"{where}: {ctx}.role '{role}' is not one of {list(ROLES)}")
    if role == "numeric" and ctype not in ("integer", "double"):
        raise SchemaError(f"{where}: {ctx}: role 'numeric' needs type integer or double, got '{ctype}'")
    if role == "boolean" and ctype != "boolean":
        raise SchemaError(f"{where}: {ctx}: role 'boolean' needs type boolean, got '{ctype}'")
    if role == "event_time" and ctype not in ("date", "timestamp"):
        raise SchemaError(f"{where}: {ctx}: role 'event_time' needs type date or timestamp, got '{ctype}'")
    return ctype, role


def _checks(m: dict[str, Any], where: str, ctx: str, role: str, learned: bool) -> dict[str, Any]:
    """The column's checks with the role's implied ones filled in (`allowed` as a tuple)."""
    checks = dict(mapping(m.get("checks") or {}, where, f"{ctx}.checks"))
    only_keys(checks, where, f"{ctx}.checks", _CHECK_KEYS)
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
        checks["allowed"] = tuple(str(a) for a in allowed)
    if learned and allowed is not None:
        raise SchemaError(f"{where}: {ctx}: declare either checks.allowed (fixed categories) or "
                          "vocabulary (learned at fit time), not both")
    if role == "categorical" and allowed is None and not learned:
        raise SchemaError(f"{where}: {ctx}: a categorical column needs checks.allowed (its categories) "
                          "or vocabulary: {learn: true} (categories learned at fit time)")
    if role in ("id", "target"):
        checks.setdefault("not_null", True)
    if role == "id":
        checks.setdefault("unique", True)
    return checks


def _max_length(checks: dict[str, Any], where: str, ctx: str, ctype: str, role: str) -> int | None:
    value = checks.get("max_length")
    if value is None:
        return DEFAULT_ID_MAX_LENGTH if role == "id" and ctype == "string" else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SchemaError(f"{where}: {ctx}.checks.max_length must be a positive integer, got {value!r}")
    if ctype != "string":
        raise SchemaError(f"{where}: {ctx}.checks.max_length applies to string columns, not {ctype}")
    return value


def _vocabulary(m: dict[str, Any], where: str, ctx: str, role: str) -> Vocabulary | None:
    """`vocabulary: {learn: true, min_frequency: N, other_bucket: NAME}` on a categorical column."""
    if m.get("vocabulary") is None:
        return None
    vctx = f"{ctx}.vocabulary"
    v = mapping(m["vocabulary"], where, vctx)
    only_keys(v, where, vctx, _VOCABULARY_KEYS)
    if role != "categorical":
        raise SchemaError(f"{where}: {ctx}: vocabulary applies to role 'categorical', not '{role}'")
    if v.get("learn") is not True:
        raise SchemaError(f"{where}: {vctx}.learn must be true (for fixed categories use checks.allowed), "
                          f"got {v.get('learn')!r}")
    min_frequency = v.get("min_frequency", 1)
    if not isinstance(min_frequency, int) or isinstance(min_frequency, bool) or min_frequency < 1:
        raise SchemaError(f"{where}: {vctx}.min_frequency must be a positive integer, got {min_frequency!r}")
    other = v.get("other_bucket", DEFAULT_OTHER_BUCKET)
    if not isinstance(other, str) or not other.strip():
        raise SchemaError(f"{where}: {vctx}.other_bucket must be a non-empty string, got {other!r}")
    return Vocabulary(min_frequency=min_frequency, other_bucket=other)


def _null_fill(m: dict[str, Any], where: str, ctx: str) -> NullFill | None:
    if m.get("null_fill") is None:
        return None
    f = mapping(m["null_fill"], where, f"{ctx}.null_fill")
    only_keys(f, where, f"{ctx}.null_fill", {"value", "when", "reason"})
    when = mapping(required(f, "when", where, f"{ctx}.null_fill"), where, f"{ctx}.null_fill.when")
    only_keys(when, where, f"{ctx}.null_fill.when", {"column", "min", "max"})
    return NullFill(
        value=required(f, "value", where, f"{ctx}.null_fill"),
        when_column=text(when, "column", where, f"{ctx}.null_fill.when"),
        when_min=when.get("min"), when_max=when.get("max"),
        reason=text(f, "reason", where, f"{ctx}.null_fill"),
    )


def _tokens(m: dict[str, Any], key: str, default: tuple[str, ...], where: str, ctx: str) -> tuple[str, ...]:
    vals = m.get(key)
    if vals is None:
        return default
    if not isinstance(vals, list) or not vals:
        raise SchemaError(f"{where}: {ctx}.{key} must be a non-empty list")
    return tuple(str(v).strip().lower() for v in vals)


def parse_usage(raw: Any, where: str) -> UsageSpec | None:
    if raw is None:
        return None
    u = mapping(raw, where, "usage")
    only_keys(u, where, "usage", {"window_days", "features"})
    window = required(u, "window_days", where, "usage")
    if not isinstance(window, int) or isinstance(window, bool) or not 1 <= window <= 366:
        raise SchemaError(f"{where}: usage.window_days must be an integer 1..366, got {window!r}")
    feats = u.get("features", list(USAGE_FEATURES))
    if not isinstance(feats, list) or not all(f in USAGE_FEATURES for f in feats):
        raise SchemaError(f"{where}: usage.features must be a list drawn from {list(USAGE_FEATURES)}")
    return UsageSpec(window_days=window, features=tuple(feats))
