"""The churn pipeline: the twin's steps in the cloud, gated, registered, compiled for Inferentia2.

    Preprocess -> TrainXGBoost || TrainPyTorch -> ChampionLookup
      -> EvaluateXGBoost || EvaluatePyTorch || EvaluateChampion (one test split) -> SelectModel
      -> Gate: shipped candidate's ROC-AUC and top-decile lift >= thresholds and ROC-AUC >= champion - tolerance
           no  -> GateFailed (message with the numbers)
           yes -> Baseline, ShipChoice: PyTorch -> CompileNeuron (trn1) -> RegisterNeuron (inf2 image)
                                        XGBoost -> PackageXGBoost -> RegisterXGBoost (CPU image)

docs/pipeline.md explains each step, what it writes where and the model-choice rule. Everything fixed
at deploy time is a `${Name}` Fn::Sub variable (VARIABLES); everything an execution decides is a
parameter or a step property.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from infra.config import EnvironmentConfig, ProcessingStepConfig, TrainingStepConfig
from infra.pipeline.expressions import EXECUTION_ID, Join, JsonGet, Parameter
from infra.pipeline.render import Pipeline
from infra.pipeline.steps import (
    Cache,
    Channel,
    Compute,
    Condition,
    ConditionStep,
    FailStep,
    JobSecurity,
    LambdaStep,
    MetricsFile,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModelStep,
    Step,
    TrainingStep,
)

# Fn::Sub variables the stack fills in (render.sub_body escapes every other `${`).
ARTIFACT_BUCKET = "ArtifactBucket"
CODE_BUCKET = "CodeBucket"
JOB_ROLE = "JobRoleArn"
ML_KEY = "MlKeyArn"
CHAMPION_LOOKUP = "ChampionLookupArn"
FEATURES_LOCATION = "FeaturesLocation"
JOB_SECURITY_GROUP = "JobSecurityGroup"
JOB_SUBNETS = ("JobSubnet1", "JobSubnet2")
VARIABLES = (ARTIFACT_BUCKET, CODE_BUCKET, JOB_ROLE, ML_KEY, CHAMPION_LOOKUP, FEATURES_LOCATION)
VPC_VARIABLES = (JOB_SECURITY_GROUP, *JOB_SUBNETS)

# Everything the pipeline writes lives under this prefix of the ML artefact bucket.
ARTIFACT_PREFIX = "churn-pipeline"
# What the evaluate step writes for prediction drift (= training_jobs.evaluate.BASELINE_PREDICTIONS, = the
# deployer's baseline.PREDICTIONS_FILE; a test keeps them equal) and the package property that names it.
BASELINE_PREDICTIONS = "baseline_predictions.csv"
BASELINE_PREDICTIONS_PROPERTY = "baseline_predictions_uri"
PROCESSING = "/opt/ml/processing"
CODE_DIR = "/opt/ml/code"
SEED = "42"

# The one way a Processing job runs a job script: unpack the code bundle (whatever its file is called)
# into /opt/ml/code, then `python3 -m <module> <arguments>`, exactly as the twin calls `main(argv)`.
PROCESSING_BOOTSTRAP = (
    f"set -e; mkdir -p {CODE_DIR}; "
    f'for f in {PROCESSING}/input/code/*; do tar -xzf "$f" -C {CODE_DIR}; done; '
    f'cd {CODE_DIR}; exec python3 -m "$0" "$@"'
)
SERVING_CONTENT_TYPES = ("application/json", "text/csv")

SNAPSHOT_DATE = Parameter("SnapshotDate", "1970-01-01", "Snapshot date (YYYY-MM-DD) of the feature partition")
FEATURES_URI = Parameter("FeaturesUri", f"${{{FEATURES_LOCATION}}}", "s3:// prefix of the snapshot's features")
TRIGGER_REASON = Parameter("TriggerReason", "manual start", "Why this execution started (at most 256 characters)")
PARAMETERS = (SNAPSHOT_DATE, FEATURES_URI, TRIGGER_REASON)


def var(name: str) -> str:
    return f"${{{name}}}"


def pipeline_name(env_name: str) -> str:
    """Named: operators type it (aws sagemaker start-pipeline-execution --pipeline-name ...)."""
    return f"telecom-ml-{env_name}-churn"


def model_package_group_name(env_name: str) -> str:
    return f"telecom-ml-{env_name}-churn"


def pipeline_role_name(env_name: str) -> str:
    """Named, like the job role: the Foundation creates it and grants the artefacts it reads there."""
    return f"telecom-ml-{env_name}-pipeline-execution"


@dataclass(frozen=True)
class ChurnPipelineInputs:
    config: EnvironmentConfig
    schema_path: str  # repository-relative dataset schema, shipped in the code bundle
    code_key: str  # S3 object key of the code bundle asset in ${CodeBucket}

    @property
    def env_name(self) -> str:
        return self.config.name

    @property
    def vpc(self) -> bool:
        return self.config.network.mode == "vpc"

    def image(self, role: str) -> str:
        return self.config.ml.pipeline.image(role, self.config.region)

    def security(self) -> JobSecurity:
        if not self.vpc:
            return JobSecurity(role_arn=var(JOB_ROLE), kms_key=var(ML_KEY))
        return JobSecurity(
            role_arn=var(JOB_ROLE),
            kms_key=var(ML_KEY),
            security_group_ids=(var(JOB_SECURITY_GROUP),),
            subnets=tuple(var(s) for s in JOB_SUBNETS),
        )

    @property
    def code_uri(self) -> str:
        return f"s3://{var(CODE_BUCKET)}/{self.code_key}"

    @property
    def schema_in_container(self) -> str:
        return f"{CODE_DIR}/{self.schema_path}"

    def processing_compute(self, step: ProcessingStepConfig) -> Compute:
        ml = self.config.ml
        return Compute(ml.processing_type(step), step.instance_count, step.volume_gb, 60 * step.max_runtime_minutes)

    def training_compute(self, step: TrainingStepConfig) -> Compute:
        ml = self.config.ml
        return Compute(ml.training_type(step), step.instance_count, step.volume_gb, 60 * step.max_runtime_minutes)

    @property
    def cache(self) -> Cache:
        return Cache(self.config.ml.pipeline.cache_expire_after)


def build(ctx: ChurnPipelineInputs) -> Pipeline:
    """The churn pipeline of one environment."""
    preprocess = _preprocess(ctx)
    train = {name: _train(ctx, name, preprocess) for name in ("xgboost", "pytorch")}
    lookup = _champion_lookup(ctx, train["pytorch"])
    evaluations = {
        "xgboost": _evaluate(ctx, "EvaluateXGBoost", ctx.image("xgboost"), train["xgboost"].model_artifacts,
                             preprocess),
        "pytorch": _evaluate(ctx, "EvaluatePyTorch", ctx.image("pytorch"), train["pytorch"].model_artifacts,
                             preprocess),
        "champion": _evaluate(ctx, "EvaluateChampion", lookup.output("ChampionImageUri"),
                              lookup.output("ChampionModelDataUrl"), preprocess),
    }
    select = _select(ctx, evaluations, lookup)
    baseline = _baseline(ctx, preprocess)
    compile_neuron = _compile_neuron(ctx, train["pytorch"])
    package_xgboost = _package_xgboost(ctx, train["xgboost"])
    ship_choice = ConditionStep(
        name="ShipChoice",
        conditions=(Condition("Equals", JsonGet(select.name, "Selection", "ship.model"), "pytorch"),),
        if_steps=(
            compile_neuron,
            _register(ctx, "pytorch", compile_neuron, train["pytorch"], evaluations["pytorch"], baseline),
        ),
        else_steps=(
            package_xgboost,
            _register(ctx, "xgboost", package_xgboost, train["xgboost"], evaluations["xgboost"], baseline),
        ),
    )
    gate = _gate(ctx, select, if_steps=(baseline, ship_choice))
    return Pipeline(
        name=pipeline_name(ctx.env_name),
        parameters=PARAMETERS,
        steps=(preprocess, *train.values(), lookup, *evaluations.values(), select, gate),
        variables=VARIABLES + (VPC_VARIABLES if ctx.vpc else ()),
    )


# ----------------------------------------------------------------------------------------- helpers
def _execution_path(step: str, output: str) -> Join:
    """Where a non-cached step writes: unique per execution."""
    return Join("/", (f"s3://{var(ARTIFACT_BUCKET)}/{ARTIFACT_PREFIX}/executions", EXECUTION_ID, step, output))


def fingerprint(step: Step) -> str:
    """A short hash of everything a step is given: its content-addressed outputs are named by it."""
    text = json.dumps(step.to_request(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _content_path(kind: str, digest: str, output: str) -> Join:
    """Where a cached step writes: the same arguments (code, settings, snapshot) give the same place,
    so a cache hit's outputs are never overwritten by a different run."""
    return Join("/", (f"s3://{var(ARTIFACT_BUCKET)}/{ARTIFACT_PREFIX}/{kind}/{digest}",
                      SNAPSHOT_DATE, output))


