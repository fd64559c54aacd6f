"""SageMaker Processing step (and the twin's detector): drift and model quality of a capture window.

    python -m training_jobs.drift --baseline-dir D --capture-dir D --output-dir D \
        --window-start 2026-11-27T10:00:00Z --window-end 2026-11-27T11:00:00Z --schema PATH \
        [--labels-dir D] [--baseline-predictions F] [--endpoint-name N --monitoring-schedule-name N] \
        [--publish-metrics] [--max-malformed-share 0.05] [--workers N] [--fail-on-violations]

The engine-independent stand-in for a Model Monitor data-quality + model-quality job:
  1. reads the baseline (statistics.json + constraints.json as training_jobs/baseline.py writes them);
     none yet: a clean no-op, drift_report.json says so;
  2. reads the data capture files of [window start, window end) (training_jobs/capture_records.py);
     malformed lines are listed with file:line in the report; more than --max-malformed-share of the
     lines read: exit 1; no record in the window: a clean no-op that says so; --workers processes
     read the files (default: the CPU count);
  3. runs Model Monitor's checks and distances per feature plus PSI (training_jobs/drift_checks.py),
     and the PSI of the served probabilities against --baseline-predictions (a CSV with a
     `probability` column: the evaluate step's baseline_predictions.csv or predictions.csv of the test
     split, or a directory holding one, e.g. the current baseline, where the deployer copies the deployed
     package's; without it, or a directory holding neither, prediction drift is skipped with a note);
  4. with --labels-dir: joins ground truth on InferenceId and computes auc, top_decile_lift and
     calibration_error (training_jobs/model_quality.py); no label joined: a note, no metrics;
  5. writes constraint_violations.json (Model Monitor's format), statistics.json of the window
     (baseline.describe_features) and drift_report.json; with --publish-metrics, CloudWatch metrics
     under Model Monitor's names and dimensions (training_jobs/drift_metrics.py).
Violations are results, not failures: the job exits 0 with them (as a Model Monitor execution ends
"CompletedWithViolations"); alarms on the published metrics act on them. --fail-on-violations exits 1.
Python API (the twin calls it without the job's files):
    records, read = read_captures(capture_dir, start, end)   # DataFrame, CaptureReadReport
    result = detect(baseline_dir, records, schema)            # DriftResult
    result.feature_report(), result.drifted_features, result.constraint_violations(), result.statistics
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.schema import DatasetSchema, SchemaError, load_schema
from training_jobs import drift_metrics, model_quality
from training_jobs.artifacts import write_json
from training_jobs.baseline import describe_features
from training_jobs.capture_records import (
    PROBABILITY,
    RESERVED_COLUMNS,
    CaptureReadReport,
    as_utc,
    read_captures,
)
from training_jobs.drift_checks import (
    NUMERIC_TYPES,
    FeatureDrift,
    MonitoringConfig,
    Violation,
    boolean_token_mapper,
    check_numeric,
    check_string,
    decile_psi,
)
from training_jobs.errors import CheckFailed, JobError
from training_jobs.runner import run_job

__all__ = ["Baseline", "DriftResult", "detect", "load_baseline", "main", "read_captures"]

PROCESSING = "/opt/ml/processing"
DEFAULT_MAX_MALFORMED_SHARE = 0.05
# What a --baseline-predictions directory is searched for, in order (training_jobs/evaluate.py writes both;
# the current baseline holds the first, lambdas/deployer/baseline.py).
PREDICTION_FILES = ("baseline_predictions.csv", "predictions.csv")
NO_BASELINE_PREDICTIONS = "no baseline predictions given (--baseline-predictions)"


@dataclass(frozen=True)
class Baseline:
    statistics: dict[str, Any]
    constraints: dict[str, Any]
    where: str


def load_baseline(baseline_dir: str | Path) -> Baseline | None:
    """The baseline in `baseline_dir`; None when statistics.json or constraints.json is not there yet."""
    root = Path(baseline_dir)
    paths = [root / "statistics.json", root / "constraints.json"]
    if not all(p.is_file() for p in paths):
        return None
    docs = []
    for path in paths:
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise JobError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
            raise JobError(f"{path}: no 'features' list (is it a Model Monitor baseline file?)")
        docs.append(doc)
    return Baseline(docs[0], docs[1], str(root))


@dataclass
class DriftResult:
    """Outcome of `detect`: per-feature comparison, violations, the window's statistics."""

    features: dict[str, FeatureDrift]
    violations: list[Violation]
    statistics: dict[str, Any]
    records: int
    prediction_drift: dict[str, Any] = field(default_factory=dict)
    emit_metrics: bool = True

    @property
    def drifted_features(self) -> list[str]:
        return [n for n, f in self.features.items() if f.as_dict()["drifted"]]

    @property
    def violating_features(self) -> list[str]:
        return sorted({v.feature_name for v in self.violations})

    def constraint_violations(self) -> dict[str, Any]:
        return {"violations": [v.as_dict() for v in self.violations]}

    def feature_report(self) -> dict[str, dict[str, Any]]:
        return {n: f.as_dict() for n, f in self.features.items()}


