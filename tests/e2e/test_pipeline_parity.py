"""Twin parity: the SageMaker pipeline runs the scripts the twin ran, with the arguments the twin passed.

Step by step, the entry point and arguments in the synthesized template's pipeline body (Dev) are compared
with what the twin recorded in steps.json: both argument lists are parsed by the job's own parse_args (with
the SM_* environment each gets) and must agree on every option, except
- container paths (/opt/ml/...), which may differ where the cloud step mounts its data elsewhere, as long as
  the pipeline's path is one the step really mounts (an input, output, channel, /opt/ml/model or the code);
- the hyperparameters the twin's profile sets (--profile quick trains briefly);
- options whose pipeline value is only known at run time (a `Get` of an earlier step's output, e.g.
  ChampionLookup's HasChampion), which must name a real step of the pipeline;
- KNOWN_DIFFERENCES, each with its reason.
The loop's retrain (steps "retrain-...") is a second execution of the same pipeline: its job steps are
compared with the pipeline's steps the same way (RETRAIN_TO_PIPELINE).
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from infra.config import load_environment
from tests.conftest import ROOT
from tests.infra.conftest import synthesize
from tests.infra.pipeline_checks import all_steps, definition_of, gets
from twin.job_steps import PROFILES

pytestmark = pytest.mark.e2e

TWIN_TO_PIPELINE = {
    "preprocess": "Preprocess",
    "train-xgboost": "TrainXGBoost",
    "train-pytorch": "TrainPyTorch",
    "evaluate-xgboost": "EvaluateXGBoost",
    "evaluate-pytorch": "EvaluatePyTorch",
    "compile-xgboost": "PackageXGBoost",
    "compile-pytorch": "CompileNeuron",
    "select-model": "SelectModel",
    "baseline": "Baseline",
}
# The loop's retrain: the same pipeline again, with the champion re-scored (EvaluateChampion) this time.
RETRAIN_TO_PIPELINE = {
    "retrain-train-xgboost": "TrainXGBoost",
    "retrain-evaluate-xgboost": "EvaluateXGBoost",
    "retrain-evaluate-champion": "EvaluateChampion",
    "retrain-evaluate-pytorch": "EvaluatePyTorch",  # only when the champion is XGBoost (twin.retrain)
    "retrain-select-model": "SelectModel",
}
# Twin steps that are not pipeline jobs, and where their cloud counterpart lives.
TWIN_ONLY = {
    "conform": "the lake's Glue jobs, upstream of the pipeline (FeaturesReady starts it)",
    "gate": "the Gate condition step (thresholds from the same ml.quality_gate)",
    "register": "RegisterNeuron / RegisterXGBoost (SageMaker model registry instead of MLflow)",
    "serve": "the endpoint stack",
    "batch-score": "the batch-scoring pipeline (infra/pipeline/scoring.py), not the training pipeline",
    "traffic-week-1": "requests to the endpoint, captured by its data capture",
    "traffic-week-2": "requests to the endpoint, captured by its data capture",
    "drift-week-1": "the monitoring engine's drift job (training_jobs.drift), not part of this pipeline",
    "drift-week-2": "the monitoring engine's drift job (training_jobs.drift), not part of this pipeline",
    "retrain-decision": "lambdas/start_training on the drift alarms' events",
    "retrain-gate": "the Gate condition step of the retrain's execution",
    "retrain-register": "RegisterXGBoost of the retrain's execution (MLflow instead), when the challenger may register",
    "report": "a local HTML report",
}
# Pipeline steps the twin does not run as such (docs/pipeline.md, "Twin parity"): a twin run starts with no
# champion, so the first run's ChampionLookup/EvaluateChampion are the PyTorch candidate's evaluation (as the
# pipeline's stand-in); the retrain re-scores the champion (retrain-evaluate-champion).
PIPELINE_ONLY = {"ChampionLookup", "EvaluateChampion", "Gate", "GateFailed", "ShipChoice", "RegisterNeuron",
                 "RegisterXGBoost"}
KNOWN_DIFFERENCES = {
    ("CompileNeuron", "compiler"): "compiled with torch-neuronx on trn1, where the compiled model runs; the twin "
    "has no Neuron device and traces with torch.jit (--compiler auto)",
}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict[str, Any]:
    """The Dev definition, from a synthesized template (only Dev is synthesized)."""
    config_dir = tmp_path_factory.mktemp("config")
    shutil.copy(ROOT / "config" / "dev.yaml", config_dir / "dev.yaml")
    assembly = synthesize(tmp_path_factory.mktemp("cdk") / "cdk.out", config_dir, delivery=False)
    config = load_environment(config_dir / "dev.yaml")
    return definition_of(assembly.template("Dev", "MlPipeline"), config.region, config.account)


def twin_steps(run: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads((run / "steps.json").read_text())["steps"]}


def toolkit_argv(hyperparameters: dict[str, str]) -> list[str]:
    """What the SageMaker training toolkit passes the program: `--name value`, sorted, values JSON-decoded."""
    argv = []
    for name in sorted(k for k in hyperparameters if not k.startswith("sagemaker_")):
        try:
            value = json.loads(hyperparameters[name])
        except json.JSONDecodeError:
            value = hyperparameters[name]
        argv += [f"--{name}", str(value)]
    return argv


def invocation(step: dict[str, Any]) -> tuple[str, list[Any], dict[str, str], set[str]]:
    """(module, argv, environment, container paths the step mounts) of a pipeline job step; an argument known
    only at run time stays a `{"Get": ...}` (runtime_options replaces it)."""
    args = step["Arguments"]
    if step["Type"] == "Processing":
        spec = args["AppSpecification"]
        mounts = {i["S3Input"]["LocalPath"] for i in args["ProcessingInputs"]}
        mounts |= {o["S3Output"]["LocalPath"] for o in args["ProcessingOutputConfig"]["Outputs"]}
        return spec["ContainerEntrypoint"][-1], list(spec["ContainerArguments"]), {}, mounts
    hyperparameters = args["HyperParameters"]
    module = hyperparameters["sagemaker_program"].removesuffix(".py").replace("/", ".")
    channels = {c["ChannelName"]: f"/opt/ml/input/data/{c['ChannelName']}" for c in args["InputDataConfig"]}
    env = {f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()}
    env |= {"SM_MODEL_DIR": "/opt/ml/model", "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data"}
    return module, toolkit_argv(hyperparameters), env, set(env.values())


def runtime_options(argv: list[Any], twin_argv: list[str], steps: set[str]) -> tuple[list[str], set[str]]:
    """The pipeline's argv with each run-time value (a Get of a real step's output) replaced by the twin's value
    for the same option, and the names of those options."""
    out, runtime = [], set()
    for i, value in enumerate(argv):
        if isinstance(value, str):
            out.append(value)
            continue
        option = argv[i - 1]
        paths = gets(value)
        assert paths and all(p.split(".")[1] in steps for p in paths if p.startswith("Steps.")), (option, value)
        out.append(twin_argv[twin_argv.index(option) + 1])
        runtime.add(option.lstrip("-").replace("-", "_"))
    return out, runtime


def parsed(job: Any, argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    with monkeypatch.context() as patch:
        for name in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION",
                     "SM_CHANNEL_TRANSFORMER", "SM_CHANNEL_MODEL", "SM_CHANNEL_CODE"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return dict(vars(job.parse_args(argv)))


def profile_options(profile: str, twin_step: str) -> set[str]:
    """The hyperparameters the twin's --profile sets for a training step (none for other steps)."""
    if not twin_step.startswith("train-"):
        return set()
    argv = PROFILES[profile][twin_step.removeprefix("train-")]
    return {a.lstrip("-").replace("-", "_") for a in argv if a.startswith("--")}