def _processing(ctx: ChurnPipelineInputs, name: str, module: str, **kwargs: Any) -> ProcessingStep:
    code = ProcessingInput("code", ctx.code_uri, f"{PROCESSING}/input/code")
    return ProcessingStep(
        name=name,
        entrypoint=("/bin/sh", "-c", PROCESSING_BOOTSTRAP, module),
        security=ctx.security(),
        **{**kwargs, "inputs": (code, *kwargs["inputs"])},
    )


def _with_content_outputs(step: ProcessingStep, kind: str) -> ProcessingStep:
    pending = replace(step, outputs=tuple(replace(o, s3_uri="pending") for o in step.outputs))
    digest = fingerprint(pending)
    return replace(step, outputs=tuple(replace(o, s3_uri=_content_path(kind, digest, o.name)) for o in step.outputs))


def _split(preprocess: ProcessingStep, split: str) -> Join:
    return Join("/", (preprocess.output_uri("preprocessed"), f"{split}/"))


# ------------------------------------------------------------------------------------------- steps
def _preprocess(ctx: ChurnPipelineInputs) -> ProcessingStep:
    pipeline = ctx.config.ml.pipeline
    arguments = ["--input-data", f"{PROCESSING}/input/features", "--schema", ctx.schema_in_container,
                 "--output-dir", f"{PROCESSING}/output", "--seed", SEED]
    if pipeline.preprocess_shards > 1:
        arguments += ["--shards", str(pipeline.preprocess_shards)]
    step = _processing(
        ctx,
        "Preprocess",
        "training_jobs.preprocess",
        image=ctx.image("xgboost"),
        container_arguments=tuple(arguments),
        inputs=(ProcessingInput("features", FEATURES_URI, f"{PROCESSING}/input/features"),),
        outputs=(ProcessingOutput("preprocessed", "pending", f"{PROCESSING}/output"),),
        compute=ctx.processing_compute(pipeline.preprocess),
        cache=ctx.cache,
    )
    return _with_content_outputs(step, "preprocess")


