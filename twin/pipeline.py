"""The twin's steps, in the order the SageMaker pipeline runs them, and the run summary.

    conform, preprocess, train-xgboost, train-pytorch, evaluate-xgboost, evaluate-pytorch, select-model,
    gate, baseline, compile-xgboost, compile-pytorch, register, serve, batch-score, then the loop (twin.monitor_loop:
    traffic-week-1/2, drift-week-1/2, retrain-decision, retrain-*) unless --no-loop, then report

Job steps live in twin.job_steps; this module runs the in-process ones (conform, gate, register,
serve, report) and writes <run>/steps.json (twin.step_record) and <run>/summary.json. A run
writes only into its own new folder (twin.run_dir); --out is pointed at it once it completed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd

from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from twin import gate as quality_gate
from twin import numbers as fmt
from twin.conform import ConformOutcome, run_conform
from twin.console import Console, print_summary
from twin.inputs import RunInputs
from twin.job_steps import (
    MODELS,
    Evaluation,
    Package,
    Preprocessed,
    baseline,
    compile_package,
    evaluate,
    preprocess,
    select_model,
    train,
)
from twin.register import Registration, register
from twin.run_context import RunContext
from twin.run_dir import RunDir
from twin.serve import CONTAINER_MODEL_DIR, serve_package
from twin.step_record import BATCH_TRANSFORM, CONDITION, ENDPOINT, GLUE_JOBS, LOCAL, MODEL_REGISTRY, write_steps
from twin.summary import build_summary, shown


def run_pipeline(args: argparse.Namespace, inputs: RunInputs) -> dict[str, Any]:
    """Run every step into a new run folder; publish it under --out only when all of them completed."""
    t_start = time.perf_counter()
    ctx = RunContext(args, RunDir.create(args.out), inputs.schema, Console(args.quiet))
    try:
        return _run(ctx, inputs, t_start)
    finally:
        ctx.console.close()


def _run(ctx: RunContext, inputs: RunInputs, t_start: float) -> dict[str, Any]:
    try:
        _announce(ctx, inputs)
        summary = _run_steps(ctx, inputs)
    except JobError as exc:
        raise JobError(f"{exc}; {_kept_note(ctx.run)}") from None
    finally:
        write_steps(ctx.records, ctx.out / "steps.json")
    ctx.timings["total"] = time.perf_counter() - t_start
    summary["timings_s"] = ctx.timings
    summary["steps"] = [r.to_json() for r in ctx.records]
    write_json(ctx.out / "summary.json", summary)
    ctx.run.publish(ctx.args.keep)
    print_summary(ctx.console, summary, shown(ctx.run.link / "report.html"))
    return summary


def _run_steps(ctx: RunContext, inputs: RunInputs) -> dict[str, Any]:
    lake = conform(ctx, inputs.source)
    prep = preprocess(ctx, lake)
    models = {m: train(ctx, m, prep) for m in MODELS}
    evaluations = {m: evaluate(ctx, models[m], prep) for m in MODELS}
    models_summary = quality_gate.summarise_models(models, evaluations)
    # No champion in the twin's registry at the start of a run: the PyTorch candidate stands in, as in the pipeline.
    selection = select_model(ctx, evaluations, None, "pytorch", inputs.environment.ml.pipeline.model_choice)
    verdict = gate(ctx, selection, inputs)
    baseline_dir = baseline(ctx, prep)
    packages = {m: compile_package(ctx, models[m]) for m in MODELS}
    registration = ctx.run_local("register", MODEL_REGISTRY, "twin.register.register",
                                 lambda: register(ctx, lake, models, evaluations, models_summary, verdict),
                                 _describe_registration)
    shipped = verdict["champion"]
    serving = serve(ctx, packages[shipped], prep, evaluations[shipped])
    scores = batch_score(ctx, lake, packages[shipped], registration) if verdict["passed"] else None
    summary = build_summary(ctx, lake, prep, models, models_summary, verdict, registration, packages, serving)
    summary["batch_scoring"] = scores or {"skipped": "the gate failed: a rejected model scores no one"}
    summary["selection"] = selection
    summary["baseline"] = {"dir": str(baseline_dir), "files": sorted(p.name for p in baseline_dir.iterdir())}
    if ctx.args.no_loop:
        summary["loop"] = {"skipped": "--no-loop"}
    elif not verdict["passed"]:
        summary["loop"] = {"skipped": "the gate failed: a rejected model is not deployed, so nothing is monitored"}
    else:
        from twin.monitor_loop import run_loop

        summary["loop"] = run_loop(ctx, inputs, prep, baseline_dir, ctx.out / "serving" / "model", models[shipped],
                                   evaluations[shipped], models, registration)
    report(ctx, summary, evaluations, registration)
    return summary


def _announce(ctx: RunContext, inputs: RunInputs) -> None:
    schema, env, gate_cfg = ctx.schema, inputs.environment, inputs.environment.ml.quality_gate
    ctx.console.text(f"Twin: dataset {schema.name} v{schema.version} (schema {schema.fingerprint}), "
                     f"profile {ctx.args.profile}; quality gate from {ctx.args.config} (environment {env.name}): "
                     f"test ROC-AUC ≥ {gate_cfg.min_roc_auc}, top-decile lift ≥ {gate_cfg.min_top_decile_lift}×",
                     style="bold")
    where = "shown below (--verbose)" if ctx.args.verbose else "in its logs/"
    ctx.console.text(f"Run folder: {shown(ctx.out)} (each step's own output {where})")


def _kept_note(run: RunDir) -> str:
    earlier = (f"{shown(run.link)} still shows the previous run" if run.link.is_symlink()
               else f"nothing was published at {shown(run.link)}")
    return f"this run's partial outputs are in {shown(run.path)}; {earlier}"


def conform(ctx: RunContext, source: pd.DataFrame | None) -> ConformOutcome:
    def work() -> ConformOutcome:
        raw: Path | None = ctx.args.data
        if raw is None:
            assert source is not None
            raw = ctx.out / "raw" / "snapshot.csv"
            raw.parent.mkdir(parents=True, exist_ok=True)
            source.to_csv(raw, index=False)  # as dataset.sources.export_snapshot writes it
        # Paths as shown (relative below the working directory): the lake jobs name them in their errors.
        return run_conform(Path(shown(raw)), ctx.args.schema, Path(shown(ctx.out / "lake")), ctx.args.cdr,
                           ctx.args.snapshot_date)

    return ctx.run_local("conform", GLUE_JOBS, "etl.local_run.run_lake_locally", work, ConformOutcome.describe)


def gate(ctx: RunContext, selection: dict[str, Any], inputs: RunInputs) -> dict[str, Any]:
    source = f"{ctx.args.config}: ml.quality_gate"
    gate_cfg = inputs.environment.ml.quality_gate
    return ctx.run_local("gate", CONDITION, "twin.gate.judge",
                         lambda: quality_gate.judge(selection, gate_cfg, source),
                         lambda g: str(g["message"]))


def _describe_registration(r: Registration) -> str:
    reg = r.result
    return (f"{reg['registered_model']} version {reg['version']}: {reg['approval_status'].lower()}"
            + (", alias champion moved to it" if reg["champion_alias"] else ", alias champion unchanged"))


def serve(ctx: RunContext, package: Package, prep: Preprocessed, evaluation: Evaluation) -> dict[str, Any]:
    work = ctx.out / "serving"
    return ctx.run_local("serve", ENDPOINT, "code/inference.py (model_fn, input_fn, predict_fn, output_fn)",
                         lambda: serve_package(package.tarball, work, prep.output / "test", ctx.schema,
                                               evaluation.predictions),
                         lambda s: (f"{fmt.count(s['rows'])} held-out rows through code/inference.py "
                                    f"({s['content_type']}); max difference to evaluate "
                                    f"{fmt.difference(s['max_abs_diff_vs_evaluate'])}; {fmt.rate(s['rows_per_s'])}"),
                         container_paths={CONTAINER_MODEL_DIR: work / "model"})


def batch_score(ctx: RunContext, lake: ConformOutcome, package: Package, registration: Registration
                ) -> dict[str, Any]:
    """The whole feature table scored by the shipped package as the batch-scoring pipeline's transform does
    (twin.batch_score), into <run>/scores; the retention team's top 10% (decile 1) summarised."""
    from twin import batch_score as batch

    reg = registration.result

    def work() -> dict[str, Any]:
        try:
            result = batch.batch_score(lake.features_path, package.tarball, ctx.args.schema, ctx.out / "batch",
                                       ctx.out / "scores",
                                       model_package_arn=batch.local_package_arn(reg["registered_model"],
                                                                                 reg["version"]),
                                       scoring_date=ctx.args.snapshot_date, snapshot_date=ctx.args.snapshot_date)
        except RuntimeError as exc:  # a prepare/publish job failed: its one-line message
            raise JobError(f"batch scoring: {exc}") from None
        return {**result, "to_contact": top_decile(Path(result["scores"]))}

    return ctx.run_local("batch-score", BATCH_TRANSFORM, "twin.batch_score.batch_score", work,
                         lambda r: (f"{fmt.count(r['rows'])} subscribers scored → {shown(Path(r['scores']))}; top 10%: "
                                    f"{fmt.count(r['to_contact']['subscribers'])} to contact (churn probability ≥ "
                                    f"{fmt.score(r['to_contact']['min_probability'])})"))


