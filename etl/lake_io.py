"""Small I/O helpers that work for s3:// URIs (Glue) and local paths (tests, local runs).

Spark reads/writes both natively; these cover the rest: reading the schema file and the
first bytes of a raw object, writing run summaries, listing partitions and deriving the
snapshot date from a raw object key. boto3 is imported only when an s3:// URI is used, and
pyspark only for type hints, so the pre-Spark checks (etl/preflight.py) can use this module.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dataset.schema import DatasetSchema, SchemaError, parse_schema_text
from etl import EtlError, InvariantError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PARTITION = "snapshot_date"
_INGEST = re.compile(r"(?:^|/)ingest_date=([^/]+)(?=/|$)")


def is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri.split("://", 1)[1]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise EtlError(f"bad S3 URI '{uri}'")
    return bucket, key


def join(base: str, *parts: str) -> str:
    out = base.rstrip("/")
    for p in parts:
        out = f"{out}/{p.strip('/')}"
    return out


def partition_uri(base: str, snapshot_date: str) -> str:
    return join(base, f"{PARTITION}={snapshot_date}")


def read_text(uri: str) -> str:
    if is_s3(uri):
        import boto3

        bucket, key = _split_s3(uri)
        try:
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise EtlError(f"cannot read {uri}: {exc}") from exc
        return str(body.decode("utf-8"))
    try:
        return Path(uri.removeprefix("file://")).read_text(encoding="utf-8")
    except OSError as exc:
        raise EtlError(f"cannot read {uri}: {exc}") from exc


def read_head(uri: str, max_bytes: int) -> bytes:
    """The first `max_bytes` bytes of an object (fewer when it is shorter): one ranged GET on S3."""
    try:
        if is_s3(uri):
            import boto3

            bucket, key = _split_s3(uri)
            try:
                response = boto3.client("s3").get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}")
            except Exception as exc:
                if getattr(exc, "response", {}).get("Error", {}).get("Code") == "InvalidRange":
                    return b""  # S3 answers a range request on an empty object with 416
                raise
            return bytes(response["Body"].read())
        with open(uri.removeprefix("file://"), "rb") as fh:
            return fh.read(max_bytes)
    except EtlError:
        raise
    except Exception as exc:
        raise EtlError(f"cannot read raw snapshot {uri}: {exc}") from exc


def write_text(uri: str, text: str) -> None:
    if is_s3(uri):
        import boto3

        bucket, key = _split_s3(uri)
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"),
                                      ContentType="application/json")
        return
    path = Path(uri.removeprefix("file://"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def delete_object(uri: str) -> None:
    """Delete one object (S3) or file (local); a missing one is not an error."""
    if is_s3(uri):
        import boto3

        bucket, key = _split_s3(uri)
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
        return
    Path(uri.removeprefix("file://")).unlink(missing_ok=True)


def write_json(uri: str, obj: dict[str, Any]) -> None:
    write_text(uri, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def load_schema_uri(uri: str) -> DatasetSchema:
    """Schema from S3 or disk; JSON when the name ends in .json, else YAML."""
    try:
        return parse_schema_text(read_text(uri), uri, is_json=uri.lower().endswith(".json"))
    except SchemaError:
        raise
    except EtlError as exc:
        raise SchemaError(str(exc)) from exc


def parse_date(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise EtlError(f"{what}: '{value}' is not a date in YYYY-MM-DD form") from None


def snapshot_date_from_uri(uri: str) -> str:
    """The YYYY-MM-DD of the `ingest_date=` path segment of a raw object URI."""
    found = _INGEST.findall(uri)
    if not found:
        raise EtlError(f"--input_uri {uri}: no 'ingest_date=YYYY-MM-DD' path segment to take the "
                       "snapshot date from")
    if len(set(found)) > 1:
        raise EtlError(f"--input_uri {uri}: conflicting ingest_date segments {found}")
    return parse_date(found[0], f"--input_uri {uri}: ingest_date").isoformat()


def list_partitions(spark: SparkSession, base: str, name: str = PARTITION) -> list[str]:
    """Values of `name=VALUE` sub-directories of `base` (Hadoop FS API: S3 on Glue, local here)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(base)
    fs = path.getFileSystem(conf)
    if not fs.exists(path):
        return []
    values = []
    for status in fs.listStatus(path):
        entry = status.getPath().getName()
        if status.isDirectory() and entry.startswith(f"{name}="):
            values.append(entry.split("=", 1)[1])
    return sorted(values)


def parse_bool(value: str, what: str) -> bool:
    low = value.strip().lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no", ""):
        return False
    raise EtlError(f"{what}: expected true or false, got '{value}'")


def write_run_summary(job: str, base_uri: str, snapshot_date: str, schema: DatasetSchema, started: float,
                      details: dict[str, Any]) -> dict[str, Any]:
    """Record a finished run beside its output, at <base>/_runs/snapshot_date=D/<job>_summary.json."""
    summary = {
        "job": job,
        "status": "succeeded",
        "snapshot_date": snapshot_date,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
        **details,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(time.time() - started, 2),
    }
    summary_uri = join(base_uri, "_runs", f"snapshot_date={snapshot_date}", f"{job}_summary.json")
    write_json(summary_uri, summary)
    summary["summary_uri"] = summary_uri
    return summary


def job_main(job: str, run: Callable[[Sequence[str] | None, SparkSession | None], dict[str, Any]],
             describe: Callable[[dict[str, Any]], str], argv: Sequence[str] | None,
             spark: SparkSession | None) -> int:
    """Entry point contract of every Glue job: 0 ok, 1 invariant broken, 2 bad input or arguments."""
    try:
        summary = run(argv, spark)
    except InvariantError as exc:
        print(f"{job}: INVARIANT FAILED: {exc}", file=sys.stderr)
        return 1
    except (EtlError, SchemaError) as exc:
        print(f"{job}: ERROR: {exc}", file=sys.stderr)
        return 2
    print(f"{job}: {describe(summary)}")
    return 0
