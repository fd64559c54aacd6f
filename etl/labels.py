"""AWS Glue job (and local run): conform one raw churn-labels batch into the lake table churn_labels.

Arguments (Glue passes them as --name value; unknown ones such as --JOB_NAME are ignored):
  --schema_uri                 the labels schema (dataset/schemas/churn_labels.yaml, or its JSON);
                               must match the labels contract (dataset/schema_labels.py)
  --input_uri                  ONE raw CSV object under labels/ingest_date=YYYY-MM-DD/; the ingest
                               date becomes the batch's label_date (not after today, UTC)
  --labels_uri                 labels Parquet base; writes <labels_uri>/label_date=D/
  --quarantine_uri             quarantine Parquet base; writes <quarantine_uri>/label_date=D/
  --pseudonymisation_secret_id Secrets Manager secret holding the HMAC key (optional)
  --allow_dev_key              true: without a secret id, use the public development key (local only)
  --suppression_uri            optional: the erased-subscriber suppression list (etl/suppression.py); rows
                               of a listed pseudonym are dropped and counted (rows_suppressed)
  --ground_truth_uri           optional: also write the batch as Model Monitor ground truth under this
                               prefix (monitoring/<endpoint>/ground-truth/, engine model_monitor)

The batch goes through the subscriber ETL's machinery unchanged (etl/preflight.py header checks,
etl/conform.py reading, strict typing and line accounting, etl/quality.py gate and quarantine with
`dq_codes`/`dq_reason`), with the labels schema's rules - subscriber_id not null, at most 128
characters and unique in the batch, churned a boolean token, observed_at a valid yyyy-MM-dd - plus
these feed rules:
  FUTURE:observed_at     `observed_at: 2026-12-01 is after the batch's label_date 2026-11-27`
  FORMAT:inference_id    `inference_id: 'x' is not <subscriber id's first 53 characters>:<YYYY-MM-DD>`
                         (an InferenceId: dataset/inference_ids.py, at most 64 characters)
  MISMATCH:inference_id  `inference_id: names another subscriber than this row's subscriber_id`
  TYPE:inference_id      `inference_id: scoring date '2026-02-30' is not a valid date`
  FUTURE:inference_id    `inference_id: scoring date 2026-12-01 is after the batch's label_date ...`

Duplicates: a subscriber appears at most once per batch. Every row of a subscriber that appears
more than once is quarantined (`UNIQUE:subscriber_id`), none is kept - as for subscriber
snapshots: a file gives no reliable order, so "latest wins" would pick a copy by accident.
Across batches nothing is overwritten: each batch is its own label_date partition, and a re-delivered
batch (same ingest date) replaces that partition only.

Curated rows: subscriber_id as the keyed hash (the same key and function as the subscriber ETL, so
labels join curated, features, scores and captured InferenceIds), churned boolean, observed_at date,
inference_id string (null when absent). Invariant rows_in = labelled + quarantined, checked on the
counts and again on the Parquet written; summary at <labels_uri>/_runs/label_date=D/labels_summary.json.
Exit status: 0 ok, 1 invariant broken, 2 bad input/arguments.

Ground truth for Model Monitor (with --ground_truth_uri): every labelled row that has an InferenceId becomes
one line of `<ground_truth_uri>/<yyyy>/<mm>/<dd>/00/churn-labels-<label_date>.jsonl`, the label_date's
folder (the date the labels were collected, as Model Monitor's merge expects), in Model Monitor's
ground-truth format:
  {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference_id>"},
   "eventVersion": "0"}
"1" churned, "0" not; Model Monitor merges a line with the captured request whose InferenceId equals the
eventId. Rows without an InferenceId cannot be merged: they are counted in the summary
(`ground_truth.without_inference_id`), not written. The object is written after the curated partition
has been checked; a re-delivered batch replaces it, as it replaces the partition.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F

from dataset import inference_ids
from dataset.schema import DatasetSchema
from dataset.schema_labels import (
    CHURNED,
    INFERENCE_ID,
    LABEL_PARTITION,
    OBSERVED_AT,
    SUBSCRIBER_ID,
    labels_contract,
)
from etl import EtlError, InvariantError
from etl.conform import conform_subscribers, read_raw_snapshot
from etl.lake_io import (
    is_s3,
    job_main,
    join,
    load_schema_uri,
    parse_bool,
    snapshot_date_from_uri,
    write_json,
)
from etl.preflight import preflight_snapshot
from etl.pseudonymise import hmac_hex_col, resolve_key
from etl.quality import Rule, shown, typed_name
from etl.spark_session import apply_runtime_conf, local_spark
from etl.suppression import drop_suppressed
from etl.suppression import read as read_suppression_list

RAW_LABELS_PREFIX = "labels/"
_INFERENCE_ID_RE = r"^(.+):([0-9]{4}-[0-9]{2}-[0-9]{2})$"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="labels", description="Conform a raw churn-labels batch")
    p.add_argument("--schema_uri", required=True)
    p.add_argument("--input_uri", required=True)
    p.add_argument("--labels_uri", required=True)
    p.add_argument("--quarantine_uri", required=True)
    p.add_argument("--pseudonymisation_secret_id", default=None)
    p.add_argument("--allow_dev_key", default="false")
    p.add_argument("--ground_truth_uri", default=None)
    p.add_argument("--suppression_uri", default=None)
    args, _unknown = p.parse_known_args(argv)
    return args


def label_date_of(input_uri: str, today: date | None = None) -> str:
    """The batch's label_date: the ingest_date of its raw key, refused when it lies in the future."""
    label_date = snapshot_date_from_uri(input_uri)
    today = today or datetime.now(UTC).date()
    if date.fromisoformat(label_date) > today:
        raise EtlError(
            f"--input_uri {input_uri}: ingest_date {label_date} is in the future (today is {today.isoformat()} UTC)"
        )
    return label_date


