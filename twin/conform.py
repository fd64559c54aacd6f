"""Conform step of the twin: the lake's own ETL (`etl.local_run`, Spark).

The twin runs exactly the code the Glue jobs run, data-quality gate included; a lake error
becomes a JobError so the twin reports it as bad input rather than a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from etl import EtlError
from etl.local_run import run_lake_locally
from training_jobs.errors import JobError


@dataclass
class ConformOutcome:
    engine: str
    features_path: Path
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    usage_subscribers: int | None


def run_conform(raw_csv: Path, schema_path: Path, out_dir: Path, cdr_path: Path | None,
                snapshot_date: str) -> ConformOutcome:
    try:
        res = run_lake_locally(raw_csv, schema_path, out_dir, cdr_path=cdr_path, snapshot_date=snapshot_date)
    except EtlError as exc:
        raise JobError(f"conform (lake job): {exc}") from None
    return ConformOutcome("spark (etl.local_run)", Path(res.features_path), int(res.rows_in),
                          int(res.rows_curated), int(res.rows_quarantined),
                          None if res.usage_subscribers is None else int(res.usage_subscribers))