def detect(
    baseline: Baseline | str | Path,
    records: pd.DataFrame,
    schema: DatasetSchema,
    baseline_predictions: np.ndarray | None = None,
) -> DriftResult:
    """Compare captured `records` (read_captures' frame, or any frame of the raw feature fields, with
    an optional `_probability` column) with the baseline. Raises JobError when there is no baseline."""
    if not isinstance(baseline, Baseline):
        loaded = load_baseline(baseline)
        if loaded is None:
            raise JobError(f"{baseline}: no statistics.json/constraints.json baseline")
        baseline = loaded
    config = MonitoringConfig.from_constraints(baseline.constraints, f"{baseline.where}/constraints.json")
    stats_by_name = {f["name"]: f for f in baseline.statistics["features"]}
    features: dict[str, FeatureDrift] = {}
    violations: list[Violation] = []
    normalised: dict[str, pd.Series] = {}
    numeric, strings = [], []
    for constraint in baseline.constraints["features"]:
        name = constraint["name"]
        if name not in records:
            features[name] = FeatureDrift(name, constraint.get("inferred_type", "Unknown"))
            features[name].violations.append(
                Violation(
                    name,
                    "missing_column_check",
                    f"Feature {name} of the baseline is missing from all {len(records)} captured records",
                )
            )
        elif constraint.get("inferred_type") in NUMERIC_TYPES:
            features[name], normalised[name] = check_numeric(
                name, stats_by_name.get(name, {}), constraint, records[name], config
            )
            numeric.append(name)
        else:
            normalise = None
            if name in schema.boolean_columns:
                spec = schema.column(name)
                normalise = boolean_token_mapper(
                    spec.true_values[0], spec.false_values[0], spec.true_values, spec.false_values
                )
            features[name], normalised[name] = check_string(
                name, stats_by_name.get(name, {}), constraint, records[name], config, normalise
            )
            strings.append(name)
        violations.extend(features[name].violations)
    known = set(features) | set(RESERVED_COLUMNS)
    violations.extend(
        Violation(c, "extra_column_check", f"Captured field {c} is not a feature of the baseline")
        for c in records.columns
        if c not in known
    )
    if not config.evaluate:  # evaluate_constraints Disabled: statistics and distances only
        violations = []
        for feature in features.values():
            feature.violations.clear()
    window = pd.DataFrame(normalised, index=records.index)
    statistics, _ = describe_features(window, numeric, strings)
    result = DriftResult(features, violations, statistics, len(records), emit_metrics=config.emit_metrics)
    result.prediction_drift = prediction_drift(records, baseline_predictions)
    return result


def prediction_drift(
    records: pd.DataFrame, baseline_predictions: np.ndarray | None, skipped: str = NO_BASELINE_PREDICTIONS
) -> dict[str, Any]:
    if baseline_predictions is None:
        return {"skipped": skipped}
    served = records[PROBABILITY].dropna().to_numpy() if PROBABILITY in records else np.empty(0)
    if served.size == 0:
        return {"skipped": "no served probabilities in the window"}
    base = np.asarray(baseline_predictions, dtype=np.float64)
    return {
        "psi": decile_psi(base, served),
        "baseline_rows": int(base.size),
        "window_rows": int(served.size),
        "baseline_mean": float(base.mean()),
        "window_mean": float(served.mean()),
    }


def find_baseline_predictions(path: str | Path) -> Path | None:
    """The predictions file `path` names: itself, or in a directory the first of PREDICTION_FILES it holds
    (None: the directory holds none, e.g. a current baseline whose package registered no predictions)."""
    path = Path(path)
    if not path.is_dir():
        return path
    return next((path / name for name in PREDICTION_FILES if (path / name).is_file()), None)


