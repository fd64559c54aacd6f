"""Conform step of the twin: the ETL helper's `run_lake_locally` (Spark), or a documented fallback.

The fallback (pandas, used only when `training_jobs.etl.local_run` is not importable) produces
the same feature-table shape - pseudonymised id, typed features, target 0/1, snapshot_date,
usage_* columns (null: no CDR aggregation) - but none of the lake's data-quality gates.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training_jobs.common import JobError, normalise_features, read_table, target_vector
from training_jobs.schema import DatasetSchema, load_schema

DEV_KEY = b"local-twin-development-key-not-a-secret"


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
        from training_jobs.etl.local_run import run_lake_locally
    except ImportError:
        return _fallback(raw_csv, load_schema(schema_path), out_dir, cdr_path, snapshot_date)
    from training_jobs.etl import EtlError

    try:
        res = run_lake_locally(raw_csv, schema_path, out_dir, cdr_path=cdr_path, snapshot_date=snapshot_date)
    except EtlError as exc:
        raise JobError(f"conform (lake job): {exc}") from None
    return ConformOutcome("spark (training_jobs.etl.local_run)", Path(res.features_path), int(res.rows_in),
                          int(res.rows_curated), int(res.rows_quarantined),
                          None if res.usage_subscribers is None else int(res.usage_subscribers))


def _fallback(raw_csv: Path, schema: DatasetSchema, out_dir: Path, cdr_path: Path | None,
              snapshot_date: str) -> ConformOutcome:
    if cdr_path is not None:
        raise JobError("--cdr needs the Spark lake job (training_jobs.etl.local_run), which is not installed")
    raw = read_table(raw_csv)
    where = str(raw_csv)
    y = target_vector(raw, schema, where)
    feats = normalise_features(raw, schema, where)
    for c in schema.numeric_columns:
        fill = None if schema.usage and c in schema.usage.features else schema.column(c).null_fill
        if fill is None:
            continue
        if fill.when_column not in feats:
            continue
        when = feats[fill.when_column]
        ok = feats[c].isna() & when.notna()
        if fill.when_min is not None:
            ok &= when >= fill.when_min
        if fill.when_max is not None:
            ok &= when <= fill.when_max
        feats.loc[ok, c] = float(fill.value)
    ids = feats[schema.id_column].astype(str)
    feats[schema.id_column] = [hmac.new(DEV_KEY, v.strip().encode(), hashlib.sha256).hexdigest() for v in ids]
    for c in schema.boolean_columns:
        spec = schema.column(c)
        feats[c] = feats[c].map({spec.true_values[0]: True, spec.false_values[0]: False})
    feats[schema.target_column] = y.astype(np.int32)
    feats["snapshot_date"] = snapshot_date
    out = out_dir / "features"
    out.mkdir(parents=True, exist_ok=True)
    feats.to_parquet(out / "part-00000.parquet", index=False)
    return ConformOutcome("pandas fallback (training_jobs.etl.local_run not importable)", out,
                          len(raw), len(feats), 0, None)
