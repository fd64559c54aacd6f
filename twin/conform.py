"""Conform step of the twin: the lake's own ETL (`etl.local_run`, Spark).

The twin runs exactly the code the Glue jobs run, data-quality gate included; a lake error
becomes a JobError so the twin reports it as bad input rather than a traceback. The outcome
carries the data-quality counts the jobs record in their run summaries, for the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl import EtlError
from etl.local_run import run_lake_locally
from training_jobs.errors import JobError
from twin import numbers as fmt


@dataclass
class ConformOutcome:
    engine: str
    features_path: Path
    rows_in: int
    rows_curated: int
    rows_quarantined: int
    usage_subscribers: int | None
    quality: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        filled = sum(self.quality.get("null_fills", {}).values())
        return (f"{fmt.count(self.rows_in)} rows in: {fmt.count(self.rows_curated)} curated, "
                f"{fmt.count(self.rows_quarantined)} quarantined"
                + (f", {fmt.count(filled)} blanks filled by schema rules" if filled else "")
                + f" ({self.engine})")


def run_conform(raw_csv: Path, schema_path: Path, out_dir: Path, cdr_path: Path | None,
                snapshot_date: str) -> ConformOutcome:
    try:
        res = run_lake_locally(raw_csv, schema_path, out_dir, cdr_path=cdr_path, snapshot_date=snapshot_date)
    except EtlError as exc:
        raise JobError(f"conform (lake job): {exc}") from None
    return ConformOutcome("Spark, the Glue jobs' code", Path(res.features_path), int(res.rows_in),
                          int(res.rows_curated), int(res.rows_quarantined),
                          None if res.usage_subscribers is None else int(res.usage_subscribers),
                          quality_counts(res.conform_summary, res.features_summary))


def quality_counts(conform: dict[str, Any], features: dict[str, Any]) -> dict[str, Any]:
    """What the data-quality gate and the feature job counted (their run summaries)."""
    cdr = features.get("cdr") or {}
    return {
        "failures_by_column": dict(conform.get("failures_by_column", {})),
        "null_fills": {k: int(v) for k, v in conform.get("null_fills", {}).items()},
        "dropped_columns": list(conform.get("dropped_columns", [])),
        "feature_rows": int(features.get("feature_rows", 0)),
        "usage_source": features.get("usage_source", "none"),
        "usage_subscribers_matched": int(features.get("usage_subscribers_matched", 0)),
        "cdr_records_quarantined": int(cdr.get("records_quarantined", 0)) if cdr else None,
        "key_source": conform.get("key_source"),
    }