def read_baseline_predictions(path: str | Path) -> np.ndarray:
    path = Path(path)
    file = find_baseline_predictions(path)
    if file is None:
        raise JobError(f"{path}: holds none of {', '.join(PREDICTION_FILES)}")
    try:
        frame = pd.read_csv(file)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise JobError(f"{file}: cannot read baseline predictions ({exc})") from None
    if "probability" not in frame:
        raise JobError(f"{file}: no 'probability' column (expected the evaluate step's predictions.csv)")
    values = pd.to_numeric(frame["probability"], errors="coerce")
    if values.isna().any() or len(values) == 0:
        raise JobError(f"{file}: 'probability' must hold numbers, at least one")
    return values.to_numpy(dtype=np.float64)


def _baseline_predictions(argument: str | None) -> tuple[np.ndarray | None, str]:
    """(probabilities, why none): a file that is missing or unreadable is bad input (exit 2); a directory
    without a predictions file is a clean skip, as a current baseline without them is."""
    if not argument:
        return None, NO_BASELINE_PREDICTIONS
    if Path(argument).is_dir() and find_baseline_predictions(argument) is None:
        return None, (
            f"{argument} holds no {' or '.join(PREDICTION_FILES)} (the deployed package names no baseline "
            "predictions): prediction drift not measured"
        )
    return read_baseline_predictions(argument), ""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-dir", default=f"{PROCESSING}/baseline")
    ap.add_argument("--capture-dir", default=f"{PROCESSING}/input/capture")
    ap.add_argument("--output-dir", default=f"{PROCESSING}/output")
    ap.add_argument("--window-start", required=True, help="ISO 8601, inclusive")
    ap.add_argument("--window-end", required=True, help="ISO 8601, exclusive")
    ap.add_argument("--schema", required=True)
    ap.add_argument("--labels-dir")
    ap.add_argument(
        "--baseline-predictions",
        help="CSV with a probability column (evaluate's baseline_predictions.csv or predictions.csv), or a "
        "directory holding one (a directory holding neither: prediction drift skipped with a note)",
    )
    ap.add_argument("--endpoint-name")
    ap.add_argument("--monitoring-schedule-name", help="MonitoringSchedule dimension of data-quality metrics")
    ap.add_argument(
        "--model-quality-schedule-name",
        help="MonitoringSchedule dimension of model-quality metrics (default: the data-quality "
        "name with -data-quality replaced by -model-quality)",
    )
    ap.add_argument("--publish-metrics", action="store_true")
    ap.add_argument("--cloudwatch-namespace-data", default=drift_metrics.DATA_NAMESPACE)
    ap.add_argument("--cloudwatch-namespace-model", default=drift_metrics.MODEL_NAMESPACE)
    ap.add_argument("--max-malformed-share", type=float, default=DEFAULT_MAX_MALFORMED_SHARE)
    ap.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes reading capture files (default: the CPU count)",
    )
    ap.add_argument("--fail-on-violations", action="store_true")
    return ap.parse_args(argv)


def _window(args: argparse.Namespace) -> tuple[datetime, datetime]:
    try:
        start, end = as_utc(args.window_start), as_utc(args.window_end)
    except ValueError as exc:
        raise JobError(f"--window-start/--window-end: not ISO 8601 ({exc})") from None
    if end <= start:
        raise JobError(f"--window-end {args.window_end} is not after --window-start {args.window_start}")
    return start, end


