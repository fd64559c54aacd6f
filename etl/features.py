"""Training table: curated subscribers joined with CDR usage aggregates.

Columns, in order: the id column, the schema's raw feature columns
(DatasetSchema.raw_feature_columns: categoricals, numerics - usage aggregates included when
the schema has a `usage` section - then booleans), the target (int 1/0) and `snapshot_date`
(string YYYY-MM-DD; the partition column). Types: categoricals string, numerics int or
double as declared (usage counts int, minutes/rates double), booleans boolean.

Usage is joined with a LEFT join on the pseudonymised id: every curated subscriber is kept;
those without CDRs in the window get 0 for every usage feature. If the schema has a `usage`
section but no usage frame is given (no CDR input), every usage feature is 0 and the job
summary says so (`usage_source: none`).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dataset.schema import DatasetSchema
from etl import InvariantError
from etl.cdr_usage import INT_FEATURES
from etl.lake_io import PARTITION


def feature_columns(schema: DatasetSchema) -> list[str]:
    """Output columns of the training table, in order."""
    return [schema.id_column, *schema.raw_feature_columns, schema.target_column, PARTITION]


def _zero(name: str) -> F.Column:
    return F.lit(0).cast("int") if name in INT_FEATURES else F.lit(0.0).cast("double")


def build_features(curated: DataFrame, schema: DatasetSchema, snapshot_date: str,
                   usage: DataFrame | None) -> DataFrame:
    """Select/join the training table for one snapshot (curated rows of that snapshot)."""
    idc = schema.id_column
    base = curated.drop(PARTITION) if PARTITION in curated.columns else curated
    usage_features = list(schema.usage.features) if schema.usage else []
    if usage_features:
        if usage is not None:
            renamed = [F.col(f).alias(f"__u_{f}") for f in usage_features]
            right = usage.select(F.col(idc).alias("__uid"), *renamed)
            joined = base.join(right, base[idc] == right["__uid"], "left")
            fills = [F.coalesce(F.col(f"__u_{f}"), _zero(f)).alias(f) for f in usage_features]
        else:
            joined = base
            fills = [_zero(f).alias(f) for f in usage_features]
        base = joined.select(*[F.col(c) for c in curated.columns if c != PARTITION], *fills)
    cols = []
    for name in feature_columns(schema):
        if name == PARTITION:
            cols.append(F.lit(snapshot_date).alias(PARTITION))
        else:
            cols.append(F.col(name))
    return base.select(*cols)


def check_rows(features_rows: int, curated_rows: int, where: str) -> None:
    if features_rows != curated_rows:
        raise InvariantError(f"{where}: feature rows ({features_rows}) != curated rows ({curated_rows}); "
                             "usage must have at most one row per subscriber")
