"""The loop after serving: capture, drift, the retrain decision, retrain, champion against challenger.

    traffic-week-1    the held-out subscribers, one request each, through the local endpoint (twin.monitor_serve);
                      captured under <run>/capture in SageMaker's layout, dated snapshot + 7 days
    traffic-week-2    the same subscribers a week later, after the schema's drift scenarios
                      (twin.drift_scenario: e.g. a price rise, month-to-month renewals, more fiber)
    drift-week-<n>    training_jobs.drift (the drift job's contract) on that week's day window, against the Baseline
                      step's output; labels (the labels contract, written under <run>/labels) give model quality
    retrain-decision  one CloudWatch alarm event per drifted feature through lambdas/start_training
                      (twin.retrain_trigger): the first starts the pipeline, the lock coalesces the others
    retrain-*         when it started: twin.retrain (challenger, champion re-scored, select-model, gate,
                      and retrain-register when the challenger may register)

Runs only when the gate passed (a rejected model is never deployed, so nothing is monitored).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_jobs.errors import JobError
from training_jobs.splits import read_split
from twin import drift_scenario
from twin import numbers as fmt
from twin.inputs import RunInputs
from twin.job_steps import PROCESSING, Evaluation, Preprocessed, TrainedModel
from twin.monitor_serve import WeeklyTraffic, inference_id, records_of
from twin.register import Registration
from twin.retrain import Champion, retrain
from twin.retrain_trigger import DriftAlarm, decide_retraining
from twin.run_context import RunContext, read_json, stage_channel
from twin.step_record import ENDPOINT, LAMBDA, PROCESSING_JOB

WEEK = timedelta(days=7)
LABEL_DELAY = timedelta(days=28)  # outcomes are known a month after scoring
ALARM_DELAY = timedelta(hours=2)  # the daily drift job runs after its window closes; the alarm follows


def endpoint_name(env_name: str) -> str:
    return f"telecom-ml-{env_name}-churn"


def schedule_name(env_name: str) -> str:
    """The data-quality MonitoringSchedule dimension (Model Monitor's metric names)."""
    return f"telecom-ml-{env_name}-churn-data-quality"


def run_loop(
    ctx: RunContext,
    inputs: RunInputs,
    prep: Preprocessed,
    baseline_dir: Path,
    served_model_dir: Path,
    shipped: TrainedModel,
    shipped_eval: Evaluation,
    candidates: dict[str, TrainedModel],
    registration: Registration | None = None,
) -> dict[str, Any]:
    schema, env = ctx.schema, inputs.environment
    scenarios = drift_scenario.scenarios_for(schema)
    held_out, outcome = week_sample(
        *read_split(prep.output / "test", schema), ctx.args.requests_per_week, ctx.args.seed
    )
    snapshot = date.fromisoformat(ctx.args.snapshot_date)
    weeks = {
        1: (snapshot + WEEK, held_out),
        2: (snapshot + 2 * WEEK, drift_scenario.apply(held_out, scenarios, ctx.args.seed)),
    }
    labels_dir = write_labels(ctx.out / "labels", schema.id_column, held_out, outcome, [d for d, _ in weeks.values()])
    traffic, drift = {}, {}
    with WeeklyTraffic(
        served_model_dir, ctx.out / "serving" / "endpoint", endpoint_name(env.name), ctx.out / "capture"
    ) as endpoint:
        for n, (day, frame) in weeks.items():
            records = records_of(frame, schema.id_column, schema.raw_feature_columns)

            def send(r: list[tuple[str, dict[str, Any]]] = records, d: date = day) -> dict[str, Any]:
                return _checked(endpoint.send_week(r, d))

            traffic[n] = ctx.run_local(
                f"traffic-week-{n}",
                ENDPOINT,
                "twin.endpoint_server + scripts/smoke_endpoint.py (boto3 sagemaker-runtime)",
                send,
                _describe_traffic,
            )
    for n in weeks:
        drift[n] = drift_step(ctx, n, traffic[n], baseline_dir, labels_dir, shipped_eval.predictions, env.name)
    expected = drift_scenario.expected_features(scenarios)
    alarms = [
        DriftAlarm(f, drift[2]["features"][f]["distance"], drift[2]["features"][f]["threshold"])
        for f in drift[2].get("drifted_features", [])
    ]
    alarms_at = alarm_time(traffic[2]["window_end"])
    decision = ctx.run_local(
        "retrain-decision",
        LAMBDA,
        "lambdas.start_training.service.TrainingTriggerService",
        lambda: decide_retraining(env.name, env.ml.retraining, snapshot, alarms, alarms_at),
        lambda d: str(d["reason"]),
    )
    loop: dict[str, Any] = {
        "endpoint": endpoint_name(env.name),
        "scenarios": [
            {"name": s.name, "description": s.description, "moves": sorted(s.columns), "expected": sorted(s.expected)}
            for s in scenarios
        ],
        "expected_drift": expected,
        "weeks": {str(n): {"traffic": traffic[n], "drift": _drift_summary(drift[n])} for n in weeks},
        "retrain_decision": decision,
    }
    if decision["retrain"]:
        champion = Champion(shipped, shipped_eval)
        loop["retrain"] = retrain(ctx, env, prep, weeks[2][1], outcome, champion, candidates, registration)
    else:
        loop["retrain"] = {"skipped": decision["reason"]}
    return loop


def week_sample(frame: pd.DataFrame, outcome: np.ndarray, n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The subscribers who send requests both weeks: `n` of the held-out split, drawn at random (all when fewer)."""
    if n >= len(frame):
        return frame.reset_index(drop=True), outcome
    rows = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    return frame.iloc[rows].reset_index(drop=True), outcome[rows]


def _checked(result: dict[str, Any]) -> dict[str, Any]:
    if result["failed"]:
        raise JobError(
            f"the local endpoint refused {result['failed']} of {result['sent']} requests; "
            f"first: {'; '.join(result['errors'][:2])}"
        )
    return result


def _describe_traffic(t: dict[str, Any]) -> str:
    p50 = t["latency_ms"].get("p50", float("nan"))
    return (
        f"{fmt.count(t['answered'])} requests for {t['scoring_date']} through boto3 → local endpoint, "
        f"{fmt.count(t['captured'])} captured; p50 {p50:.1f} ms; mean churn probability "
        f"{t['probability_mean']:.3f}"
    )


def write_labels(root: Path, id_column: str, frame: pd.DataFrame, outcome: np.ndarray, days: list[date]) -> Path:
    """The labels feed (the labels contract) for each scoring day: one CSV per label_date partition."""
    shutil.rmtree(root, ignore_errors=True)
    for day in days:
        observed = day + LABEL_DELAY
        part = root / f"label_date={observed.isoformat()}"
        part.mkdir(parents=True)
        ids = frame[id_column].astype(str)
        pd.DataFrame(
            {
                "subscriber_id": ids,
                "churned": np.where(outcome == 1, "true", "false"),
                "observed_at": observed.isoformat(),
                "inference_id": [inference_id(i, day) for i in ids],
            }
        ).to_csv(part / "labels.csv", index=False)
    return root


def drift_step(
    ctx: RunContext,
    week: int,
    traffic: dict[str, Any],
    baseline_dir: Path,
    labels_dir: Path,
    predictions: Path,
    env_name: str,
) -> dict[str, Any]:
    """training_jobs.drift as the scheduled Processing job runs it, on one week's day window."""
    base = ctx.out / "processing" / f"drift-week-{week}"
    paths = {
        f"{PROCESSING}/baseline": base / "baseline",
        f"{PROCESSING}/input/capture": base / "input" / "capture",
        f"{PROCESSING}/input/labels": base / "input" / "labels",
        f"{PROCESSING}/input/predictions": base / "input" / "predictions",
        f"{PROCESSING}/input/schema": base / "input" / "schema",
        f"{PROCESSING}/output": base / "output",
    }
    stage_channel(baseline_dir, paths[f"{PROCESSING}/baseline"])
    stage_channel(Path(traffic["capture_dir"]).parent, paths[f"{PROCESSING}/input/capture"])
    stage_channel(labels_dir, paths[f"{PROCESSING}/input/labels"])
    paths[f"{PROCESSING}/input/predictions"].mkdir(parents=True, exist_ok=True)
    shutil.copyfile(predictions, paths[f"{PROCESSING}/input/predictions"] / "predictions.csv")
    paths[f"{PROCESSING}/input/schema"].mkdir(parents=True, exist_ok=True)
    schema_file = paths[f"{PROCESSING}/input/schema"] / "schema.yaml"
    shutil.copyfile(ctx.args.schema, schema_file)
    output = paths[f"{PROCESSING}/output"]
    argv = [
        "--baseline-dir",
        str(paths[f"{PROCESSING}/baseline"]),
        "--capture-dir",
        str(paths[f"{PROCESSING}/input/capture"]),
        "--output-dir",
        str(output),
        "--window-start",
        traffic["window_start"],
        "--window-end",
        traffic["window_end"],
        "--schema",
        str(schema_file),
        "--labels-dir",
        str(paths[f"{PROCESSING}/input/labels"]),
        "--baseline-predictions",
        str(paths[f"{PROCESSING}/input/predictions"] / "predictions.csv"),
        "--endpoint-name",
        endpoint_name(env_name),
        "--monitoring-schedule-name",
        schedule_name(env_name),
    ]

    def describe() -> str:
        r = read_json(output / "drift_report.json")
        flagged = ", ".join(r.get("drifted_features", [])) or "no feature"
        quality = r.get("model_quality", {})
        auc = f"; AUC {fmt.score(quality['auc'])} on {fmt.count(quality['joined'])} labels" if "auc" in quality else ""
        return f"{fmt.count(r.get('records', 0))} captured records: drift on {flagged}{auc}"

    ctx.run_job(f"drift-week-{week}", PROCESSING_JOB, "training_jobs.drift", argv, paths, describe)
    report: dict[str, Any] = read_json(output / "drift_report.json")
    return report


def _drift_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What summary.json keeps of a drift_report.json: status, per-feature distance and PSI, quality."""
    features = {
        n: {k: f[k] for k in ("distance", "threshold", "psi", "drifted", "violations")}
        for n, f in report.get("features", {}).items()
    }
    return {
        "status": report["status"],
        "window": report["window"],
        "records": report.get("records", 0),
        "violations": report.get("violations", 0),
        "drifted_features": report.get("drifted_features", []),
        "violating_features": report.get("violating_features", []),
        "features": features,
        "prediction_drift": report.get("prediction_drift", {}),
        "model_quality": report.get("model_quality", {}),
    }


def alarm_time(window_end: str) -> datetime:
    return datetime.fromisoformat(window_end.replace("Z", "+00:00")).astimezone(UTC) + ALARM_DELAY
