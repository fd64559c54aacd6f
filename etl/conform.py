"""Conform a raw subscriber snapshot: enforce the schema, type, fill, gate, pseudonymise.

Input: the raw snapshot as landed (UTF-8 CSV with a header row), read with every column as
a string (`read_raw_snapshot`). Output (`conform_subscribers`): curated rows - one typed
column per declared column, PII columns replaced by their keyed hash, the target as
integer 1/0 - and quarantined rows carrying their original raw strings plus `dq_codes`,
`dq_reason` and `dq_raw_record` (etl/quality.py).

Reading: RFC 4180 quoting (`""` inside a quoted field); a quoted field may hold line breaks
(Spark `multiLine`: the record is read whole; a line break inside quotes is read as '\n').
The header comes from etl/preflight.py (file-level checks, `source.rename`, repeated names)
unless the caller passes the column names.

Schema enforcement:
  * a declared column missing from the header -> EtlError naming the columns and the file;
  * a header column that is not declared -> dropped with a logged warning and listed in
    the result's `dropped_columns` (BSS exports often grow columns; new columns must be
    declared in the schema before they are used);
  * a duplicated header name -> EtlError;
  * a record whose field count differs from the header -> quarantined
    (`MALFORMED:record`) with the raw record in `dq_raw_record`.

Line accounting (with the row invariant of the quality gate, nothing is dropped unseen): a
plain-text pass counts the file's lines and its empty lines; the gate's counting pass adds up
the line breaks inside records. Then
    lines = 1 header per file + blank lines + records + line breaks inside records,
where blank lines are the empty lines outside quoted fields (the CSV reader skips them; they
are reported in `blank_lines`). If that does not add up - e.g. the file ends inside an
unterminated quoted field that swallowed the final line break - the run fails with EtlError.

Every value is trimmed; an empty string is null. Typing (strict - Spark's lenient casts
would otherwise turn '1.5' into integer 1 or 'NaN' into a double):
  integer   optional sign, digits, optionally '.0...' (e.g. '3.0', as pandas writes ints)
  double    decimal or scientific notation; NaN/Infinity are rejected
  boolean   case-insensitive match with the column's true_values / false_values
  date      yyyy-MM-dd
  timestamp yyyy-MM-dd[T ]HH:mm[:ss[.fraction]][Z|+hh:mm] (no zone = UTC)
  string    as is (trimmed)
A non-empty value that does not parse is a type failure (quarantined), never a null.

null_fill: a null (blank) value is replaced by the rule's value only when the rule's
`when` column (typed) lies within [min, max]; otherwise the null stays and not_null
catches it. Fills are counted per column in the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dataset.schema import ColumnSpec, DatasetSchema
from etl import EtlError
from etl.preflight import check_repeats, read_header
from etl.pseudonymise import hmac_hex_col
from etl.quality import (
    CODES_COLUMN,
    CORRUPT_COLUMN,
    QualityResult,
    Rule,
    gate,
    typed_name,
)

log = logging.getLogger(__name__)

TARGET_TYPE = T.IntegerType()
BREAKS_COLUMN = "__line_breaks"  # line breaks inside the record's fields (0: a one-line record)
INNER_BLANK_COLUMN = "__inner_blank_lines"  # empty lines inside the record's quoted fields
_BREAK = r"\r\n|\r|\n"

_INT_RE = r"^[+-]?[0-9]+(\.0*)?$"
_DOUBLE_RE = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_DATE_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TS_RE = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
          r"(Z|[+-][0-9]{2}:[0-9]{2})?$")

SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "integer": T.IntegerType(),
    "double": T.DoubleType(),
    "boolean": T.BooleanType(),
    "date": T.DateType(),
    "timestamp": T.TimestampType(),
}


@dataclass
class ConformResult:
    curated: DataFrame
    quarantined: DataFrame
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    dropped_columns: list[str] = field(default_factory=list)
    null_fills: dict[str, int] = field(default_factory=dict)
    failures_by_column: dict[str, int] = field(default_factory=dict)
    annotated: DataFrame | None = None
    failures_by_rule: dict[str, int] = field(default_factory=dict)
    lines: LineAccount | None = None

    def release(self) -> None:
        """Drop the cached annotated rows. Call once the outputs are written: a later run on
        the same path would otherwise be served the cached (stale) rows by Spark's cache."""
        if self.annotated is not None:
            self.annotated.unpersist()

    def summary(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_curated": self.rows_curated,
            "rows_quarantined": self.rows_quarantined,
            "dropped_columns": self.dropped_columns,
            "null_fills": self.null_fills,
            "failures_by_column": self.failures_by_column,
            "failures_by_rule": self.failures_by_rule,
            **(self.lines.summary() if self.lines else {}),
        }


