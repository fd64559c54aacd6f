"""AWS Glue job: CDR usage aggregation + training feature table for one snapshot.

Arguments (unknown ones such as --JOB_NAME are ignored):
  --schema_uri                 schema file, YAML or JSON (s3:// or local path)
  --curated_uri                curated Parquet base written by the conform job
  --cdr_uri                    raw CDR prefix (newline-delimited JSON, read recursively); optional
  --cdr_quarantine_uri         where bad CDR records go (Parquet, partitioned by snapshot_date);
                               optional, default <features_uri>/_cdr_quarantine
  --features_uri               feature table Parquet base; writes <features_uri>/snapshot_date=D/
  --snapshot_date              YYYY-MM-DD; optional, default the latest curated partition
  --pseudonymisation_secret_id Secrets Manager secret with the HMAC key (needed with --cdr_uri)
  --allow_dev_key              true: without a secret id, use the public development key

The usage window is the schema's usage.window_days full UTC days before the snapshot date.
With --cdr_uri but no `usage` section in the schema, usage is still computed, validated and
counted (window DEFAULT_WINDOW_DAYS) but not joined. A run summary is written to
<features_uri>/_runs/snapshot_date=D/features_summary.json. Exit status: 0 ok, 1 invariant
broken, 2 bad input/arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from dataset.schema import DatasetSchema
from etl import EtlError, InvariantError
from etl import cdr_usage as cu
from etl.features import build_features, check_rows
from etl.glue_conform import count_parquet, write_partition
from etl.lake_io import (
    job_main,
    join,
    list_partitions,
    load_schema_uri,
    parse_bool,
    parse_date,
    partition_uri,
    write_run_summary,
)
from etl.pseudonymise import resolve_key
from etl.spark_session import apply_runtime_conf

log = logging.getLogger(__name__)
DEFAULT_WINDOW_DAYS = 30


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="glue_features", description="Usage aggregation + feature table")
    p.add_argument("--schema_uri", required=True)
    p.add_argument("--curated_uri", required=True)
    p.add_argument("--cdr_uri", default=None)
    p.add_argument("--cdr_quarantine_uri", default=None)
    p.add_argument("--features_uri", required=True)
    p.add_argument("--snapshot_date", default=None)
    p.add_argument("--pseudonymisation_secret_id", default=None)
    p.add_argument("--allow_dev_key", default="false")
    args, _unknown = p.parse_known_args(argv)
    for name in ("cdr_uri", "cdr_quarantine_uri", "snapshot_date", "pseudonymisation_secret_id"):
        if getattr(args, name) is not None and not str(getattr(args, name)).strip():
            setattr(args, name, None)  # Glue cannot pass "no value"; an empty string means absent
    return args


def run(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    started = time.time()
    args = parse_args(argv)
    spark = apply_runtime_conf(spark or SparkSession.builder.getOrCreate())
    schema = load_schema_uri(args.schema_uri)
    snapshot_date = resolve_snapshot_date(spark, args.curated_uri, args.snapshot_date)
    curated = spark.read.parquet(partition_uri(args.curated_uri, snapshot_date))
    curated_rows = curated.count()

    cdr = CdrUsage()
    if args.cdr_uri:
        cdr = cdr_usage(spark, args, schema, snapshot_date)
    elif schema.usage is not None:
        log.warning("schema %s declares usage but no --cdr_uri was given: usage features are 0",
                    schema.path)

    try:
        features = build_features(curated, schema, snapshot_date, cdr.joined)
        features_at = write_partition(features.drop("snapshot_date"), args.features_uri, snapshot_date)
        feature_rows = count_parquet(spark, features_at)
        check_rows(feature_rows, curated_rows, features_at)
        matched = 0
        if cdr.result is not None:
            idc = schema.id_column
            matched = curated.select(idc).join(cdr.result.usage.select(idc), idc, "left_semi").count()
    finally:
        if cdr.result is not None:
            cdr.result.release()

    return write_run_summary("features", args.features_uri, snapshot_date, schema, started, {
        "curated_rows": curated_rows,
        "feature_rows": feature_rows,
        "usage_source": "cdr" if cdr.joined is not None else "none",
        "usage_subscribers": cdr.summary["usage_subscribers"] if cdr.summary else 0,
        "usage_subscribers_matched": matched,
        "cdr": cdr.summary,
        "outputs": {"features": features_at, "cdr_quarantine": cdr.quarantine_at},
    })


def resolve_snapshot_date(spark: SparkSession, curated_uri: str, requested: str | None) -> str:
    """The requested snapshot date (its curated partition must exist), else the latest one."""
    available = list_partitions(spark, curated_uri)
    if requested:
        snapshot_date = parse_date(requested, "--snapshot_date").isoformat()
        if snapshot_date not in available:
            raise EtlError(f"--curated_uri {curated_uri}: no partition snapshot_date={snapshot_date} "
                           f"(found {available})")
        return snapshot_date
    if available:
        parse_date(available[-1], "snapshot_date")  # a partition named like one but not a date
        return available[-1]
    raise EtlError(f"--curated_uri {curated_uri}: no snapshot_date=... partitions found")


@dataclass
class CdrUsage:
    """What the CDR step produced: the aggregation (to release), what is joined, its summary."""

    result: cu.UsageResult | None = None
    joined: DataFrame | None = None
    summary: dict[str, Any] | None = None
    quarantine_at: str | None = None


def cdr_usage(spark: SparkSession, args: argparse.Namespace, schema: DatasetSchema,
              snapshot_date: str) -> CdrUsage:
    """Validate and aggregate the CDRs, write their quarantine (checked against the count)."""
    key, key_source = resolve_key(args.pseudonymisation_secret_id,
                                  parse_bool(args.allow_dev_key, "--allow_dev_key"))
    as_of = parse_date(snapshot_date, "snapshot_date")
    window = schema.usage.window_days if schema.usage else DEFAULT_WINDOW_DAYS
    result = cu.compute_usage(spark, args.cdr_uri, as_of, window, key, schema.id_column)
    qbase = args.cdr_quarantine_uri or join(args.features_uri, "_cdr_quarantine")
    quarantine_at = write_partition(result.quarantined, qbase, snapshot_date)
    written = count_parquet(spark, quarantine_at)
    if written != result.counts["records_quarantined"]:
        result.release()
        raise InvariantError(f"CDR quarantine rows written ({written}) != counted "
                             f"({result.counts['records_quarantined']})")
    summary = {**cu.summary(result, as_of, window), "key_source": key_source,
               "joined": schema.usage is not None}
    if schema.usage is None:
        log.warning("schema %s has no usage section: usage computed and counted but not joined",
                    schema.path)
    return CdrUsage(result, result.usage if schema.usage is not None else None, summary, quarantine_at)


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> int:
    return job_main("features", run, lambda s: (f"snapshot {s['snapshot_date']}: {s['feature_rows']} rows, usage "
                                                f"from {s['usage_source']} ({s['usage_subscribers']} subscribers)"),
                    argv, spark)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