def _schedule_names(args: argparse.Namespace) -> tuple[str, str]:
    if not (args.endpoint_name and args.monitoring_schedule_name):
        raise JobError("--publish-metrics needs --endpoint-name and --monitoring-schedule-name")
    data = args.monitoring_schedule_name
    model = args.model_quality_schedule_name or data.replace("-data-quality", "-model-quality")
    return data, model


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The job body: returns drift_report.json's content (also written to --output-dir)."""
    start, end = _window(args)
    if args.workers < 1:
        raise JobError(f"--workers {args.workers} must be at least 1")
    if not 0.0 <= args.max_malformed_share <= 1.0:
        raise JobError(f"--max-malformed-share {args.max_malformed_share} is not between 0 and 1")
    if args.publish_metrics:
        _schedule_names(args)
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    out = Path(args.output_dir)
    report: dict[str, Any] = {
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "endpoint": args.endpoint_name,
        "baseline": args.baseline_dir,
    }
    baseline = load_baseline(args.baseline_dir)
    if baseline is None:
        report.update(
            status="no_baseline", note=f"{args.baseline_dir}: no statistics.json/constraints.json yet; nothing compared"
        )
        return _finish(out, report)
    baseline_predictions, predictions_skipped = _baseline_predictions(args.baseline_predictions)
    try:
        records, read = read_captures(args.capture_dir, start, end, workers=args.workers)
    except FileNotFoundError:
        records, read = pd.DataFrame(), CaptureReadReport()
    report["capture"] = read.as_dict()
    if read.malformed_share > args.max_malformed_share:
        report.update(status="too_many_malformed")
        _finish(out, report)
        first = read.problems[0]
        raise CheckFailed(
            f"{read.malformed} of {read.lines} capture lines are malformed "
            f"({read.malformed_share:.1%} > --max-malformed-share {args.max_malformed_share:.1%}); "
            f"first: {first}; all listed in {out / 'drift_report.json'}"
        )
    if records.empty:
        report.update(
            status="no_data", note=f"no captured records in {args.capture_dir} for the window; nothing compared"
        )
        return _finish(out, report)
    result = detect(baseline, records, schema, baseline_predictions)
    if baseline_predictions is None:
        result.prediction_drift = prediction_drift(records, None, predictions_skipped)
    report.update(
        status="violations" if result.violations else "ok",
        records=result.records,
        violations=len(result.violations),
        violating_features=result.violating_features,
        drifted_features=result.drifted_features,
        features=result.feature_report(),
        prediction_drift=result.prediction_drift,
    )
    quality = _model_quality(args.labels_dir, records) if args.labels_dir else {"skipped": "no --labels-dir"}
    report["model_quality"] = quality
    write_json(out / "constraint_violations.json", result.constraint_violations())
    write_json(out / "statistics.json", result.statistics)
    if args.publish_metrics and not result.emit_metrics:
        report["published"] = {"skipped": "monitoring_config.emit_metrics is Disabled in constraints.json"}
    elif args.publish_metrics:
        report["published"] = _publish(args, report, end)
    _finish(out, report)
    if args.fail_on_violations and result.violations:
        raise CheckFailed(
            f"{len(result.violations)} constraint violation(s) on {result.violating_features} "
            f"(--fail-on-violations); see {out / 'constraint_violations.json'}"
        )
    return report


def _model_quality(labels_dir: str, records: pd.DataFrame) -> dict[str, Any]:
    labels = model_quality.read_labels(labels_dir)
    joined, counts = model_quality.join_labels(records, labels)
    if joined.empty:
        return {"skipped": "no label joined a captured InferenceId", **counts}
    return {**model_quality.quality_metrics(joined["churned"].to_numpy(), joined["probability"].to_numpy()), **counts}


def _publish(args: argparse.Namespace, report: dict[str, Any], end: datetime) -> dict[str, int]:
    import boto3

    data_schedule, model_schedule = _schedule_names(args)
    client = boto3.client("cloudwatch")
    psi = report["prediction_drift"].get("psi")
    data = drift_metrics.data_quality_datums(
        report["features"], psi, {"Endpoint": args.endpoint_name, "MonitoringSchedule": data_schedule}, end
    )
    model = drift_metrics.model_quality_datums(
        report["model_quality"], {"Endpoint": args.endpoint_name, "MonitoringSchedule": model_schedule}, end
    )
    drift_metrics.publish(client, args.cloudwatch_namespace_data, data)
    drift_metrics.publish(client, args.cloudwatch_namespace_model, model)
    return {"data_quality_datums": len(data), "model_quality_datums": len(model)}


def _finish(out: Path, report: dict[str, Any]) -> dict[str, Any]:
    write_json(out / "drift_report.json", report)
    return report


def describe(args: argparse.Namespace) -> str:
    report = run(args)
    if report["status"] in ("no_baseline", "no_data"):
        return f"no-op: {report['note']}"
    summary = (
        f"{report['records']} records, {report['violations']} violation(s)"
        f"{' on ' + ', '.join(report['violating_features']) if report['violations'] else ''}"
    )
    if report["model_quality"].get("auc") is not None:
        summary += f"; auc {report['model_quality']['auc']:.4f} on {report['model_quality']['joined']} labels"
    return f"{summary} -> {args.output_dir}"


def main(argv: list[str] | None = None) -> int:
    return run_job("drift", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
