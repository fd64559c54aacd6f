"""The erased-subscriber suppression list: what stops a re-conformed old snapshot bringing an erased
subscriber back.

One empty object per erased subscriber, named by its pseudonym, under one prefix of the curated zone
(`_suppression/` as the stack wires it; the leading underscore keeps it out of table reads):
the erasure job adds the pseudonym it erased (etl/erasure.py --suppression_uri), the conform and labels
jobs read the list and drop every row whose pseudonymised id is on it (counted as `rows_suppressed`).
One object per id: adding is idempotent and two erasures never race on a shared file. The list holds
pseudonyms (keyed hashes), never clear ids, and is kept for as long as old raw snapshots may be
re-conformed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from etl import EtlError
from etl.lake_io import is_s3, join, write_text

PSEUDONYM = re.compile(r"^[0-9a-f]{64}$")


def add(base: str, pseudonym: str) -> str:
    """Put `pseudonym` on the list at `base`; returns the marker's URI."""
    if not PSEUDONYM.match(pseudonym):
        raise EtlError("suppression list: only a pseudonymised id (64 lowercase hex characters) is listed")
    uri = join(base, pseudonym)
    write_text(uri, "")
    return uri


def read(base: str) -> frozenset[str]:
    """Every pseudonym on the list at `base` (empty when the prefix holds nothing yet); any other name fails."""
    names = _s3_names(base) if is_s3(base) else _local_names(base)
    bad = sorted(n for n in names if not PSEUDONYM.match(n))
    if bad:
        raise EtlError(f"suppression list {base}: {len(bad)} entries are not pseudonyms, e.g. '{bad[0][:80]}'")
    return frozenset(names)


def _local_names(base: str) -> list[str]:
    folder = Path(base.removeprefix("file://"))
    return [p.name for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []


def _s3_names(base: str) -> list[str]:
    import boto3

    bucket, _, key = base.split("://", 1)[1].partition("/")
    prefix = key.rstrip("/") + "/"
    names: list[str] = []
    pages: Any = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        names += [obj["Key"][len(prefix) :] for obj in page.get("Contents", [])]
    return [n for n in names if n and "/" not in n]


def drop_suppressed(df: Any, column: str, suppressed: frozenset[str]) -> tuple[Any, int]:
    """(`df` without the rows whose `column` is on the list, how many rows that removed)."""
    if not suppressed:
        return df, 0
    spark = df.sparkSession
    listed = spark.createDataFrame([(p,) for p in sorted(suppressed)], [column])
    from pyspark.sql import functions as F

    hits = int(df.join(F.broadcast(listed), on=column, how="left_semi").count())
    return df.join(F.broadcast(listed), on=column, how="left_anti"), hits
