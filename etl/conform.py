"""Conform a raw subscriber snapshot: enforce the schema, type, fill, gate, pseudonymise.

Input: the raw snapshot as landed (CSV with a header row), read with every column as a
string (`read_raw_snapshot`). Output (`conform_subscribers`): curated rows - one typed
column per declared column, PII columns replaced by their keyed hash, the target as
integer 1/0 - and quarantined rows carrying their original raw strings plus `dq_reason`.

Schema enforcement:
  * a declared column missing from the header -> EtlError naming the columns and the file;
  * a header column that is not declared -> dropped with a logged warning and listed in
    the result's `dropped_columns` (BSS exports often grow columns; new columns must be
    declared in the schema before they are used);
  * a duplicated header name -> EtlError;
  * a row whose field count differs from the header -> quarantined
    (`row: malformed CSV record ...`) with the raw line in `dq_raw_record`.

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
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from dataset.schema import ColumnSpec, DatasetSchema
from etl import EtlError
from etl.pseudonymise import hmac_hex_col
from etl.quality import (
    CORRUPT_COLUMN,
    QualityResult,
    gate,
    typed_name,
)

log = logging.getLogger(__name__)

TARGET_TYPE = T.IntegerType()

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
        }


def read_raw_snapshot(spark: SparkSession, path: str) -> DataFrame:
    """Read a raw CSV snapshot with every header column as a string.

    Rows whose field count differs from the header keep their raw line in the internal
    corrupt-record column, so the quality gate can quarantine them instead of Spark
    silently padding or truncating them. Quoting follows RFC 4180 (as pandas and most BSS
    exports write); one record per line (embedded newlines are not supported).
    """
    try:
        header = spark.read.option("header", "true").option("escape", '"').csv(path).columns
    except Exception as exc:  # AnalysisException: path does not exist, etc.
        raise EtlError(f"cannot read raw snapshot {path}: {exc}") from exc
    if not header:
        raise EtlError(f"raw snapshot {path} has no header row")
    struct = T.StructType(
        [T.StructField(name, T.StringType(), True) for name in header]
        + [T.StructField(CORRUPT_COLUMN, T.StringType(), True)]
    )
    return (
        spark.read.option("header", "true")
        .option("escape", '"')  # RFC 4180: a quote inside a quoted field is doubled
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
        .option("enforceSchema", "true")
        .schema(struct)
        .csv(path)
    )


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
               else F.lit(None).cast("string")).alias(CORRUPT_COLUMN)
    return raw.select(*cols, corrupt), dropped


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
                        where: str = "raw snapshot") -> ConformResult:
    """Conform a raw all-strings snapshot; enforces rows_in == curated + quarantined."""
    aligned, dropped = align_columns(raw, schema, where)
    target_expr(schema)  # fail fast on an unusable positive label
    rows_in = raw.count()
    typed, flags = typed_frame(aligned, schema)
    result: QualityResult = gate(typed, schema, curated_projection(schema, key), where, rows_in)
    null_fills: dict[str, int] = {}
    if flags:
        row = result.annotated.agg(
            *[F.sum(F.when(F.col(f) & F.col("dq_reason").isNull(), 1).otherwise(0)).alias(f)
              for f in flags]
        ).first()
        assert row is not None
        null_fills = {f.removeprefix("__filled__"): int(row[f] or 0) for f in flags}
    return ConformResult(
        curated=result.curated,
        quarantined=result.quarantined,
        rows_in=result.rows_in,
        rows_curated=result.rows_curated,
        rows_quarantined=result.rows_quarantined,
        dropped_columns=dropped,
        null_fills=null_fills,
        failures_by_column=result.failures_by_column,
        annotated=result.annotated,
    )