def _train(ctx: ChurnPipelineInputs, model: str, preprocess: ProcessingStep) -> TrainingStep:
    pipeline = ctx.config.ml.pipeline
    settings = pipeline.train_xgboost if model == "xgboost" else pipeline.train_pytorch
    compute = ctx.training_compute(settings)
    sharded = model == "xgboost" and compute.instance_count > 1
    name = "TrainXGBoost" if model == "xgboost" else "TrainPyTorch"
    step = TrainingStep(
        name=name,
        image=ctx.image(model),
        hyperparameters={
            "sagemaker_program": f"training_jobs/train_{model}.py",
            "sagemaker_submit_directory": f"/opt/ml/input/data/code/{ctx.code_key}",
            "seed": SEED,
        },
        channels=(
            Channel("train", _split(preprocess, "train"), "ShardedByS3Key" if sharded else "FullyReplicated"),
            Channel("validation", _split(preprocess, "validation")),
            Channel("transformer", _split(preprocess, "transformer")),
            Channel("code", ctx.code_uri),
        ),
        output_path=f"s3://{var(ARTIFACT_BUCKET)}/{ARTIFACT_PREFIX}/models",
        compute=compute,
        security=ctx.security(),
        spot_max_wait_seconds=settings.max_wait_seconds,
        cache=ctx.cache,
    )
    if settings.managed_spot:
        digest = fingerprint(step)
        checkpoints = Join("/", (f"s3://{var(ARTIFACT_BUCKET)}/{ARTIFACT_PREFIX}/checkpoints/{name}/{digest}",
                                 SNAPSHOT_DATE))
        step = replace(step, checkpoint_uri=checkpoints)
    return step


def _champion_lookup(ctx: ChurnPipelineInputs, candidate: TrainingStep) -> LambdaStep:
    return LambdaStep(
        name="ChampionLookup",
        function_arn=var(CHAMPION_LOOKUP),
        inputs={
            "ModelPackageGroupName": model_package_group_name(ctx.env_name),
            # No champion yet: the candidate stands in (scored, then ignored: HasChampion is "false").
            "CandidateModelDataUrl": candidate.model_artifacts,
            "XGBoostImageUri": ctx.image("xgboost"),
            "PyTorchImageUri": ctx.image("pytorch"),
        },
        outputs=("HasChampion", "ChampionModelType", "ChampionModelDataUrl", "ChampionImageUri",
                 "ChampionModelPackageArn"),
    )


