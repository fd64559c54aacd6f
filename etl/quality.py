"""Data-quality gate: every schema rule, quarantine with reasons, row-accounting invariant.

Rules (checked on the typed value after null_fill; messages are `column: what`):
  type        `tenure: cannot parse 'abc' as integer`
  boolean     `partner: 'maybe' is not a boolean token (true: ..., false: ...)`
  not_null    `churn: missing value`  (also the id and target columns, always)
  min / max   `tenure: value 150 above max 120` / `... below min 0`
  allowed     `contract: 'Weekly' not in allowed values`
  unique      `subscriber_id: duplicate id (2 rows)`  (other unique columns: duplicate value)
  CSV shape   `row: malformed CSV record (field count differs from header)`

A row failing any rule is quarantined with its ORIGINAL raw strings (untrimmed, as read)
plus `dq_reason`, all failed rules joined with '; ', and `dq_raw_record` (the raw CSV line
for malformed records, else null). A type failure suppresses the min/max/allowed checks of
that column (there is no value to compare) but never hides other columns' failures.

Duplicate-id policy: every row whose (trimmed) id occurs more than once in the snapshot is
quarantined - none is kept, because no rule can tell which duplicate is right. This is
deterministic and independent of file order. Null ids fail not_null instead.

Invariant: rows_in (counted on the input) == rows_curated + rows_quarantined, checked on
every run; a violation raises InvariantError.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dataset.schema import ColumnSpec, DatasetSchema
from etl import InvariantError

CORRUPT_COLUMN = "__corrupt_record"
REASON_COLUMN = "dq_reason"
RAW_RECORD_COLUMN = "dq_raw_record"
SEPARATOR = "; "


def typed_name(column: str) -> str:
    return f"__typed__{column}"


@dataclass
class QualityResult:
    annotated: DataFrame
    curated: DataFrame
    quarantined: DataFrame
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    failures_by_column: dict[str, int] = field(default_factory=dict)


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


def column_rules(spec: ColumnSpec, dup_count: Column | None) -> list[Column]:
    """One nullable message column per rule of `spec` (null = rule passed)."""
    raw = F.col(spec.name)
    trimmed = F.trim(raw)
    blank = raw.isNull() | (trimmed == "")
    value = F.col(typed_name(spec.name))
    cast_failed = ~blank & value.isNull()
    name = spec.name
    rules: list[Column] = []

    if spec.type == "boolean":
        tokens = f"true: {'/'.join(spec.true_values)}, false: {'/'.join(spec.false_values)}"
        rules.append(F.when(cast_failed, F.concat(
            F.lit(f"{name}: '"), trimmed, F.lit(f"' is not a boolean token ({tokens})"))))
    elif spec.type != "string":
        rules.append(F.when(cast_failed, F.concat(
            F.lit(f"{name}: cannot parse '"), trimmed, F.lit(f"' as {spec.type}"))))
    if spec.not_null:
        rules.append(F.when(value.isNull() & blank, F.lit(f"{name}: missing value")))
    if spec.min is not None:
        rules.append(F.when(value < F.lit(spec.min), F.concat(
            F.lit(f"{name}: value "), trimmed, F.lit(f" below min {_num(spec.min)}"))))
    if spec.max is not None:
        rules.append(F.when(value > F.lit(spec.max), F.concat(
            F.lit(f"{name}: value "), trimmed, F.lit(f" above max {_num(spec.max)}"))))
    if spec.allowed is not None:
        as_text = value if spec.type == "string" else value.cast("string")
        rules.append(F.when(value.isNotNull() & ~as_text.isin(*spec.allowed), F.concat(
            F.lit(f"{name}: '"), F.coalesce(trimmed, as_text), F.lit("' not in allowed values"))))
    if dup_count is not None:
        what = "duplicate id" if spec.role == "id" else "duplicate value"
        rules.append(F.when(dup_count > 1, F.concat(
            F.lit(f"{name}: {what} ("), dup_count.cast("string"), F.lit(" rows)"))))
    return rules


def gate(typed: DataFrame, schema: DatasetSchema, curated_columns: list[Column],
         where: str = "input", rows_in: int | None = None) -> QualityResult:
    """Annotate every row with its failed rules, split, count and check the invariant.

    `typed` holds the declared raw string columns, CORRUPT_COLUMN and one typed column per
    declared column (see conform.typed_frame). `curated_columns` is the projection applied
    to passing rows. `rows_in` is the row count of the input as read (counted by the caller
    on the raw frame); when omitted it is counted on `typed`.
    """
    annotated = annotate(typed, schema)
    if rows_in is None:
        rows_in = typed.count()
    rows_curated, rows_quarantined = _count_and_check(annotated, rows_in, where)
    ok = F.col(REASON_COLUMN).isNull()
    curated = annotated.filter(ok).select(*curated_columns)
    quarantined = annotated.filter(~ok).select(
        *[F.col(c.name) for c in schema.columns],
        F.col(REASON_COLUMN),
        F.col(CORRUPT_COLUMN).alias(RAW_RECORD_COLUMN),
    )
    failures = _failures_by_column(annotated) if rows_quarantined else {}
    return QualityResult(annotated, curated, quarantined, rows_in, rows_curated, rows_quarantined, failures)


def _with_duplicate_counts(frame: DataFrame, schema: DatasetSchema) -> tuple[DataFrame, dict[str, Column]]:
    """One count column per unique column: rows sharing the (trimmed, non-blank) value."""
    dup_cols: dict[str, Column] = {}
    for spec in (c for c in schema.columns if c.unique):
        cnt = f"__dupcount__{spec.name}"
        key = F.trim(F.col(spec.name))
        frame = frame.withColumn("__k", key).withColumn(
            cnt, F.when(F.col("__k").isNull() | (F.col("__k") == ""), F.lit(0))
            .otherwise(F.count(F.lit(1)).over(Window.partitionBy("__k")))
        ).drop("__k")
        dup_cols[spec.name] = F.col(cnt)
    return frame, dup_cols


def annotate(typed: DataFrame, schema: DatasetSchema) -> DataFrame:
    """`typed` plus REASON_COLUMN (null when every rule passed), persisted for the passes that follow."""
    frame, dup_cols = _with_duplicate_counts(typed, schema)
    rules: list[Column] = [F.when(F.col(CORRUPT_COLUMN).isNotNull(),
                                  F.lit("row: malformed CSV record (field count differs from header)"))]
    for spec in schema.columns:
        rules.extend(column_rules(spec, dup_cols.get(spec.name)))
    reason = F.concat_ws(SEPARATOR, *rules)
    # The run id literal makes this plan unique, so Spark's cache can never serve the rows of
    # an earlier run over the same (since rewritten) input path.
    return frame.withColumn("__run", F.lit(uuid.uuid4().hex)).withColumn(
        REASON_COLUMN, F.when(reason == "", F.lit(None).cast("string")).otherwise(reason)
    ).persist(StorageLevel.MEMORY_AND_DISK)


def _count_and_check(annotated: DataFrame, rows_in: int, where: str) -> tuple[int, int]:
    """(curated, quarantined) counted in one pass; InvariantError unless they add up to rows_in."""
    ok = F.col(REASON_COLUMN).isNull()
    counts = annotated.agg(
        F.count(F.lit(1)).alias("total"),
        F.sum(F.when(ok, 1).otherwise(0)).alias("curated"),
        F.sum(F.when(ok, 0).otherwise(1)).alias("quarantined"),
    ).first()
    assert counts is not None
    total, rows_curated, rows_quarantined = (int(counts["total"] or 0), int(counts["curated"] or 0),
                                             int(counts["quarantined"] or 0))
    if not (rows_in == total == rows_curated + rows_quarantined):
        annotated.unpersist()
        raise InvariantError(f"{where}: rows in ({rows_in}) != curated ({rows_curated}) + "
                             f"quarantined ({rows_quarantined}); annotated rows {total}")
    return rows_curated, rows_quarantined


def _failures_by_column(annotated: DataFrame) -> dict[str, int]:
    per_rule = (annotated.filter(F.col(REASON_COLUMN).isNotNull())
                .select(F.explode(F.split(F.col(REASON_COLUMN), SEPARATOR)).alias("r"))
                .select(F.substring_index("r", ":", 1).alias("c"))
                .groupBy("c").count().collect())
    return dict(sorted((str(r["c"]), int(r["count"])) for r in per_rule))
