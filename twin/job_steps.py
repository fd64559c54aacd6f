"""The twin steps that run job scripts: preprocess, train-<model>, evaluate-<model>, select-model, baseline,
compile-<model>.

Each lays out its inputs the way SageMaker would under --out, then calls the job's `main(argv)`
through RunContext.run_job with the arguments the pipeline passes, recording the call:

  preprocess         processing/preprocess/{input/features,input/schema,output}   /opt/ml/processing/...
  train-<model>      training/<model>/{input/data/<channel>,model,output/data}   /opt/ml/..., SM_* env
  evaluate-<model>   processing/evaluate-<model>/{model,test,evaluation}          /opt/ml/processing/...
  select-model       processing/select-model/{input/<model>,selection}            /opt/ml/processing/...
  baseline           processing/baseline/{input/train,input/schema,baseline}      /opt/ml/processing/...
  compile-<model>    compile/<model>/{model,output}                              /opt/ml/processing/...

The retrain of the loop (twin.retrain) runs train/evaluate/select-model again under <run>/retrain with
step names prefixed "retrain-" (`root` and `prefix` below).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.config import ModelChoiceConfig
from twin import numbers as fmt
from twin.conform import ConformOutcome
from twin.run_context import RunContext, read_json, stage_channel
from twin.step_record import PROCESSING_JOB, TRAINING_JOB

MODELS = ("xgboost", "pytorch")
PROFILES: dict[str, dict[str, list[str]]] = {
    "full": {"xgboost": [], "pytorch": []},
    "quick": {"xgboost": ["--num-round", "300", "--eta", "0.1", "--early-stopping-rounds", "30"],
              "pytorch": ["--epochs", "15", "--patience", "5"]},
}
PROCESSING = "/opt/ml/processing"
TRAINING_CHANNELS = ("train", "validation", "transformer")


@dataclass(frozen=True)
class Preprocessed:
    output: Path
    summary: dict[str, Any]


@dataclass(frozen=True)
class TrainedModel:
    name: str
    model_dir: Path
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Evaluation:
    name: str
    output: Path
    report: dict[str, Any]

    @property
    def predictions(self) -> Path:
        return self.output / "predictions.csv"


@dataclass(frozen=True)
class Package:
    name: str
    tarball: Path
    report: dict[str, Any]


def preprocess(ctx: RunContext, lake: ConformOutcome) -> Preprocessed:
    base = ctx.out / "processing" / "preprocess"
    paths = {f"{PROCESSING}/input/features": base / "input" / "features",
             f"{PROCESSING}/input/schema": base / "input" / "schema",
             f"{PROCESSING}/output": base / "output"}
    stage_channel(lake.features_path, paths[f"{PROCESSING}/input/features"])
    paths[f"{PROCESSING}/input/schema"].mkdir(parents=True, exist_ok=True)
    schema_file = paths[f"{PROCESSING}/input/schema"] / "schema.yaml"
    shutil.copyfile(ctx.args.schema, schema_file)
    output = paths[f"{PROCESSING}/output"]
    argv = ["--input-data", str(paths[f"{PROCESSING}/input/features"]), "--schema", str(schema_file),
            "--output-dir", str(output), "--seed", str(ctx.args.seed)]

    def describe() -> str:
        return describe_preprocess(read_json(output / "preprocess_summary.json"))

    ctx.run_job("preprocess", PROCESSING_JOB, "training_jobs.preprocess", argv, paths, describe)
    return Preprocessed(output, read_json(output / "preprocess_summary.json"))


def train(ctx: RunContext, name: str, prep: Preprocessed, root: Path | None = None, prefix: str = "") -> TrainedModel:
    base = (root or ctx.out) / "training" / name
    paths = {f"/opt/ml/input/data/{c}": base / "input" / "data" / c for c in TRAINING_CHANNELS}
    for c in TRAINING_CHANNELS:
        stage_channel(prep.output / c, paths[f"/opt/ml/input/data/{c}"])
    paths |= {"/opt/ml/model": base / "model", "/opt/ml/output/data": base / "output" / "data"}
    env = {"SM_MODEL_DIR": str(base / "model"), "SM_OUTPUT_DATA_DIR": str(base / "output" / "data"),
           **{f"SM_CHANNEL_{c.upper()}": str(paths[f"/opt/ml/input/data/{c}"]) for c in TRAINING_CHANNELS}}
    # Hyperparameters arrive as `--name value`; the paths come from the SM_* environment.
    argv = ["--seed", str(ctx.args.seed), *PROFILES[ctx.args.profile][name]]

    def describe() -> str:
        meta = read_json(base / "model" / "metadata.json")
        return f"validation ROC-AUC {fmt.score(meta['metrics']['validation_roc_auc'])}"

    ctx.run_job(f"{prefix}train-{name}", TRAINING_JOB, f"training_jobs.train_{name}", argv, paths, describe, env)
    return TrainedModel(name, base / "model", read_json(base / "model" / "metadata.json"))


def evaluate(ctx: RunContext, model: TrainedModel, prep: Preprocessed, root: Path | None = None, prefix: str = "",
             label: str | None = None) -> Evaluation:
    """`label` names the evaluated model in the step's name (default: its type), e.g. "champion"."""
    step = f"{prefix}evaluate-{label or model.name}"
    base = (root or ctx.out) / "processing" / step.removeprefix(prefix)
    paths = {f"{PROCESSING}/model": base / "model", f"{PROCESSING}/test": base / "test",
             f"{PROCESSING}/evaluation": base / "evaluation"}
    stage_channel(model.model_dir, paths[f"{PROCESSING}/model"])
    stage_channel(prep.output / "test", paths[f"{PROCESSING}/test"])
    output = paths[f"{PROCESSING}/evaluation"]
    argv = ["--model-dir", str(paths[f"{PROCESSING}/model"]), "--test-data", str(paths[f"{PROCESSING}/test"]),
            "--output-dir", str(output)]

    def describe() -> str:
        t = read_json(output / "evaluation.json")["telecom_churn_metrics"]
        return (f"test ROC-AUC {fmt.score(t['roc_auc']['value'])}, top-decile lift "
                f"{fmt.times(t['top_decile_lift']['value'])}")

    ctx.run_job(step, PROCESSING_JOB, "training_jobs.evaluate", argv, paths, describe)
    return Evaluation(model.name, output, read_json(output / "evaluation.json"))


