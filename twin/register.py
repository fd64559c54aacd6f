"""The register step: MLflow runs for both models and a registry version for the champion.

Stands in for the pipeline's model-registry step (local SQLite store, no server). The champion's
version is tagged `approval_status` Approved/Rejected by the gate; the alias `champion` moves to
it only when approved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.conform import ConformOutcome
from twin.job_steps import Evaluation, TrainedModel
from twin.run_context import RunContext
from twin.tracking import Tracker


@dataclass(frozen=True)
class Registration:
    tracker: Tracker
    result: dict[str, Any]  # summary.json["registry"]


def register(ctx: RunContext, lake: ConformOutcome, models: dict[str, TrainedModel],
             evaluations: dict[str, Evaluation], models_summary: dict[str, Any],
             verdict: dict[str, Any]) -> Registration:
    schema, champion = ctx.schema, verdict["champion"]
    experiment = f"churn-{schema.name}"
    tracker = Tracker(ctx.run.store, experiment)  # shared by the runs of one --out (twin.run_dir)
    reg: dict[str, Any] = {"tracking_uri": tracker.uri, "experiment": experiment}
    with tracker.start(f"twin-{schema.name}-{time.strftime('%Y%m%dT%H%M%S')}") as parent:
        tracker.log_params({"schema": schema.name, "schema_version": schema.version,
                            "schema_fingerprint": schema.fingerprint, "profile": ctx.args.profile,
                            "seed": ctx.args.seed, "conform_engine": lake.engine, "champion": champion,
                            **{f"gate_{k}": v for k, v in verdict["thresholds"].items()}})
        tracker.log_metrics({"rows_in": lake.rows_in, "rows_curated": lake.rows_curated,
                             "rows_quarantined": lake.rows_quarantined, "gate_passed": float(verdict["passed"])})
        model_infos = {name: _log_model_run(tracker, model, evaluations[name], models_summary[name])
                       for name, model in models.items()}
        info, run_id = model_infos[champion]
        reg.update(tracker.register(info.model_uri, f"churn-{schema.name}", verdict["passed"],
                                    {"model_type": champion, "schema_fingerprint": schema.fingerprint,
                                     "source_run_id": run_id}))
        reg["parent_run_id"] = parent.info.run_id
        reg["runs"] = {n: r for n, (_, r) in model_infos.items()}
    return Registration(tracker, reg)


def _log_model_run(tracker: Tracker, model: TrainedModel, evaluation: Evaluation,
                   model_summary: dict[str, Any]) -> tuple[Any, str]:
    """A nested run: hyperparameters, metrics, evaluation and artefact files, the model with its flavour."""
    with tracker.start(model.name, nested=True) as run:
        tracker.log_params({"model_type": model.name, **model.metadata.get("hyperparameters", {})})
        tracker.log_metrics({**dict(model.metadata["metrics"].items()),
                             **{f"test_{k}": v for k, v in model_summary["test"].items()}})
        tracker.log_artifact(evaluation.output / "evaluation.json", "evaluation")
        tracker.log_artifact(model.model_dir / "metadata.json", "artefact")
        tracker.log_artifact(model.model_dir / "transformer.json", "artefact")
        if model.name == "xgboost":
            info = tracker.log_xgboost(model.model_dir)
        else:
            import training_jobs
            from training_jobs.artifacts import load_model

            info = tracker.log_pytorch(load_model(model.model_dir).model, Path(training_jobs.__file__).parent)
        return info, run.info.run_id


def register_challenger(registration: Registration, schema_fingerprint: str, model: TrainedModel,
                        evaluation: Evaluation, window: str) -> dict[str, Any]:
    """The retrained challenger as a new approved version of the same registered model; the alias `champion`
    moves to it. Called only when the retrain's gate let it register (twin.retrain.decide)."""
    tracker, reg = registration.tracker, registration.result
    metrics = evaluation.report["telecom_churn_metrics"]
    with tracker.mlflow.start_run(run_id=reg["parent_run_id"]), tracker.start(f"retrain-{model.name}",
                                                                              nested=True) as run:
        tracker.log_params({"model_type": model.name, "trained_on": window,
                            **model.metadata.get("hyperparameters", {})})
        tracker.log_metrics({**dict(model.metadata["metrics"].items()),
                             **{f"window_test_{k}": metrics[k]["value"] for k in ("roc_auc", "top_decile_lift")}})
        tracker.log_artifact(evaluation.output / "evaluation.json", "evaluation")
        info = tracker.log_xgboost(model.model_dir)
    return tracker.register(info.model_uri, reg["registered_model"], True,
                            {"model_type": model.name, "schema_fingerprint": schema_fingerprint,
                             "source_run_id": run.info.run_id, "retrained_on": window})