def pseudonymised_id(schema: DatasetSchema, key: bytes) -> Column:
    """The subscriber id as the lake stores it: the keyed hash when the schema marks it pii."""
    if schema.column(SUBSCRIBER_ID).pii:
        return hmac_hex_col(SUBSCRIBER_ID, key)
    return F.col(typed_name(SUBSCRIBER_ID))


def feed_rules(schema: DatasetSchema, key: bytes, label_date: str) -> list[Rule]:
    """The labels feed's checks beyond its schema (module docstring), in message order."""
    batch = F.lit(label_date).cast("date")
    observed = F.col(typed_name(OBSERVED_AT))
    raw = F.trim(F.col(INFERENCE_ID))
    present = raw.isNotNull() & (raw != "")
    well_formed = present & raw.rlike(_INFERENCE_ID_RE) & (F.length(raw) <= inference_ids.MAX_LENGTH)
    owner = F.regexp_extract(raw, _INFERENCE_ID_RE, 1)
    scored_text = F.regexp_extract(raw, _INFERENCE_ID_RE, 2)
    scored = scored_text.cast("date")  # non-ANSI cast: null for 2026-02-30
    subscriber = F.col(typed_name(SUBSCRIBER_ID))
    return [
        Rule(
            "FUTURE",
            OBSERVED_AT,
            observed > batch,
            F.concat(
                F.lit(f"{OBSERVED_AT}: "),
                observed.cast("string"),
                F.lit(f" is after the batch's {LABEL_PARTITION} {label_date}"),
            ),
        ),
        Rule(
            "FORMAT",
            INFERENCE_ID,
            present & ~well_formed,
            F.concat(
                F.lit(f"{INFERENCE_ID}: '"),
                shown(raw),
                F.lit(f"' is not <subscriber id's first {inference_ids.SUBSCRIBER_CHARS} characters>:<YYYY-MM-DD>"),
            ),
        ),
        Rule(
            "MISMATCH",
            INFERENCE_ID,
            well_formed
            & subscriber.isNotNull()
            & (owner != F.substring(pseudonymised_id(schema, key), 1, inference_ids.SUBSCRIBER_CHARS)),
            F.lit(f"{INFERENCE_ID}: names another subscriber than this row's {SUBSCRIBER_ID}"),
        ),
        Rule(
            "TYPE",
            INFERENCE_ID,
            well_formed & scored.isNull(),
            F.concat(F.lit(f"{INFERENCE_ID}: scoring date '"), scored_text, F.lit("' is not a valid date")),
        ),
        Rule(
            "FUTURE",
            INFERENCE_ID,
            well_formed & (scored > batch),
            F.concat(
                F.lit(f"{INFERENCE_ID}: scoring date "),
                scored_text,
                F.lit(f" is after the batch's {LABEL_PARTITION} {label_date}"),
            ),
        ),
    ]


