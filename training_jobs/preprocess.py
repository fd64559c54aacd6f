"""SageMaker Processing step: feature table -> stratified train/validation/test + fitted transformer.

    python -m training_jobs.preprocess --input-data /opt/ml/processing/input/features \
        --schema /opt/ml/processing/input/schema/schema.yaml --output-dir /opt/ml/processing/output

Writes under --output-dir:
  train/data.csv, validation/data.csv, test/data.csv   id, raw feature columns, target 0/1
                                                      (with --shards N: part-0000i-of-0000N.csv each)
  transformer/transformer.json + transformer/schema.yaml   fitted on train only
  baseline/statistics.json                            per-feature training statistics (drift baseline)
  baseline/train_features.csv                         raw training features (Model Monitor baseline input)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.schema import DatasetSchema, SchemaError, load_schema
from serving.transform import FeatureTransformer, TransformError
from training_jobs.artifacts import copy_schema, write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job
from training_jobs.splits import MAX_SHARDS, normalise_features, read_table, target_vector, write_split

PROCESSING = "/opt/ml/processing"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--input-data", default=f"{PROCESSING}/input/features", help="feature table: Parquet dir/file or CSV dir/file"
    )
    ap.add_argument("--schema", default=f"{PROCESSING}/input/schema/schema.yaml")
    ap.add_argument("--output-dir", default=f"{PROCESSING}/output")
    ap.add_argument("--validation-fraction", type=float, default=0.15)
    ap.add_argument("--test-fraction", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument(
        "--shards", type=int, default=1, help="files per split, for S3-sharded distributed training (ShardedByS3Key)"
    )
    args = ap.parse_args(argv)
    if not 1 <= args.shards <= MAX_SHARDS:
        ap.error(f"--shards must be in 1..{MAX_SHARDS}, got {args.shards}")
    for name in ("validation_fraction", "test_fraction"):
        v = getattr(args, name)
        if not 0.0 < v < 0.5:
            ap.error(f"--{name.replace('_', '-')} must be in (0, 0.5), got {v}")
    if args.validation_fraction + args.test_fraction >= 0.8:
        ap.error("--validation-fraction + --test-fraction must leave at least 20% for training")
    return args


def stratified_split(
    y: np.ndarray, val_frac: float, test_frac: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded split preserving the positive rate in every part; returns sorted index arrays."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for cls in (0, 1):
        idx = np.nonzero(y == cls)[0]
        rng.shuffle(idx)
        n_test = round(len(idx) * test_frac)
        n_val = round(len(idx) * val_frac)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    train, val, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, val, test


def feature_statistics(frame: pd.DataFrame, schema: DatasetSchema) -> dict[str, Any]:
    """Training-data baseline for drift monitoring: one entry per raw feature."""
    stats: dict[str, Any] = {"rows": len(frame), "features": {}}
    for c in schema.numeric_columns:
        v = frame[c].to_numpy(dtype=np.float64)
        f = v[np.isfinite(v)]
        q = np.quantile(f, [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]).tolist() if f.size else []
        stats["features"][c] = {
            "kind": "numeric",
            "missing_fraction": float(1 - f.size / max(len(v), 1)),
            "mean": float(f.mean()) if f.size else None,
            "std": float(f.std()) if f.size else None,
            "min": float(f.min()) if f.size else None,
            "max": float(f.max()) if f.size else None,
            "quantiles": dict(zip(["p01", "p05", "p25", "p50", "p75", "p95", "p99"], q, strict=False)),
        }
    for c in schema.categorical_columns:
        counts = frame[c].value_counts(dropna=False)
        n = max(len(frame), 1)
        stats["features"][c] = {"kind": "categorical", "frequencies": {str(k): float(v) / n for k, v in counts.items()}}
    for c in schema.boolean_columns:
        col = frame[c]
        true_tok = schema.column(c).true_values[0]
        stats["features"][c] = {
            "kind": "boolean",
            "missing_fraction": float(col.isna().mean()),
            "true_fraction": float((col == true_tok).mean()),
        }
    return stats


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    raw = read_table(args.input_data)
    if raw.empty:
        raise JobError(f"{args.input_data}: input has no rows")
    where = str(args.input_data)
    y = target_vector(raw, schema, where)
    feats = normalise_features(raw, schema, where)
    if y.sum() < 3 or (1 - y).sum() < 3:
        raise JobError(
            f"{where}: need at least 3 rows of each class to split, got "
            f"{int(y.sum())} positive / {int((1 - y).sum())} negative"
        )
    tr, va, te = stratified_split(y, args.validation_fraction, args.test_fraction, args.seed)
    out = Path(args.output_dir)
    data = feats.copy()
    data[schema.target_column] = y
    for name, idx in (("train", tr), ("validation", va), ("test", te)):
        write_split(data.iloc[idx], out / name, y[idx], args.shards)
    try:
        transformer = FeatureTransformer.fit(feats.iloc[tr], schema)
    except TransformError as exc:
        raise JobError(f"{where}: {exc}") from None
    transformer.save(out / "transformer" / "transformer.json")
    copy_schema(schema, out / "transformer")
    write_json(out / "baseline" / "statistics.json", feature_statistics(feats.iloc[tr], schema))
    feats.iloc[tr][schema.raw_feature_columns].to_csv(out / "baseline" / "train_features.csv", index=False)
    summary = {
        "rows": len(raw),
        "train": len(tr),
        "validation": len(va),
        "test": len(te),
        "shards": args.shards,
        "positive_rate": float(y.mean()),
        "n_features": transformer.n_features,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
    }
    write_json(out / "preprocess_summary.json", summary)
    return summary


def describe(args: argparse.Namespace) -> str:
    summary = run(args)
    return (
        f"{summary['rows']} rows -> train {summary['train']}, validation {summary['validation']}, "
        f"test {summary['test']}; {summary['n_features']} model features"
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("preprocess", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