@dataclass(frozen=True)
class LineAccount:
    """How the file's lines divide between headers, blank lines and records."""

    files: int
    lines: int
    blank_lines: int
    multiline_records: int

    def summary(self) -> dict[str, int]:
        return {"lines_in": self.lines, "blank_lines": self.blank_lines,
                "multiline_records": self.multiline_records}


def read_raw_snapshot(spark: SparkSession, path: str, columns: Sequence[str] | None = None) -> DataFrame:
    """Read a raw CSV snapshot with every header column as a string.

    `columns`: the header's field names as the caller checked them (etl.preflight, with
    `source.rename` applied); default: the header as written (preflight.read_header). Records
    whose field count differs from the header keep their raw text in the internal
    corrupt-record column, so the quality gate can quarantine them instead of Spark silently
    padding or truncating them.
    """
    names = list(columns) if columns is not None else read_header(path)
    check_repeats(names, path)  # Spark would otherwise rename or reject repeated names
    struct = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in names]
        + [T.StructField(CORRUPT_COLUMN, T.StringType(), True)]
    )
    try:
        return (
            spark.read.option("header", "true")
            .option("encoding", "UTF-8")
            .option("multiLine", "true")  # a quoted field may span lines; the record stays whole
            .option("escape", '"')  # RFC 4180: a quote inside a quoted field is doubled
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .option("enforceSchema", "true")
            .schema(struct)
            .csv(path)
        )
    except Exception as exc:  # AnalysisException: path does not exist, etc.
        raise EtlError(f"cannot read raw snapshot {path}: {exc}") from exc


def _clean_header(name: str) -> str:
    return name.replace("\ufeff", "").strip()


def align_columns(raw: DataFrame, schema: DatasetSchema, where: str) -> tuple[DataFrame, list[str]]:
    """Select the declared columns (by trimmed header name) as strings; return dropped extras."""
    present = [c for c in raw.columns if c != CORRUPT_COLUMN]
    cleaned = [_clean_header(c) for c in present]
    dupes = sorted({c for c in cleaned if cleaned.count(c) > 1})
    if dupes:
        raise EtlError(f"{where}: header repeats column(s) {dupes}")
    by_clean = dict(zip(cleaned, present, strict=True))
    missing = [c for c in schema.source_columns if c not in by_clean]
    if missing:
        raise EtlError(f"{where}: missing declared column(s) {missing} (schema {schema.path}); "
                       f"header has {cleaned}")
    dropped = [c for c in cleaned if c not in schema.source_columns]
    if dropped:
        log.warning("%s: dropping column(s) not declared in schema %s: %s", where, schema.path, dropped)
    cols = [F.col(f"`{by_clean[c]}`").cast("string").alias(c) for c in schema.source_columns]
    corrupt = (F.col(CORRUPT_COLUMN) if CORRUPT_COLUMN in raw.columns
               else F.lit(None).cast("string"))
    # The record's text for line accounting: every field, declared or not (NUL-separated, so a
    # break at the end of one field and one at the start of the next are not read as one).
    text = F.coalesce(corrupt, F.concat_ws("\u0000", *[F.col(f"`{c}`") for c in present]))
    has_break = text.contains("\n") | text.contains("\r")  # cheap test first: most records have none
    return raw.select(
        *cols, corrupt.alias(CORRUPT_COLUMN),
        F.when(has_break, F.regexp_count(text, F.lit(_BREAK))).otherwise(0).alias(BREAKS_COLUMN),
        # an empty line inside a field: a break right after a break (atomic: CR LF is one break)
        F.when(has_break, F.regexp_count(text, F.lit(f"(?>{_BREAK})(?=[\\r\\n])"))).otherwise(0)
        .alias(INNER_BLANK_COLUMN),
    ), dropped