def labels_projection(schema: DatasetSchema, key: bytes) -> list[Column]:
    """The labels contract columns, in table order (label_date is the partition directory)."""
    return [
        pseudonymised_id(schema, key).alias(SUBSCRIBER_ID),
        F.col(typed_name(CHURNED)).cast("boolean").alias(CHURNED),
        F.col(typed_name(OBSERVED_AT)).cast("date").alias(OBSERVED_AT),
        F.col(typed_name(INFERENCE_ID)).cast("string").alias(INFERENCE_ID),
    ]


def partition_of(base: str, label_date: str) -> str:
    return join(base, f"{LABEL_PARTITION}={label_date}")


def run(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    """Run the job; returns the run summary. Raises EtlError/SchemaError/InvariantError."""
    started = time.time()
    args = parse_args(argv)
    schema = labels_contract(load_schema_uri(args.schema_uri)).schema
    label_date = label_date_of(args.input_uri)
    header = preflight_snapshot(schema, args.input_uri)
    key, key_source = resolve_key(args.pseudonymisation_secret_id, parse_bool(args.allow_dev_key, "--allow_dev_key"))

    suppressed_ids = read_suppression_list(args.suppression_uri) if args.suppression_uri else frozenset()
    spark = apply_runtime_conf(spark or SparkSession.builder.getOrCreate())
    raw = read_raw_snapshot(spark, args.input_uri, header.columns)
    result = conform_subscribers(
        raw,
        schema,
        key,
        where=args.input_uri,
        projection=labels_projection(schema, key),
        extra_rules=feed_rules(schema, key, label_date),
    )
    try:
        if result.rows_in == 0:
            raise EtlError(f"{args.input_uri}: labels batch has a header but no data rows")
        labels_at = partition_of(args.labels_uri, label_date)
        quarantine_at = partition_of(args.quarantine_uri, label_date)
        # Erased subscribers stay erased when an old batch is conformed again.
        curated, suppressed = drop_suppressed(result.curated, SUBSCRIBER_ID, suppressed_ids)
        curated.write.mode("overwrite").parquet(labels_at)
        result.quarantined.write.mode("overwrite").parquet(quarantine_at)
    finally:
        result.release()
    written = (int(spark.read.parquet(labels_at).count()), int(spark.read.parquet(quarantine_at).count()))
    if written != (result.rows_curated - suppressed, result.rows_quarantined):
        raise InvariantError(
            f"written rows differ from counted rows: labels {written[0]} vs {result.rows_curated} less "
            f"{suppressed} suppressed, "
            f"quarantined {written[1]} vs {result.rows_quarantined}"
        )
    outputs = {"labels": labels_at, "quarantine": quarantine_at}
    ground_truth = None
    if args.ground_truth_uri:
        ground_truth = write_ground_truth(spark.read.parquet(labels_at), args.ground_truth_uri, label_date)
        outputs["ground_truth"] = ground_truth["uri"]
    summary = {
        "job": "labels",
        "status": "succeeded",
        LABEL_PARTITION: label_date,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
        "input_uri": args.input_uri,
        "key_source": key_source,
        **result.summary(),
        "rows_suppressed": suppressed,
        "outputs": outputs,
        **({"ground_truth": ground_truth} if ground_truth else {}),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.time() - started, 2),
    }
    summary_uri = join(args.labels_uri, "_runs", f"{LABEL_PARTITION}={label_date}", "labels_summary.json")
    write_json(summary_uri, summary)
    return {**summary, "summary_uri": summary_uri}


def ground_truth_key(label_date: str) -> str:
    """Where under the ground-truth prefix a batch's lines go: its label_date's folder, hour 00."""
    year, month, day = label_date.split("-")
    return f"{year}/{month}/{day}/00/churn-labels-{label_date}.jsonl"


