"""SageMaker Processing step: feature table -> stratified train/validation/test + fitted transformer.

    python -m training_jobs.preprocess --input-data /opt/ml/processing/input/features \
        --schema /opt/ml/processing/input/schema/schema.yaml --output-dir /opt/ml/processing/output

Writes under --output-dir:
  train/data.csv, validation/data.csv, test/data.csv   id, raw feature columns, target 0/1
                                                      (with --shards N: part-0000i-of-0000N.csv each)
  transformer/transformer.json + transformer/schema.yaml   fitted on train only
  baseline/statistics.json                            per-feature training statistics (drift baseline)
  baseline/train_features.csv                         raw training features (Model Monitor baseline input)

The table streams through in chunks of --chunk-rows rows, twice: once for the target alone (the split is
stratified over all rows, so it needs every label first), once for everything else. Memory holds one chunk,
the per-row split and shard numbers, and the training rows' raw features in compact form (a float per
number, a small integer per text value) for fitting the transformer; outputs are the same whatever the
chunk size.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from dataset.schema import DatasetSchema, SchemaError, load_schema
from serving.transform import FeatureTransformer, TransformError
from training_jobs.artifacts import copy_schema, write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job
from training_jobs.splits import (
    MAX_SHARDS,
    SPLIT_FILE,
    iter_table,
    normalise_features,
    shard_file,
    shard_of_rows,
    target_vector,
)

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
    ap.add_argument("--chunk-rows", type=int, default=250_000, help="rows read at a time (memory, not results)")
    args = ap.parse_args(argv)
    if args.chunk_rows < 1:
        ap.error(f"--chunk-rows must be >= 1, got {args.chunk_rows}")
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


def feature_statistics(columns: Mapping[str, pd.Series], rows: int, schema: DatasetSchema) -> dict[str, Any]:
    """Training-data baseline for drift monitoring: one entry per raw feature."""
    stats: dict[str, Any] = {"rows": rows, "features": {}}
    for c in schema.numeric_columns:
        v = columns[c].to_numpy(dtype=np.float64)
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
        counts = columns[c].value_counts(dropna=False)
        n = max(rows, 1)
        stats["features"][c] = {"kind": "categorical", "frequencies": {str(k): float(v) / n for k, v in counts.items()}}
    for c in schema.boolean_columns:
        col = columns[c]
        true_tok = schema.column(c).true_values[0]
        stats["features"][c] = {
            "kind": "boolean",
            "missing_fraction": float(col.isna().mean()),
            "true_fraction": float((col == true_tok).mean()),
        }
    return stats


def read_labels(args: argparse.Namespace, schema: DatasetSchema) -> np.ndarray:
    """Pass 1: the target of every row (0/1), reading only that column."""
    where = str(args.input_data)
    labels = [
        target_vector(chunk, schema, where)
        for chunk in iter_table(args.input_data, args.chunk_rows, [schema.target_column])
    ]
    y = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    if not len(y):
        raise JobError(f"{where}: input has no rows")
    if y.sum() < 3 or (1 - y).sum() < 3:
        raise JobError(
            f"{where}: need at least 3 rows of each class to split, got "
            f"{int(y.sum())} positive / {int((1 - y).sum())} negative"
        )
    return y


class TrainColumns:
    """The training rows' raw feature columns, kept compact while the table streams by: numbers as float64,
    text as pandas categoricals (one small integer per value); `columns()` gives them back as the object
    arrays (None for missing) the in-memory path had."""

    def __init__(self, schema: DatasetSchema):
        self.schema = schema
        self.numeric: dict[str, list[np.ndarray]] = {c: [] for c in schema.numeric_columns}
        self.text: dict[str, list[pd.Categorical]] = {
            c: [] for c in (*schema.categorical_columns, *schema.boolean_columns)
        }
        self.rows = 0

    def add(self, feats: pd.DataFrame) -> None:
        self.rows += len(feats)
        for c, parts in self.numeric.items():
            parts.append(feats[c].to_numpy(dtype=np.float64))
        for c, chunks in self.text.items():
            chunks.append(pd.Categorical(feats[c].to_numpy(dtype=object)))

    def columns(self) -> dict[str, pd.Series]:
        out = {c: pd.Series(np.concatenate(parts), dtype=np.float64) for c, parts in self.numeric.items()}
        for c, chunks in self.text.items():
            merged = union_categoricals(chunks)
            lookup = np.array([*merged.categories, None], dtype=object)  # code -1 -> None
            out[c] = pd.Series(lookup[merged.codes], dtype=object)
            chunks.clear()
        return out


class SplitWriter:
    """Appends rows to each split's shard files, in table order, the header once per file."""

    def __init__(self, out: Path, shards: int):
        self.out, self.shards = out, shards
        self.started: set[Path] = set()

    def path(self, split: str, shard: int) -> Path:
        return self.out / split / (SPLIT_FILE if self.shards == 1 else shard_file(shard, self.shards))

    def prepare(self, splits: dict[str, np.ndarray]) -> None:
        for split, rows in splits.items():
            if self.shards > len(rows):
                raise JobError(f"{split}: {len(rows)} rows cannot fill {self.shards} shards (lower --shards)")
            folder = self.out / split
            folder.mkdir(parents=True, exist_ok=True)
            for stale in [*folder.glob(SPLIT_FILE), *folder.glob("part-*-of-*.csv")]:
                stale.unlink()  # an earlier run's layout must not be read together with this one

    def append(self, path: Path, frame: pd.DataFrame) -> None:
        if frame.empty and path in self.started:
            return
        frame.to_csv(path, mode="a" if path in self.started else "w", header=path not in self.started, index=False)
        self.started.add(path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    where = str(args.input_data)
    y = read_labels(args, schema)
    tr, va, te = stratified_split(y, args.validation_fraction, args.test_fraction, args.seed)
    splits = {"train": tr, "validation": va, "test": te}
    # Where each row goes: its split and, within the split, its shard (dealt class by class).
    split_of = np.empty(len(y), dtype=np.int8)
    shard_of = np.empty(len(y), dtype=np.int32)
    for number, rows in enumerate(splits.values()):
        split_of[rows] = number
        shard_of[rows] = shard_of_rows(y[rows], args.shards)
    out = Path(args.output_dir)
    writer = SplitWriter(out, args.shards)
    writer.prepare(splits)
    (out / "baseline").mkdir(parents=True, exist_ok=True)
    train = TrainColumns(schema)
    # Pass 2: every row normalised, written to its split's shard; the training rows also kept for the fit.
    for chunk in iter_table(args.input_data, args.chunk_rows):
        first = int(chunk.index[0])
        feats = normalise_features(chunk, schema, where, first_row=first)
        rows = np.arange(first, first + len(chunk))
        data = feats.assign(**{schema.target_column: y[rows]})
        for number, split in enumerate(splits):
            in_split = split_of[rows] == number
            for shard in range(args.shards):
                writer.append(writer.path(split, shard), data[in_split & (shard_of[rows] == shard)])
        is_train = split_of[rows] == 0
        train.add(feats[is_train])
        writer.append(out / "baseline" / "train_features.csv", feats.loc[is_train, schema.raw_feature_columns])
    columns = train.columns()
    try:
        transformer = FeatureTransformer.fit(columns, schema)
    except TransformError as exc:
        raise JobError(f"{where}: {exc}") from None
    transformer.save(out / "transformer" / "transformer.json")
    copy_schema(schema, out / "transformer")
    write_json(out / "baseline" / "statistics.json", feature_statistics(columns, train.rows, schema))
    summary = {
        "rows": len(y),
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