def _trimmed(name: str) -> Column:
    t = F.trim(F.col(name))
    return F.when(t == "", F.lit(None)).otherwise(t)


def parse_expr(spec: ColumnSpec) -> Column:
    """Strictly typed value of a raw string column; null when blank or unparseable."""
    v = _trimmed(spec.name)
    if spec.type == "string":
        return v
    if spec.type == "integer":
        whole = v.cast("decimal(38,9)")
        in_range = whole.between(F.lit(-(2**31)), F.lit(2**31 - 1))
        return F.when(v.rlike(_INT_RE) & in_range, whole.cast("int"))
    if spec.type == "double":
        return F.when(v.rlike(_DOUBLE_RE), v.cast("double"))
    if spec.type == "boolean":
        low = F.lower(v)
        return (F.when(low.isin(*spec.true_values), F.lit(True))
                .when(low.isin(*spec.false_values), F.lit(False)))
    if spec.type == "date":
        return F.when(v.rlike(_DATE_RE), v.cast("date"))
    if spec.type == "timestamp":
        return F.when(v.rlike(_TS_RE), v.cast("timestamp"))
    raise EtlError(f"column {spec.name}: unsupported type {spec.type}")


def _fill_literal(spec: ColumnSpec) -> Column:
    assert spec.null_fill is not None
    value = spec.null_fill.value
    try:
        if spec.type == "integer":
            return F.lit(int(value)).cast("int")
        if spec.type == "double":
            return F.lit(float(value)).cast("double")
        if spec.type == "boolean":
            token = str(value).strip().lower()
            if token not in spec.true_values + spec.false_values:
                raise ValueError(token)
            return F.lit(token in spec.true_values)
        if spec.type in ("date", "timestamp"):
            return F.lit(str(value)).cast(spec.type)
        return F.lit(str(value))
    except (TypeError, ValueError) as exc:
        raise EtlError(f"column {spec.name}: null_fill value {value!r} is not a valid {spec.type}") from exc


def fill_condition(spec: ColumnSpec) -> Column:
    """True where the column is blank and its null_fill `when` bounds hold."""
    assert spec.null_fill is not None
    nf = spec.null_fill
    ref = F.col(typed_name(nf.when_column))
    cond = F.col(typed_name(spec.name)).isNull() & _trimmed(spec.name).isNull() & ref.isNotNull()
    if nf.when_min is not None:
        cond = cond & (ref >= F.lit(nf.when_min))
    if nf.when_max is not None:
        cond = cond & (ref <= F.lit(nf.when_max))
    return cond


def target_expr(schema: DatasetSchema) -> Column:
    """Target as integer 1 (equals the schema's positive label) or 0."""
    spec = schema.column(schema.target_column)
    typed = F.col(typed_name(spec.name))
    pos = schema.positive_label
    if spec.type == "string":
        is_pos = typed == F.lit(pos)
    elif spec.type == "boolean":
        token = pos.strip().lower()
        if token not in spec.true_values + spec.false_values:
            raise EtlError(f"{schema.path}: target.positive '{pos}' is not a boolean token of column "
                           f"{spec.name}")
        is_pos = typed == F.lit(token in spec.true_values)
    elif spec.type in ("integer", "double"):
        try:
            is_pos = typed.cast("double") == F.lit(float(pos))
        except ValueError:
            raise EtlError(f"{schema.path}: target.positive '{pos}' is not numeric but column "
                           f"{spec.name} is {spec.type}") from None
    else:
        raise EtlError(f"{schema.path}: target column {spec.name} has unsupported type {spec.type}")
    return F.when(typed.isNull(), F.lit(None)).when(is_pos, 1).otherwise(0).cast(TARGET_TYPE)


def typed_frame(aligned: DataFrame, schema: DatasetSchema) -> tuple[DataFrame, list[str]]:
    """Raw columns + typed columns (null_fill applied) + one fill flag per null_fill column."""
    typed = aligned.select(
        "*", *[parse_expr(c).alias(typed_name(c.name)) for c in schema.columns]
    )
    fill_cols = [c for c in schema.columns if c.null_fill is not None]
    flags = [f"__filled__{c.name}" for c in fill_cols]
    if fill_cols:
        typed = typed.select(
            "*", *[fill_condition(c).alias(flag) for c, flag in zip(fill_cols, flags, strict=True)]
        )
        replaced = {
            typed_name(c.name): F.when(F.col(flag), _fill_literal(c)).otherwise(F.col(typed_name(c.name)))
            for c, flag in zip(fill_cols, flags, strict=True)
        }
        typed = typed.withColumns(replaced)
    return typed, flags