def ground_truth_line(inference_id: str, churned: bool) -> str:
    """One record of Model Monitor's ground-truth merge input."""
    return json.dumps(
        {
            "groundTruthData": {"data": "1" if churned else "0", "encoding": "CSV"},
            "eventMetadata": {"eventId": inference_id},
            "eventVersion": "0",
        },
        separators=(",", ":"),
    )


def write_ground_truth_lines(rows: Iterable[tuple[str, bool]], uri: str) -> int:
    """Stream (inference_id, churned) rows to `uri` as JSON lines (S3: one managed upload); the line count."""
    count = 0
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as out:
        for inference_id, churned in rows:
            out.write(ground_truth_line(inference_id, churned) + "\n")
            count += 1
    local = Path(out.name)
    try:
        if is_s3(uri):
            import boto3

            bucket, key = uri.split("://", 1)[1].split("/", 1)
            boto3.client("s3").upload_file(str(local), bucket, key, ExtraArgs={"ContentType": "application/jsonl"})
        else:
            target = Path(uri.removeprefix("file://"))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(local, target)
    finally:
        local.unlink(missing_ok=True)
    return count


def write_ground_truth(labels: Any, ground_truth_uri: str, label_date: str) -> dict[str, Any]:
    """The written partition's labels with an InferenceId, as Model Monitor ground truth (module docstring)."""
    uri = join(ground_truth_uri, ground_truth_key(label_date))
    with_id = F.col(INFERENCE_ID).isNotNull() & (F.trim(F.col(INFERENCE_ID)) != "")
    without = int(labels.where(~with_id).count())
    rows = labels.where(with_id).select(F.trim(F.col(INFERENCE_ID)), CHURNED).toLocalIterator()
    written = write_ground_truth_lines(((str(r[0]), bool(r[1])) for r in rows), uri)
    return {"uri": uri, "records": written, "without_inference_id": without}


@dataclass(frozen=True)
class LocalLabelsRun:
    labels_path: Path
    quarantine_path: Path
    summary: dict[str, Any]


def run_labels_locally(
    raw_csv: Path,
    schema_path: Path,
    out_dir: Path,
    label_date: str,
    spark: SparkSession | None = None,
    ground_truth_dir: Path | None = None,
) -> LocalLabelsRun:
    """Land `raw_csv` at OUT/raw/labels/ingest_date=D/ and run the job with the development key.

    Writes OUT/labels/label_date=D/ and OUT/quarantine_labels/label_date=D/ (as etl/local_run.py
    does for subscriber snapshots), and with `ground_truth_dir` the Model Monitor ground truth there.
    Raises EtlError/SchemaError on bad input.
    """
    raw_csv, out_dir = Path(raw_csv), Path(out_dir)
    if not raw_csv.is_file():
        raise EtlError(f"raw labels batch {raw_csv} not found")
    landing = out_dir / "raw" / RAW_LABELS_PREFIX / f"ingest_date={label_date}"
    landing.mkdir(parents=True, exist_ok=True)
    landed = landing / raw_csv.name
    if raw_csv.resolve() != landed.resolve():
        shutil.copyfile(raw_csv, landed)
    labels, quarantine = out_dir / "labels", out_dir / "quarantine_labels"
    summary = run(
        [
            "--schema_uri",
            str(schema_path),
            "--input_uri",
            str(landed),
            "--labels_uri",
            str(labels),
            "--quarantine_uri",
            str(quarantine),
            "--allow_dev_key",
            "true",
            *(["--ground_truth_uri", str(ground_truth_dir)] if ground_truth_dir is not None else []),
        ],
        spark or local_spark("telecom-ml-local-labels"),
    )
    return LocalLabelsRun(labels, quarantine, summary)


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> int:
    return job_main(
        "labels",
        run,
        lambda s: (
            f"{LABEL_PARTITION} {s[LABEL_PARTITION]}: {s['rows_in']} rows in, "
            f"{s['rows_curated']} labelled, {s['rows_quarantined']} quarantined"
        ),
        argv,
        spark,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