def test_every_twin_step_has_its_place_in_the_cloud(passing_run: Path, pipeline: dict[str, Any]) -> None:
    recorded = twin_steps(passing_run)
    known = set(TWIN_TO_PIPELINE) | set(TWIN_ONLY) | set(RETRAIN_TO_PIPELINE)
    assert set(recorded) <= known, sorted(set(recorded) - known)
    assert set(TWIN_TO_PIPELINE) | set(TWIN_ONLY) - {"retrain-register"} <= set(recorded)
    names = {s["Name"] for s in all_steps(pipeline["Steps"])}
    assert names == set(TWIN_TO_PIPELINE.values()) | PIPELINE_ONLY
    assert set(RETRAIN_TO_PIPELINE.values()) <= names
    jobs = {n for n, s in recorded.items() if s["kind"] in ("processing-job", "training-job")}
    assert jobs - {"drift-week-1", "drift-week-2"} <= set(TWIN_TO_PIPELINE) | set(RETRAIN_TO_PIPELINE)


@pytest.mark.parametrize("twin_step", sorted(TWIN_TO_PIPELINE) + sorted(RETRAIN_TO_PIPELINE))
def test_pipeline_step_runs_what_the_twin_ran(passing_run: Path, pipeline: dict[str, Any], twin_step: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    recorded = twin_steps(passing_run)
    if twin_step == "retrain-evaluate-pytorch" and twin_step not in recorded:
        pytest.skip("the champion is the PyTorch network: the retrain re-scores it as retrain-evaluate-champion")
    record = recorded[twin_step]
    steps = {s["Name"]: s for s in all_steps(pipeline["Steps"])}
    step = steps[{**TWIN_TO_PIPELINE, **RETRAIN_TO_PIPELINE}[twin_step]]
    module, argv, env, mounts = invocation(step)
    assert module == record["entry_point"], (step["Name"], module)
    argv, runtime = runtime_options(argv, record["container_argv"], set(steps))
    job = importlib.import_module(module)
    twin = parsed(job, record["container_argv"], record["container_environment"], monkeypatch)
    cloud = parsed(job, argv, env, monkeypatch)
    profile = json.loads((passing_run / "summary.json").read_text())["profile"]
    unexplained = []
    for option, ours in twin.items():
        theirs = cloud[option]
        profile_set = profile_options(profile, twin_step.removeprefix("retrain-"))
        if ours == theirs or option in profile_set or option in runtime:
            continue
        if isinstance(ours, str) and isinstance(theirs, str) and ours.startswith("/opt/ml/"):
            mounted = any(theirs == m or theirs.startswith(f"{m}/") for m in mounts | {"/opt/ml/code"})
            assert theirs.startswith("/opt/ml/") and mounted, f"{step['Name']} --{option} {theirs} is not mounted"
            continue
        if (step["Name"], option) in KNOWN_DIFFERENCES:
            continue
        unexplained.append(f"--{option}: twin {ours!r}, pipeline {theirs!r}")
    assert not unexplained, f"{step['Name']} differs from the twin's {twin_step}: {unexplained}"
    if step["Type"] == "Processing" and record["kind"] == "processing-job":
        # Every directory the twin staged for the job is mounted by the cloud step too, except the schema,
        # which the pipeline reads from the code bundle (/opt/ml/code/dataset/schemas/).
        staged = {p for p in record["container_paths"] if not p.endswith("/schema")}
        assert staged <= mounts, (step["Name"], sorted(staged - mounts))


def test_pipeline_order_follows_the_twins(passing_run: Path, pipeline: dict[str, Any]) -> None:
    """Where a pipeline step uses an earlier step's output, the twin ran that earlier step first."""
    order = list(twin_steps(passing_run))
    by_pipeline = {v: k for k, v in TWIN_TO_PIPELINE.items()}
    for step in all_steps(pipeline["Steps"]):
        if step["Name"] not in by_pipeline:
            continue
        for path in gets(step["Arguments"]):
            upstream = path.split(".")[1] if path.startswith("Steps.") else None
            if upstream in by_pipeline:
                assert order.index(by_pipeline[upstream]) < order.index(by_pipeline[step["Name"]]), (upstream, step)
