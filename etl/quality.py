"""Data-quality gate: every schema rule, quarantine with reasons, row-accounting invariant.

Each rule has a code, the column it is about and a message (`column: what`). Rules, checked
on the typed value after null_fill:
  TYPE      `tenure: cannot parse 'abc' as integer`
            `partner: 'maybe' is not a boolean token (true: ..., false: ...)`
  NOT_NULL  `churn: missing value`  (also the id and target columns, always)
  RANGE     `tenure: value 150 above max 120` / `... below min 0`
  ALLOWED   `contract: 'Weekly' not in allowed values`
  UNIQUE    `subscriber_id: duplicate id (2 rows)`  (other unique columns: duplicate value)
  LENGTH    `subscriber_id: value longer than 128 characters (300)`  (string columns with a
            max_length; ids of type string have one by default)
  ENCODING  `subscriber_id: invalid UTF-8 in the file (value holds U+FFFD)`  (string columns:
            the reader replaces each invalid byte sequence with U+FFFD, which could make two
            different ids equal, so such a value is never curated)
  MALFORMED `row: malformed CSV record (field count differs from header)`  (column `record`)

A row failing any rule is quarantined with its ORIGINAL raw strings (untrimmed, as read) plus
  dq_codes       every failed rule as CODE:column, joined with ';' (e.g. `RANGE:tenure;ALLOWED:contract`);
                 built only from rule codes and declared column names, so it is bounded by the
                 schema and safe to group by
  dq_reason      the human-readable messages joined with '; '; a raw value quoted in a message
                 is cut to SHOWN_VALUE_CHARS characters (line breaks shown as ␍/␊) and the whole
                 text to MAX_REASON_CHARS
  dq_raw_record  the raw CSV record for malformed records, else null
A type failure suppresses the RANGE/ALLOWED checks of that column (there is no value to
compare) but never hides other columns' failures.

Duplicate-id policy: every row whose (trimmed) id occurs more than once in the snapshot is
quarantined - none is kept, because no rule can tell which duplicate is right. This is
deterministic and independent of file order. Null ids fail not_null instead.

Cost: the counting pass evaluates each rule once and keeps only the codes (a failure
condition and a literal per rule); the messages are built in the quarantine's own stage, for
quarantined rows only. This keeps the generated code of each stage small (Spark's whole-stage
code generation gives up on methods over 64 KB and falls back to slower evaluation).

Invariant: rows_in == rows_curated + rows_quarantined == rows annotated, checked on every run in
the same pass that counts them; a violation raises InvariantError. `failures_by_rule` counts
failures per CODE:column, `failures_by_column` per declared column (never a raw value).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dataset.schema import ColumnSpec, DatasetSchema
from etl import InvariantError

CORRUPT_COLUMN = "__corrupt_record"
REASON_COLUMN = "dq_reason"
CODES_COLUMN = "dq_codes"
RAW_RECORD_COLUMN = "dq_raw_record"
SEPARATOR = "; "
CODE_SEPARATOR = ";"
RECORD = "record"  # the column of record-level codes (MALFORMED)
SHOWN_VALUE_CHARS = 64
MAX_REASON_CHARS = 2000
REPLACEMENT_CHARACTER = "\ufffd"


def typed_name(column: str) -> str:
    return f"__typed__{column}"


@dataclass(frozen=True)
class Rule:
    """One check: where `failed` is true the row gets `code:column` and `message`."""

    code: str
    column: str
    failed: Column
    message: Column

    @property
    def tag(self) -> str:
        return f"{self.code}:{self.column}"


@dataclass
class QualityResult:
    annotated: DataFrame
    curated: DataFrame
    quarantined: DataFrame
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    failures_by_column: dict[str, int] = field(default_factory=dict)
    failures_by_rule: dict[str, int] = field(default_factory=dict)
    extras: dict[str, int] = field(default_factory=dict)


def _num(x: float) -> str:
    return repr(int(x)) if float(x).is_integer() else repr(x)


def shown(value: Column) -> Column:
    """A raw value as quoted in a message: cut to SHOWN_VALUE_CHARS, CR/LF shown as ␍/␊."""
    cut = F.when(F.length(value) > SHOWN_VALUE_CHARS,
                 F.concat(F.substring(value, 1, SHOWN_VALUE_CHARS), F.lit("…"))).otherwise(value)
    return F.translate(cut, "\r\n", "\u240d\u240a")


def _type_rules(spec: ColumnSpec, trimmed: Column, cast_failed: Column) -> list[Rule]:
    name = spec.name
    if spec.type == "boolean":
        tokens = f"true: {'/'.join(spec.true_values)}, false: {'/'.join(spec.false_values)}"
        return [Rule("TYPE", name, cast_failed, F.concat(
            F.lit(f"{name}: '"), shown(trimmed), F.lit(f"' is not a boolean token ({tokens})")))]
    if spec.type != "string":
        return [Rule("TYPE", name, cast_failed, F.concat(
            F.lit(f"{name}: cannot parse '"), shown(trimmed), F.lit(f"' as {spec.type}")))]
    rules = [Rule("ENCODING", name, F.col(name).contains(REPLACEMENT_CHARACTER),
                  F.lit(f"{name}: invalid UTF-8 in the file (value holds U+FFFD)"))]
    if spec.max_length is not None:
        length = F.length(trimmed)
        rules.append(Rule("LENGTH", name, length > F.lit(spec.max_length), F.concat(
            F.lit(f"{name}: value longer than {spec.max_length} characters ("), length.cast("string"), F.lit(")"))))
    return rules


def column_rules(spec: ColumnSpec, dup_count: Column | None) -> list[Rule]:
    """Every rule of `spec`, in the order their messages appear."""
    raw = F.col(spec.name)
    trimmed = F.trim(raw)
    blank = raw.isNull() | (trimmed == "")
    value = F.col(typed_name(spec.name))
    name = spec.name
    rules = _type_rules(spec, trimmed, ~blank & value.isNull())
    if spec.not_null:
        rules.append(Rule("NOT_NULL", name, value.isNull() & blank, F.lit(f"{name}: missing value")))
    if spec.min is not None:
        rules.append(Rule("RANGE", name, value < F.lit(spec.min), F.concat(
            F.lit(f"{name}: value "), shown(trimmed), F.lit(f" below min {_num(spec.min)}"))))
    if spec.max is not None:
        rules.append(Rule("RANGE", name, value > F.lit(spec.max), F.concat(
            F.lit(f"{name}: value "), shown(trimmed), F.lit(f" above max {_num(spec.max)}"))))
    if spec.allowed is not None:
        as_text = value if spec.type == "string" else value.cast("string")
        rules.append(Rule("ALLOWED", name, value.isNotNull() & ~as_text.isin(*spec.allowed), F.concat(
            F.lit(f"{name}: '"), shown(F.coalesce(trimmed, as_text)), F.lit("' not in allowed values"))))
    if dup_count is not None:
        what = "duplicate id" if spec.role == "id" else "duplicate value"
        rules.append(Rule("UNIQUE", name, dup_count > 1, F.concat(
            F.lit(f"{name}: {what} ("), dup_count.cast("string"), F.lit(" rows)"))))
    return rules


def gate(typed: DataFrame, schema: DatasetSchema, curated_columns: list[Column],
         where: str = "input", rows_in: int | None = None,
         extra_aggs: dict[str, Column] | None = None,
         extra_rules: Sequence[Rule] = ()) -> QualityResult:
    """Annotate every row with its failed rules, split, count and check the invariant.

    `typed` holds the declared raw string columns, CORRUPT_COLUMN and one typed column per
    declared column (see conform.typed_frame). `curated_columns` is the projection applied
    to passing rows. `rows_in` is the row count of the input counted independently by the
    caller; when omitted, the annotated rows are the input. `extra_aggs` (name -> integer
    aggregate over the annotated rows, which carry CODES_COLUMN) are computed in the same pass
    as the counts and returned in `extras`. `extra_rules` are checks a feed adds to its schema's
    (e.g. dates not after the batch date); they quarantine and count exactly like schema rules.
    """
    frame, dup_cols = _with_duplicate_counts(typed, schema)
    rules = [*all_rules(schema, dup_cols), *extra_rules]
    annotated = annotate(frame, rules)
    counts = _counts(annotated, extra_aggs or {})
    total, rows_curated, rows_quarantined = counts.pop("total"), counts.pop("curated"), counts.pop("quarantined")
    rows_in = total if rows_in is None else rows_in
    if not (rows_in == total == rows_curated + rows_quarantined):
        annotated.unpersist()
        raise InvariantError(f"{where}: rows in ({rows_in}) != curated ({rows_curated}) + "
                             f"quarantined ({rows_quarantined}); annotated rows {total}")
    ok = F.col(CODES_COLUMN).isNull()
    curated = annotated.filter(ok).select(*curated_columns)
    quarantined = annotated.filter(~ok).select(
        *[F.col(c.name) for c in schema.columns],
        reason(rules).alias(REASON_COLUMN),
        F.col(CODES_COLUMN),
        F.col(CORRUPT_COLUMN).alias(RAW_RECORD_COLUMN),
    )
    by_rule = _failures_by_rule(annotated) if rows_quarantined else {}
    by_column: dict[str, int] = {}
    for tag, n in by_rule.items():
        column = tag.split(":", 1)[1]
        if column != RECORD:
            by_column[column] = by_column.get(column, 0) + n
    return QualityResult(annotated, curated, quarantined, rows_in, rows_curated, rows_quarantined,
                         dict(sorted(by_column.items())), by_rule, counts)


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


def all_rules(schema: DatasetSchema, dup_cols: dict[str, Column]) -> list[Rule]:
    """The record-level rule, then every column's rules in schema order."""
    rules = [Rule("MALFORMED", RECORD, F.col(CORRUPT_COLUMN).isNotNull(),
                  F.lit("row: malformed CSV record (field count differs from header)"))]
    for spec in schema.columns:
        rules.extend(column_rules(spec, dup_cols.get(spec.name)))
    return rules