def top_decile(scores: Path, shown_rows: int = 10) -> dict[str, Any]:
    frame = pd.read_parquet(scores)
    top = frame[frame["decile"] == 1].sort_values("rank")
    return {"subscribers": len(top), "of": len(frame), "min_probability": float(top["probability"].min()),
            "mean_probability": float(top["probability"].mean()),
            "first": [{"rank": int(r["rank"]), "subscriber_id": str(r["subscriber_id"]),
                       "probability": float(r["probability"])} for _, r in top.head(shown_rows).iterrows()]}


def report(ctx: RunContext, summary: dict[str, Any], evaluations: dict[str, Evaluation],
           registration: Registration) -> Path:
    def work() -> Path:
        from twin.plots import make_plots
        from twin.report import write_html

        preds = {n: pd.read_csv(e.predictions) for n, e in evaluations.items()}
        importance = {n: e.report["telecom_churn_metrics"]["permutation_importance_roc_auc_drop"]
                      for n, e in evaluations.items()}
        plots = make_plots(preds, importance, ctx.out / "plots")
        summary["timings_s"] = dict(ctx.timings)
        write_html(summary, plots, ctx.out / "report.html")
        tracker = registration.tracker
        with tracker.mlflow.start_run(run_id=registration.result["parent_run_id"]):
            for p in plots.values():
                tracker.log_artifact(p, "plots")
            tracker.log_artifact(ctx.out / "report.html")
        return ctx.out / "report.html"

    return ctx.run_local("report", LOCAL, "twin.report", work, lambda p: shown(p))
