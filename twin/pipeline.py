"""The twin's steps, in the order the SageMaker pipeline runs them, and the run summary.

    conform, preprocess, train-xgboost, train-pytorch, evaluate-xgboost, evaluate-pytorch, gate,
    compile-xgboost, compile-pytorch, register, serve, then report

Job steps live in twin.job_steps; this module runs the in-process ones (conform, gate, register,
serve, report) and writes <out>/steps.json (twin.step_record) and <out>/summary.json.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from dataset.schema import SchemaError, load_schema
from infra.config import QualityGateConfig, load_environment
from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from twin import gate as quality_gate
from twin.conform import ConformOutcome, run_conform
from twin.console import Console, print_summary
from twin.job_steps import (
    MODELS,
    Evaluation,
    Package,
    Preprocessed,
    TrainedModel,
    compile_package,
    evaluate,
    preprocess,
    train,
)
from twin.register import Registration, register
from twin.run_context import RunContext
from twin.serve import CONTAINER_MODEL_DIR, serve_package
from twin.step_record import CONDITION, ENDPOINT, GLUE_JOBS, LOCAL, MODEL_REGISTRY, write_steps

OUTPUT_DIRS = ("raw", "lake", "processing", "training", "compile", "serving", "plots")


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    ctx, gate_cfg = _start(args)
    try:
        lake = conform(ctx)
        prep = preprocess(ctx, lake)
        models = {m: train(ctx, m, prep) for m in MODELS}
        evaluations = {m: evaluate(ctx, models[m], prep) for m in MODELS}
        models_summary = quality_gate.summarise_models(models, evaluations)
        verdict = gate(ctx, models_summary, gate_cfg)
        packages = {m: compile_package(ctx, models[m]) for m in MODELS}
        registration = ctx.run_local("register", MODEL_REGISTRY, "twin.register.register",
                                     lambda: register(ctx, lake, models, evaluations, models_summary, verdict),
                                     _describe_registration)
        serving = serve(ctx, packages[verdict["champion"]], prep, evaluations[verdict["champion"]])
        summary = build_summary(ctx, lake, prep, models, models_summary, verdict, registration, packages,
                                serving)
        report(ctx, summary, evaluations, registration)
    finally:
        write_steps(ctx.records, ctx.out / "steps.json")
    ctx.timings["total"] = time.perf_counter() - t_start
    summary["timings_s"] = ctx.timings
    summary["steps"] = [r.to_json() for r in ctx.records]
    write_json(ctx.out / "summary.json", summary)
    print_summary(ctx.console, summary)
    return summary


def _start(args: argparse.Namespace) -> tuple[RunContext, QualityGateConfig]:
    """Schema and environment config first (a bad one is a one-line error before anything runs)."""
    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    env = load_environment(args.config)
    con = Console(args.quiet)
    con.print(f"[bold]Twin[/bold] schema {schema.name} v{schema.version} ({schema.fingerprint}); "
              f"gate from {args.config} (environment {env.name}): {env.ml.quality_gate.model_dump()}")
    out: Path = args.out.resolve()
    if out.exists():
        for sub in OUTPUT_DIRS:
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    return RunContext(args, out, schema, con), env.ml.quality_gate


def conform(ctx: RunContext) -> ConformOutcome:
    def work() -> ConformOutcome:
        raw = ctx.args.data
        if raw is None:
            from dataset.sources import export_snapshot

            raw = export_snapshot(ctx.schema, ctx.out / "raw" / "snapshot.csv")
        elif not raw.exists():
            raise JobError(f"--data {raw}: file not found")
        return run_conform(Path(raw), ctx.args.schema, ctx.out / "lake", ctx.args.cdr, ctx.args.snapshot_date)

    return ctx.run_local("conform", GLUE_JOBS, "etl.local_run.run_lake_locally", work, lambda r: (
        f"{r.rows_in} rows in, {r.rows_curated} curated, {r.rows_quarantined} quarantined [{r.engine}]"))


def gate(ctx: RunContext, models_summary: dict[str, Any], gate_cfg: QualityGateConfig) -> dict[str, Any]:
    champion = quality_gate.choose_champion(models_summary)
    source = f"{ctx.args.config}: ml.quality_gate"
    return ctx.run_local("gate", CONDITION, "twin.gate.judge",
                         lambda: quality_gate.judge(champion, models_summary, gate_cfg, source),
                         lambda g: str(g["message"]))


def _describe_registration(r: Registration) -> str:
    reg = r.result
    return (f"{reg['registered_model']} v{reg['version']} {reg['approval_status']}"
            + (", alias champion" if reg["champion_alias"] else ""))


def serve(ctx: RunContext, package: Package, prep: Preprocessed, evaluation: Evaluation) -> dict[str, Any]:
    work = ctx.out / "serving"
    return ctx.run_local("serve", ENDPOINT, "code/inference.py (model_fn, input_fn, predict_fn, output_fn)",
                         lambda: serve_package(package.tarball, work, prep.output / "test", ctx.schema,
                                               evaluation.predictions),
                         lambda s: (f"{s['rows']} held-out rows via {s['content_type']}, max |served - evaluated| "
                                    f"{s['max_abs_diff_vs_evaluate']:.2g}, {s['rows_per_s']:.0f} rows/s"),
                         container_paths={CONTAINER_MODEL_DIR: work / "model"})


def report(ctx: RunContext, summary: dict[str, Any], evaluations: dict[str, Evaluation],
           registration: Registration) -> Path:
    def work() -> Path:
        from twin.report import make_plots, write_html

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

    return ctx.run_local("report", LOCAL, "twin.report", work, str)


def build_summary(ctx: RunContext, lake: ConformOutcome, prep: Preprocessed, models: dict[str, TrainedModel],
                  models_summary: dict[str, Any], verdict: dict[str, Any], registration: Registration,
                  packages: dict[str, Package], serving: dict[str, Any]) -> dict[str, Any]:
    out, schema, registry = ctx.out, ctx.schema, registration.result
    return {
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint,
                   "path": str(ctx.args.schema)},
        "rows": {"raw": lake.rows_in, "curated": lake.rows_curated, "quarantined": lake.rows_quarantined,
                 "usage_subscribers": lake.usage_subscribers, "train": prep.summary["train"],
                 "validation": prep.summary["validation"], "test": prep.summary["test"]},
        "conform_engine": lake.engine,
        "models": models_summary,
        "champion": verdict["champion"],
        "gate": verdict,
        "registry": registry,
        "compile": {n: p.report for n, p in packages.items()},
        "traced_vs_eager_max_abs_diff": packages["pytorch"].report["max_abs_diff_traced_vs_eager"],
        "serving": serving,
        "profile": ctx.args.profile,
        "artefacts": {"model_dirs": {n: str(m.model_dir) for n, m in models.items()},
                      "packages": {n: str(p.tarball) for n, p in packages.items()},
                      "summary": str(out / "summary.json"), "report": str(out / "report.html"),
                      "steps": str(out / "steps.json"),
                      "mlflow_ui": f"mlflow ui --backend-store-uri {registry['tracking_uri']}"},
    }