def annotate(frame: DataFrame, rules: list[Rule]) -> DataFrame:
    """`frame` plus CODES_COLUMN (null when every rule passed), persisted for the passes that follow."""
    codes = F.concat_ws(CODE_SEPARATOR, *[F.when(r.failed, F.lit(r.tag)) for r in rules])
    # The run id literal makes this plan unique, so Spark's cache can never serve the rows of
    # an earlier run over the same (since rewritten) input path.
    return frame.withColumn("__run", F.lit(uuid.uuid4().hex)).withColumn(
        CODES_COLUMN, F.when(codes == "", F.lit(None).cast("string")).otherwise(codes)
    ).persist(StorageLevel.MEMORY_AND_DISK)


def reason(rules: list[Rule]) -> Column:
    """The failed rules' messages joined with SEPARATOR, bounded to MAX_REASON_CHARS."""
    text = F.concat_ws(SEPARATOR, *[F.when(r.failed, r.message) for r in rules])
    return F.when(F.length(text) > MAX_REASON_CHARS,
                  F.concat(F.substring(text, 1, MAX_REASON_CHARS - 16), F.lit(" …[truncated]"))
                  ).otherwise(text)


def _counts(annotated: DataFrame, extra_aggs: dict[str, Column]) -> dict[str, int]:
    """Total, curated, quarantined and the extra aggregates, in one pass."""
    ok = F.col(CODES_COLUMN).isNull()
    row = annotated.agg(
        F.count(F.lit(1)).alias("total"),
        F.sum(F.when(ok, 1).otherwise(0)).alias("curated"),
        F.sum(F.when(ok, 0).otherwise(1)).alias("quarantined"),
        *[agg.alias(name) for name, agg in extra_aggs.items()],
    ).first()
    assert row is not None
    return {name: int(row[name] or 0) for name in ("total", "curated", "quarantined", *extra_aggs)}


def _failures_by_rule(annotated: DataFrame) -> dict[str, int]:
    per_rule = (annotated.filter(F.col(CODES_COLUMN).isNotNull())
                .select(F.explode(F.split(F.col(CODES_COLUMN), CODE_SEPARATOR)).alias("tag"))
                .groupBy("tag").count().collect())
    return dict(sorted((str(r["tag"]), int(r["count"])) for r in per_rule))