def select_model(ctx: RunContext, evaluations: dict[str, Evaluation], champion: Evaluation | None,
                 champion_type: str, choice: ModelChoiceConfig, root: Path | None = None, prefix: str = ""
                 ) -> dict[str, Any]:
    """SelectModel: which candidate ships and the champion floor (training_jobs.select_model's rule).

    No champion yet: as in the pipeline, the PyTorch candidate stands in (ChampionLookup hands over the
    candidate); its evaluation is the one evaluate-pytorch wrote, so the twin does not score it twice.
    """
    base = (root or ctx.out) / "processing" / "select-model"
    slots = {"xgboost": evaluations["xgboost"], "pytorch": evaluations["pytorch"],
             "champion": champion or evaluations["pytorch"]}
    paths = {f"{PROCESSING}/input/{n}": base / "input" / n for n in slots}
    for n, e in slots.items():
        stage_channel(e.output, paths[f"{PROCESSING}/input/{n}"])
    output = paths[f"{PROCESSING}/selection"] = base / "selection"
    argv = [*(a for n in slots for a in (f"--{n}", str(paths[f"{PROCESSING}/input/{n}"]))),
            "--has-champion", "true" if champion else "false", "--champion-model-type", champion_type,
            "--pytorch-tolerance", str(choice.pytorch_tolerance),
            "--champion-tolerance", str(choice.champion_tolerance), "--output-dir", str(output)]

    def describe() -> str:
        return str(read_json(output / "selection.json")["reason"])

    ctx.run_job(f"{prefix}select-model", PROCESSING_JOB, "training_jobs.select_model", argv, paths, describe)
    selection: dict[str, Any] = read_json(output / "selection.json")
    return selection


def baseline(ctx: RunContext, prep: Preprocessed) -> Path:
    """Baseline: statistics.json + constraints.json of the training split (the drift detector's reference)."""
    base = ctx.out / "processing" / "baseline"
    paths = {f"{PROCESSING}/input/train": base / "input" / "train",
             f"{PROCESSING}/input/schema": base / "input" / "schema", f"{PROCESSING}/baseline": base / "baseline"}
    stage_channel(prep.output / "train", paths[f"{PROCESSING}/input/train"])
    paths[f"{PROCESSING}/input/schema"].mkdir(parents=True, exist_ok=True)
    schema_file = paths[f"{PROCESSING}/input/schema"] / "schema.yaml"
    shutil.copyfile(ctx.args.schema, schema_file)
    output = paths[f"{PROCESSING}/baseline"]
    argv = ["--input-data", str(paths[f"{PROCESSING}/input/train"]), "--schema", str(schema_file),
            "--output-dir", str(output)]

    def describe() -> str:
        stats = read_json(output / "statistics.json")
        return (f"statistics.json + constraints.json of {fmt.count(stats['dataset']['item_count'])} training rows, "
                f"{len(stats['features'])} raw features")

    ctx.run_job("baseline", PROCESSING_JOB, "training_jobs.baseline", argv, paths, describe)
    return output


def compile_package(ctx: RunContext, model: TrainedModel) -> Package:
    base = ctx.out / "compile" / model.name
    paths = {f"{PROCESSING}/model": base / "model", f"{PROCESSING}/output": base / "output"}
    stage_channel(model.model_dir, paths[f"{PROCESSING}/model"])
    output = paths[f"{PROCESSING}/output"]
    argv = ["--model-dir", str(paths[f"{PROCESSING}/model"]), "--output-dir", str(output),
            "--batch-size", str(ctx.args.batch_size)]

    def describe() -> str:
        return describe_compile(read_json(output / "compile_report.json"))

    ctx.run_job(f"compile-{model.name}", PROCESSING_JOB, "training_jobs.compile_model", argv, paths, describe)
    return Package(model.name, output / "model.tar.gz", read_json(output / "compile_report.json"))


def describe_preprocess(s: dict[str, Any]) -> str:
    return (f"{fmt.count(s['rows'])} rows → train {fmt.count(s['train'])}, validation "
            f"{fmt.count(s['validation'])}, test {fmt.count(s['test'])}; {s['n_features']} model features; "
            f"churn rate {fmt.percent(s['positive_rate'])}")


def describe_compile(r: dict[str, Any]) -> str:
    if r["format"] == "torchscript":
        return (f"TorchScript ({r['compiler']}) for batches of {r['batch_size']}; traced vs eager max "
                f"difference {fmt.difference(r['max_abs_diff_traced_vs_eager'])}")
    return "XGBoost model.json packaged as is (no tracing)"