def _evaluate(ctx: ChurnPipelineInputs, name: str, image: Any, model: Any, preprocess: ProcessingStep
              ) -> ProcessingStep:
    return _processing(
        ctx,
        name,
        "training_jobs.evaluate",
        image=image,
        container_arguments=("--model-dir", f"{PROCESSING}/model", "--test-data", f"{PROCESSING}/test",
                             "--output-dir", f"{PROCESSING}/evaluation"),
        inputs=(ProcessingInput("model", model, f"{PROCESSING}/model"),
                ProcessingInput("test", _split(preprocess, "test"), f"{PROCESSING}/test")),
        outputs=(ProcessingOutput("evaluation", _execution_path(name, "evaluation"), f"{PROCESSING}/evaluation"),),
        compute=ctx.processing_compute(ctx.config.ml.pipeline.evaluate),
        property_files=(PropertyFile("Evaluation", "evaluation", "evaluation.json"),),
    )


def _select(ctx: ChurnPipelineInputs, evaluations: dict[str, ProcessingStep], lookup: LambdaStep
            ) -> ProcessingStep:
    choice = ctx.config.ml.pipeline.model_choice
    local = {name: f"{PROCESSING}/input/{name}" for name in evaluations}
    return _processing(
        ctx,
        "SelectModel",
        "training_jobs.select_model",
        image=ctx.image("xgboost"),
        container_arguments=(
            "--xgboost", local["xgboost"], "--pytorch", local["pytorch"], "--champion", local["champion"],
            "--has-champion", lookup.output("HasChampion"),
            "--champion-model-type", lookup.output("ChampionModelType"),
            "--pytorch-tolerance", str(choice.pytorch_tolerance),
            "--champion-tolerance", str(choice.champion_tolerance),
            "--output-dir", f"{PROCESSING}/selection",
        ),
        inputs=tuple(ProcessingInput(name, step.output_uri("evaluation"), local[name])
                     for name, step in evaluations.items()),
        outputs=(ProcessingOutput("selection", _execution_path("SelectModel", "selection"),
                                  f"{PROCESSING}/selection"),),
        compute=ctx.processing_compute(ctx.config.ml.pipeline.evaluate),
        property_files=(PropertyFile("Selection", "selection", "selection.json"),),
    )


def _gate(ctx: ChurnPipelineInputs, select: ProcessingStep, if_steps: tuple[Step, ...]) -> ConditionStep:
    gate = ctx.config.ml.quality_gate

    def selected(path: str) -> JsonGet:
        return JsonGet(select.name, "Selection", path)

    message = Join(" ", (
        "Quality gate failed:", selected("ship.model"), "test ROC-AUC", selected("ship.roc_auc"),
        f"(min {gate.min_roc_auc}, champion floor", selected("champion.floor"), "), top-decile lift",
        selected("ship.top_decile_lift"), f"(min {gate.min_top_decile_lift}).", selected("reason"),
    ))
    return ConditionStep(
        name="Gate",
        conditions=(
            Condition("GreaterThanOrEqualTo", selected("ship.roc_auc"), gate.min_roc_auc),
            Condition("GreaterThanOrEqualTo", selected("ship.top_decile_lift"), gate.min_top_decile_lift),
            Condition("GreaterThanOrEqualTo", selected("ship.roc_auc"), selected("champion.floor")),
        ),
        if_steps=if_steps,
        else_steps=(FailStep(name="GateFailed", message=message),),
    )


def _baseline(ctx: ChurnPipelineInputs, preprocess: ProcessingStep) -> ProcessingStep:
    step = _processing(
        ctx,
        "Baseline",
        "training_jobs.baseline",
        image=ctx.image("xgboost"),
        container_arguments=("--input-data", f"{PROCESSING}/input/train", "--schema", ctx.schema_in_container,
                             "--output-dir", f"{PROCESSING}/baseline"),
        inputs=(ProcessingInput("train", _split(preprocess, "train"), f"{PROCESSING}/input/train"),),
        outputs=(ProcessingOutput("baseline", "pending", f"{PROCESSING}/baseline"),),
        compute=ctx.processing_compute(ctx.config.ml.pipeline.baseline),
        cache=ctx.cache,
    )
    return _with_content_outputs(step, "baseline")