def curated_projection(schema: DatasetSchema, key: bytes) -> list[Column]:
    """Curated columns, in schema order: PII hashed, target 1/0, others typed."""
    out = []
    for spec in schema.columns:
        if spec.pii:
            out.append(hmac_hex_col(spec.name, key).alias(spec.name))
        elif spec.role == "target":
            out.append(target_expr(schema).alias(spec.name))
        else:
            out.append(F.col(typed_name(spec.name)).cast(SPARK_TYPES[spec.type]).alias(spec.name))
    return out


def conform_subscribers(raw: DataFrame, schema: DatasetSchema, key: bytes,
                        where: str = "raw snapshot", projection: list[Column] | None = None,
                        extra_rules: Sequence[Rule] = ()) -> ConformResult:
    """Conform a raw all-strings snapshot; enforces rows_in == curated + quarantined.

    `projection` replaces the curated columns (default `curated_projection`) and `extra_rules`
    add feed-specific checks to the gate: the labels feed (etl/labels.py) uses both.
    """
    aligned, dropped = align_columns(raw, schema, where)
    target_expr(schema)  # fail fast on an unusable positive label
    files = raw.inputFiles()
    text_lines = count_lines(raw.sparkSession, files) if files else None
    typed, flags = typed_frame(aligned, schema)
    ok = F.col(CODES_COLUMN).isNull()
    aggs = {f: F.sum(F.when(F.col(f) & ok, 1).otherwise(0)) for f in flags}
    aggs.update({
        BREAKS_COLUMN: F.sum(BREAKS_COLUMN),
        INNER_BLANK_COLUMN: F.sum(INNER_BLANK_COLUMN),
        "multiline_records": F.sum(F.when(F.col(BREAKS_COLUMN) > 0, 1).otherwise(0)),
    })
    result: QualityResult = gate(typed, schema, projection or curated_projection(schema, key), where,
                                 rows_in=None if text_lines else raw.count(), extra_aggs=aggs,
                                 extra_rules=extra_rules)
    lines = None
    if text_lines is not None:
        try:
            lines = account_lines(text_lines, len(files), result, where)
        except EtlError:
            result.annotated.unpersist()
            raise
    return ConformResult(
        curated=result.curated,
        quarantined=result.quarantined,
        rows_in=result.rows_in,
        rows_curated=result.rows_curated,
        rows_quarantined=result.rows_quarantined,
        dropped_columns=dropped,
        null_fills={f.removeprefix("__filled__"): result.extras[f] for f in flags},
        failures_by_column=result.failures_by_column,
        annotated=result.annotated,
        failures_by_rule=result.failures_by_rule,
        lines=lines,
    )


def count_lines(spark: SparkSession, files: Sequence[str]) -> tuple[int, int]:
    """(lines, empty lines) of the files as plain text: one cheap pass, no CSV parsing."""
    row = spark.read.text(list(files)).agg(
        F.count(F.lit(1)).alias("lines"),
        F.sum(F.when(F.col("value") == "", 1).otherwise(0)).alias("empty"),
    ).first()
    assert row is not None
    return int(row["lines"] or 0), int(row["empty"] or 0)


def account_lines(text_lines: tuple[int, int], files: int, result: QualityResult, where: str) -> LineAccount:
    """Check lines = headers + blank lines + records + breaks inside records (see module docstring)."""
    lines, empty = text_lines
    breaks, inner_blank = result.extras[BREAKS_COLUMN], result.extras[INNER_BLANK_COLUMN]
    blank = empty - inner_blank
    records = result.rows_in
    if lines != files + blank + records + breaks:
        raise EtlError(
            f"{where}: the CSV reader found {records} record(s) spanning {records + breaks} line(s), but the "
            f"file has {lines} line(s) = {files} header + {blank} blank + {lines - files - blank} other; "
            "the file most likely ends inside an unterminated quoted field")
    return LineAccount(files, lines, blank, result.extras["multiline_records"])
