"""SageMaker Processing step: drift baseline of the training features, in Model Monitor's format.

    python -m training_jobs.baseline --input-data /opt/ml/processing/input/train \
        --schema /opt/ml/processing/input/schema/schema.yaml --output-dir /opt/ml/processing/baseline

Reads the training split preprocess wrote and describes each raw feature the endpoint receives
(the schema's raw_feature_columns) with pandas:
  statistics.json   dataset item_count; per feature num_present/num_missing, numeric mean, sum, std_dev,
                    min, max and a KLL-style distribution (10 equal-width buckets and a sketch of at most
                    2,048 ordered values), string distinct_count and value counts
  constraints.json  per feature inferred type, completeness, is_non_negative / the observed domain,
                    and Model Monitor's default monitoring_config
The model registry keeps both as the package's drift-check baselines (DriftCheckBaselines.ModelDataQuality).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.schema import SchemaError, load_schema
from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job
from training_jobs.splits import read_split

PROCESSING = "/opt/ml/processing"
HISTOGRAM_BUCKETS = 10
SKETCH_K = 2048  # KLL parameters Model Monitor writes; a sketch holds at most k values per level
SKETCH_C = 0.64
MONITORING_CONFIG = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    "datatype_check_threshold": 1.0,
    "domain_content_threshold": 1.0,
    "distribution_constraints": {"perform_comparison": "Enabled", "comparison_threshold": 0.1,
                                 "comparison_method": "Robust"},
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input-data", default=f"{PROCESSING}/input/train",
                    help="the training split written by preprocess (CSV dir or file)")
    ap.add_argument("--schema", default=f"{PROCESSING}/input/schema/schema.yaml")
    ap.add_argument("--output-dir", default=f"{PROCESSING}/baseline")
    return ap.parse_args(argv)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def numeric_feature(name: str, values: pd.Series) -> tuple[dict[str, Any], dict[str, Any]]:
    present = values.dropna()
    count, missing = int(present.size), int(values.size - present.size)
    integral = count > 0 and bool((present % 1 == 0).all())
    kind = "Integral" if integral else "Fractional"
    stats: dict[str, Any] = {"common": {"num_present": count, "num_missing": missing}}
    if count:
        low, high = float(present.min()), float(present.max())
        edges = np.linspace(low, high, HISTOGRAM_BUCKETS + 1) if high > low else np.array([low, high])
        counts = pd.cut(present, bins=edges, include_lowest=True).value_counts(sort=False).tolist()
        ordered = present.sort_values().to_numpy()
        if ordered.size > SKETCH_K:  # evenly spaced order statistics stand for the rest
            ordered = ordered[np.linspace(0, ordered.size - 1, SKETCH_K).round().astype(int)]
        stats.update(
            mean=float(present.mean()), sum=float(present.sum()), std_dev=float(present.std(ddof=0)),
            min=_number(low), max=_number(high),
            distribution={"kll": {
                "buckets": [{"lower_bound": float(lo), "upper_bound": float(hi), "count": float(n)}
                            for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)],
                "sketch": {"parameters": {"c": SKETCH_C, "k": float(SKETCH_K)},
                           "data": [[float(v) for v in ordered]]},
            }},
        )
    statistics = {"name": name, "inferred_type": kind, "numerical_statistics": stats}
    constraint: dict[str, Any] = {"name": name, "inferred_type": kind, "completeness": _share(count, values.size)}
    if count:
        constraint["num_constraints"] = {"is_non_negative": bool(present.min() >= 0)}
    return statistics, constraint


def string_feature(name: str, values: pd.Series) -> tuple[dict[str, Any], dict[str, Any]]:
    present = values.dropna().astype(str)
    counts = present.value_counts().sort_index()
    count, missing = int(present.size), int(values.size - present.size)
    statistics = {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": count, "num_missing": missing},
            "distinct_count": float(counts.size),
            "distribution": {"categorical": {"buckets": [{"value": str(v), "count": float(n)}
                                                         for v, n in counts.items()]}},
        },
    }
    constraint = {"name": name, "inferred_type": "String", "completeness": _share(count, values.size),
                  "string_constraints": {"domains": [str(v) for v in counts.index]}}
    return statistics, constraint


def _share(part: int, whole: int) -> float:
    return float(part) / whole if whole else 0.0


def describe_features(frame: pd.DataFrame, numeric: list[str], strings: list[str]
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(statistics.json, constraints.json) of `frame`'s columns, numeric ones first as the schema lists them."""
    described = [numeric_feature(c, frame[c].astype(float)) for c in numeric]
    described += [string_feature(c, frame[c]) for c in strings]
    statistics = {"version": 0.0, "dataset": {"item_count": len(frame)}, "features": [s for s, _ in described]}
    constraints = {"version": 0.0, "features": [c for _, c in described], "monitoring_config": MONITORING_CONFIG}
    return statistics, constraints


def run(args: argparse.Namespace) -> dict[str, Any]:
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    frame, _ = read_split(args.input_data, schema)
    if frame.empty:
        raise JobError(f"{args.input_data}: the training split has no rows")
    numeric = list(schema.numeric_columns)
    strings = [c for c in schema.raw_feature_columns if c not in numeric]
    statistics, constraints = describe_features(frame, numeric, strings)
    out = Path(args.output_dir)
    write_json(out / "statistics.json", statistics)
    write_json(out / "constraints.json", constraints)
    return statistics


def describe(args: argparse.Namespace) -> str:
    statistics = run(args)
    return f"{statistics['dataset']['item_count']} rows, {len(statistics['features'])} features -> {args.output_dir}"


def main(argv: list[str] | None = None) -> int:
    return run_job("baseline", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