def _compile_neuron(ctx: ChurnPipelineInputs, pytorch: TrainingStep) -> TrainingStep:
    pipeline = ctx.config.ml.pipeline
    return TrainingStep(
        name="CompileNeuron",
        image=ctx.image("neuron_compile"),
        hyperparameters={
            "sagemaker_program": "training_jobs/compile_model.py",
            "sagemaker_submit_directory": f"/opt/ml/input/data/code/{ctx.code_key}",
            "model-dir": "/opt/ml/input/data/model",
            "output-dir": "/opt/ml/model",
            "batch-size": str(pipeline.compile_batch_size),
            "compiler": "neuron",
            "seed": SEED,
        },
        channels=(Channel("model", pytorch.model_artifacts), Channel("code", ctx.code_uri)),
        output_path=f"s3://{var(ARTIFACT_BUCKET)}/{ARTIFACT_PREFIX}/compiled",
        # compile writes model.tar.gz itself: upload /opt/ml/model as it is, not wrapped in another archive.
        compression="NONE",
        compute=ctx.training_compute(pipeline.compile_neuron),
        security=ctx.security(),
        cache=ctx.cache,
    )


def _package_xgboost(ctx: ChurnPipelineInputs, xgboost: TrainingStep) -> ProcessingStep:
    return _processing(
        ctx,
        "PackageXGBoost",
        "training_jobs.compile_model",
        image=ctx.image("xgboost"),
        container_arguments=("--model-dir", f"{PROCESSING}/model", "--output-dir", f"{PROCESSING}/output",
                             "--batch-size", str(ctx.config.ml.pipeline.compile_batch_size)),
        inputs=(ProcessingInput("model", xgboost.model_artifacts, f"{PROCESSING}/model"),),
        outputs=(ProcessingOutput("package", _execution_path("PackageXGBoost", "package"), f"{PROCESSING}/output"),),
        compute=ctx.processing_compute(ctx.config.ml.pipeline.evaluate),
    )


def _register(ctx: ChurnPipelineInputs, model: str, package: Step, trained: TrainingStep,
              evaluation: ProcessingStep, baseline: ProcessingStep) -> RegisterModelStep:
    config = ctx.config
    if model == "pytorch":
        assert isinstance(package, TrainingStep)
        name, image, instance_type = "RegisterNeuron", ctx.image("neuron_serving"), config.ml.endpoint.instance_type
        model_data: Any = Join("", (package.model_artifacts, "model.tar.gz"))
        serving = "Inferentia2 (PyTorch Neuron)"
    else:
        assert isinstance(package, ProcessingStep)
        name, image = "RegisterXGBoost", ctx.image("xgboost")
        instance_type = config.ml.pipeline.xgboost_serving_instance_type
        model_data = Join("/", (package.output_uri("package"), "model.tar.gz"))
        serving = "CPU (SageMaker XGBoost image)"
    baseline_uri = baseline.output_uri("baseline")
    return RegisterModelStep(
        name=name,
        group=model_package_group_name(ctx.env_name),
        description=f"Churn model ({model}) for {serving}, from the {ctx.env_name} pipeline",
        image=image,
        model_data_url=model_data,
        environment={
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": config.region,
        },
        content_types=SERVING_CONTENT_TYPES,
        response_types=SERVING_CONTENT_TYPES,
        instance_types=(instance_type,),
        approval=config.ml.pipeline.approval,
        model_quality=MetricsFile(Join("/", (evaluation.output_uri("evaluation"), "evaluation.json"))),
        data_statistics=MetricsFile(Join("/", (baseline_uri, "statistics.json"))),
        data_constraints=MetricsFile(Join("/", (baseline_uri, "constraints.json"))),
        metadata={
            "model_type": model,
            # What ChampionLookup hands the next execution to re-score this model on its test split.
            "training_model_data_url": trained.model_artifacts,
            "snapshot_date": SNAPSHOT_DATE,
            "trigger_reason": TRIGGER_REASON,
            "pipeline_execution_id": EXECUTION_ID,
            # The shipped model's test-split probabilities (no subscriber ids): the deployer copies them to the
            # endpoint's current baseline for the drift job's prediction drift (lambdas/deployer/baseline.py).
            BASELINE_PREDICTIONS_PROPERTY: Join("/", (evaluation.output_uri("evaluation"), BASELINE_PREDICTIONS)),
        },
    )
