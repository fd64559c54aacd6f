"""AWS Glue job: conform one raw subscriber snapshot and apply the data-quality gate.

Arguments (Glue passes them as --name value; unknown ones such as --JOB_NAME are ignored):
  --schema_uri                 schema file, YAML or JSON (s3:// or local path)
  --input_uri                  ONE raw CSV object; its path must contain ingest_date=YYYY-MM-DD,
                               which becomes the snapshot date
  --curated_uri                curated Parquet base; writes <curated_uri>/snapshot_date=D/
  --quarantine_uri             quarantine Parquet base; writes <quarantine_uri>/snapshot_date=D/
  --pseudonymisation_secret_id Secrets Manager secret holding the HMAC key (optional)
  --allow_dev_key              true: without a secret id, use the public development key
                               (local runs/tests only); default false -> fail
  --suppression_uri            optional: the erased-subscriber suppression list (etl/suppression.py);
                               curated rows of a listed pseudonym are dropped and counted (rows_suppressed)

Before Spark is touched, the schema is loaded and the snapshot's header is checked
(etl/preflight.py: file-level encoding/binary checks, source.rename, repeated or missing
columns), so a wrong file fails in well under a second.

Only the snapshot's own partition is replaced (the job writes to the partition directory,
so other snapshots are untouched and an empty quarantine still clears stale rows). A run
summary (counts, blank lines, null fills, failures by column and by rule) is written to
<curated_uri>/_runs/snapshot_date=D/conform_summary.json (the leading underscore keeps it
out of Spark/pyarrow dataset reads). Exit status: 0 ok, 1 invariant broken, 2 bad
input/arguments.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from pyspark.sql import SparkSession

from etl import EtlError, InvariantError
from etl.conform import conform_subscribers, read_raw_snapshot
from etl.lake_io import (
    job_main,
    load_schema_uri,
    parse_bool,
    partition_uri,
    snapshot_date_from_uri,
    write_run_summary,
)
from etl.preflight import preflight_snapshot
from etl.pseudonymise import resolve_key
from etl.spark_session import apply_runtime_conf
from etl.suppression import drop_suppressed
from etl.suppression import read as read_suppression_list


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="glue_conform", description="Conform a raw subscriber snapshot")
    p.add_argument("--schema_uri", required=True)
    p.add_argument("--input_uri", required=True)
    p.add_argument("--curated_uri", required=True)
    p.add_argument("--quarantine_uri", required=True)
    p.add_argument("--pseudonymisation_secret_id", default=None)
    p.add_argument("--allow_dev_key", default="false")
    p.add_argument("--suppression_uri", default=None)
    args, _unknown = p.parse_known_args(argv)
    return args


def write_partition(df: Any, base: str, snapshot_date: str) -> str:
    """Overwrite exactly one snapshot partition (directory) with `df` as Parquet."""
    target = partition_uri(base, snapshot_date)
    df.write.mode("overwrite").parquet(target)
    return target


def count_parquet(spark: SparkSession, uri: str) -> int:
    return int(spark.read.parquet(uri).count())


def run(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    """Run the job; returns the run summary. Raises EtlError/SchemaError/InvariantError."""
    started = time.time()
    args = parse_args(argv)
    schema = load_schema_uri(args.schema_uri)
    snapshot_date = snapshot_date_from_uri(args.input_uri)
    header = preflight_snapshot(schema, args.input_uri)
    key, key_source = resolve_key(args.pseudonymisation_secret_id,
                                  parse_bool(args.allow_dev_key, "--allow_dev_key"))

    suppressed_ids = read_suppression_list(args.suppression_uri) if args.suppression_uri else frozenset()

    spark = apply_runtime_conf(spark or SparkSession.builder.getOrCreate())
    raw = read_raw_snapshot(spark, args.input_uri, header.columns)
    result = conform_subscribers(raw, schema, key, where=args.input_uri)
    try:
        if result.rows_in == 0:
            raise EtlError(f"{args.input_uri}: snapshot has a header but no data rows")
        # Erased subscribers stay erased when an old snapshot is conformed again.
        curated, suppressed = drop_suppressed(result.curated, schema.id_column, suppressed_ids)
        curated_at = write_partition(curated, args.curated_uri, snapshot_date)
        quarantine_at = write_partition(result.quarantined, args.quarantine_uri, snapshot_date)
    finally:
        result.release()
    written_curated = count_parquet(spark, curated_at)
    written_quarantined = count_parquet(spark, quarantine_at)
    if (written_curated, written_quarantined) != (result.rows_curated - suppressed, result.rows_quarantined):
        raise InvariantError(
            f"written rows differ from counted rows: curated {written_curated} vs {result.rows_curated} "
            f"less {suppressed} suppressed, "
            f"quarantined {written_quarantined} vs {result.rows_quarantined}")

    return write_run_summary("conform", args.curated_uri, snapshot_date, schema, started, {
        "input_uri": args.input_uri,
        "key_source": key_source,
        "renamed_columns": header.renamed,
        **result.summary(),
        "rows_suppressed": suppressed,
        "outputs": {"curated": curated_at, "quarantine": quarantine_at},
    })


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> int:
    return job_main("conform", run, lambda s: (f"snapshot {s['snapshot_date']}: {s['rows_in']} rows in, "
                                               f"{s['rows_curated']} curated, {s['rows_quarantined']} quarantined"),
                    argv, spark)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
