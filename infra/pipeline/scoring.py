"""The batch-scoring pipeline: every subscriber of the feature table scored by the approved model, into
the lake's scores table (docs/serving.md "Batch scoring").

    ChampionLookup -> PrepareRequests (feature table -> JSON-lines requests + ids; which package, its type)
      -> HasModelPackage: no  -> NoModelPackage (fails, saying why)
                          yes -> CreateScoringModel (from the package) -> ScoreSubscribers (Batch Transform)
                                 -> PublishScores (-> <scores table>/scoring_date=D/scores.parquet)

Which package: the `ModelPackageArn` parameter (the deployer passes the package it deployed), else the
champion ChampionLookup finds (the newest Approved package of the group; the schedule starts runs with
no parameters). Where the transform runs follows the package's model type: a PyTorch (Neuron) package on
ml.batch_scoring.pytorch_instance_type, an XGBoost package on its CPU type; PrepareRequests decides both
(training_jobs/batch_scoring.py) and the later steps read them from its property file. Deploy-time values
are the churn pipeline's Fn::Sub variables plus the lake's data key and the scores table's location.
"""

from __future__ import annotations

from dataset.scores_table import SCORES_PARTITION
from infra.pipeline.churn import (
    ARTIFACT_BUCKET,
    ARTIFACT_PREFIX,
    CHAMPION_LOOKUP,
    CODE_DIR,
    FEATURES_LOCATION,
    ML_KEY,
    PROCESSING,
    PROCESSING_BOOTSTRAP,
    VARIABLES,
    VPC_VARIABLES,
    ChurnPipelineInputs,
    model_package_group_name,
    var,
)
from infra.pipeline.expressions import EXECUTION_ID, Join, JsonGet, Parameter
from infra.pipeline.render import Pipeline
from infra.pipeline.steps import (
    Condition,
    ConditionStep,
    CreateModelStep,
    FailStep,
    JobSecurity,
    LambdaStep,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    TransformStep,
)

DATA_KEY = "DataKeyArn"
SCORES_LOCATION = "ScoresLocation"
SCORING_VARIABLES = (*VARIABLES, DATA_KEY, SCORES_LOCATION)
# Under the churn pipeline's prefix, which the Foundation grants the job and pipeline roles.
SCORING_PREFIX = f"{ARTIFACT_PREFIX}/batch-scoring"
# What the transform sends and accepts: one record per line in, one prediction per line out.
CONTENT_TYPE = "application/jsonlines"
# ChampionLookup re-scores a stand-in when there is no champion; this pipeline never reads it (HasChampion
# "false" gives ChampionModelPackageArn "none"), but the function requires an s3:// URI.
NO_CANDIDATE = f"s3://{var(ARTIFACT_BUCKET)}/{SCORING_PREFIX}/no-candidate"

MODEL_PACKAGE_ARN = Parameter(
    "ModelPackageArn", "", "Model package to score with; empty = the newest Approved package of the group"
)
MODEL_TYPE = Parameter("ModelType", "", "xgboost or pytorch; only for a ModelPackageArn that is not the champion")
FEATURES_URI = Parameter("FeaturesUri", var(FEATURES_LOCATION), "s3:// feature table location or one partition")
SNAPSHOT_DATE = Parameter("SnapshotDate", "", "Snapshot (YYYY-MM-DD) to score; empty = the latest partition")
SCORING_DATE = Parameter("ScoringDate", "", "Partition of the scores table (YYYY-MM-DD); empty = today (UTC)")
PARAMETERS = (MODEL_PACKAGE_ARN, MODEL_TYPE, FEATURES_URI, SNAPSHOT_DATE, SCORING_DATE)


def batch_scoring_pipeline_name(env_name: str) -> str:
    """Named: the deployer starts it after each deployment, operators start it by hand."""
    return f"telecom-ml-{env_name}-churn-batch-scoring"


def transform_environment(max_payload_mb: int) -> dict[str, str]:
    """The handler's limits for one mini-batch (training_jobs.batch_scoring.transform_environment; a test
    keeps the two equal without importing job code at synth)."""
    payload = str(max_payload_mb * 1024 * 1024)
    return {"CHURN_MAX_RECORDS": payload, "CHURN_MAX_PAYLOAD_BYTES": payload}


def build(ctx: ChurnPipelineInputs) -> Pipeline:
    """The batch-scoring pipeline of one environment."""
    lookup = _champion_lookup(ctx)
    prepare = _prepare(ctx, lookup)
    model = CreateModelStep("CreateScoringModel", _decided(prepare, "model_package_arn"), ctx.security())
    transform = _transform(ctx, prepare, model)
    publish = _publish(ctx, prepare, transform)
    has_package = ConditionStep(
        name="HasModelPackage",
        conditions=(Condition("Equals", _decided(prepare, "has_package"), "true"),),
        if_steps=(model, transform, publish),
        else_steps=(
            FailStep(
                "NoModelPackage",
                Join(
                    " ",
                    (
                        f"Nothing to score with: ModelPackageArn is empty and {model_package_group_name(ctx.env_name)}",
                        "has no Approved model package (ChampionLookup:",
                        lookup.output("ChampionModelPackageArn"),
                        ")",
                    ),
                ),
            ),
        ),
    )
    return Pipeline(
        name=batch_scoring_pipeline_name(ctx.env_name),
        parameters=PARAMETERS,
        steps=(lookup, prepare, has_package),
        variables=SCORING_VARIABLES + (VPC_VARIABLES if ctx.vpc else ()),
    )


def _decided(prepare: ProcessingStep, path: str) -> JsonGet:
    return JsonGet(prepare.name, "Scoring", path)


def _execution_path(step: str, output: str) -> Join:
    return Join("/", (f"s3://{var(ARTIFACT_BUCKET)}/{SCORING_PREFIX}/executions", EXECUTION_ID, step, output))


def _champion_lookup(ctx: ChurnPipelineInputs) -> LambdaStep:
    return LambdaStep(
        name="ChampionLookup",
        function_arn=var(CHAMPION_LOOKUP),
        inputs={
            "ModelPackageGroupName": model_package_group_name(ctx.env_name),
            "CandidateModelDataUrl": NO_CANDIDATE,
            "XGBoostImageUri": ctx.image("xgboost"),
            "PyTorchImageUri": ctx.image("pytorch"),
        },
        outputs=(
            "HasChampion",
            "ChampionModelType",
            "ChampionModelDataUrl",
            "ChampionImageUri",
            "ChampionModelPackageArn",
        ),
    )


def _code(ctx: ChurnPipelineInputs) -> ProcessingInput:
    return ProcessingInput("code", ctx.code_uri, f"{PROCESSING}/input/code")


def _prepare(ctx: ChurnPipelineInputs, lookup: LambdaStep) -> ProcessingStep:
    scoring = ctx.config.ml.batch_scoring
    outputs = ("requests", "ids", "scoring")
    return ProcessingStep(
        name="PrepareRequests",
        image=ctx.image("xgboost"),
        entrypoint=("/bin/sh", "-c", PROCESSING_BOOTSTRAP, "training_jobs.batch_scoring"),
        container_arguments=(
            "prepare",
            "--features",
            f"{PROCESSING}/input/features",
            "--schema",
            f"{CODE_DIR}/{ctx.schema_path}",
            "--output-dir",
            f"{PROCESSING}/output",
            "--shard-rows",
            str(scoring.shard_rows),
            Join("=", ("--model-package-arn", MODEL_PACKAGE_ARN)),
            Join("=", ("--model-type", MODEL_TYPE)),
            Join("=", ("--snapshot-date", SNAPSHOT_DATE)),
            Join("=", ("--scoring-date", SCORING_DATE)),
            "--champion-package-arn",
            lookup.output("ChampionModelPackageArn"),
            "--champion-model-type",
            lookup.output("ChampionModelType"),
            "--model-package-group",
            model_package_group_name(ctx.env_name),
            "--pytorch-instance-type",
            scoring.instance_type("pytorch", ctx.config.ml),
            "--xgboost-instance-type",
            scoring.instance_type("xgboost", ctx.config.ml),
        ),
        inputs=(_code(ctx), ProcessingInput("features", FEATURES_URI, f"{PROCESSING}/input/features")),
        outputs=tuple(
            ProcessingOutput(o, _execution_path("PrepareRequests", o), f"{PROCESSING}/output/{o}") for o in outputs
        ),
        compute=ctx.processing_compute(scoring.prepare),
        security=ctx.security(),
        property_files=(PropertyFile("Scoring", "scoring", "scoring.json"),),
    )


def _transform(ctx: ChurnPipelineInputs, prepare: ProcessingStep, model: CreateModelStep) -> TransformStep:
    scoring = ctx.config.ml.batch_scoring
    return TransformStep(
        name="ScoreSubscribers",
        model_name=model.model_name,
        input_uri=prepare.output_uri("requests"),
        output_uri=_execution_path("ScoreSubscribers", "predictions"),
        content_type=CONTENT_TYPE,
        accept=CONTENT_TYPE,
        instance_type=_decided(prepare, "instance_type"),
        instance_count=scoring.instance_count,
        max_payload_mb=scoring.max_payload_mb,
        kms_key=var(ML_KEY),
        environment=transform_environment(scoring.max_payload_mb),
    )


def _publish(ctx: ChurnPipelineInputs, prepare: ProcessingStep, transform: TransformStep) -> ProcessingStep:
    """Writes into the lake's features zone: volume and output under the lake's data key."""
    local = {name: f"{PROCESSING}/input/{name}" for name in ("ids", "predictions", "scoring")}
    partition = Join("", (var(SCORES_LOCATION), f"{SCORES_PARTITION}=", _decided(prepare, "scoring_date")))
    lake_security = JobSecurity(
        role_arn=ctx.security().role_arn,
        kms_key=var(DATA_KEY),
        security_group_ids=ctx.security().security_group_ids,
        subnets=ctx.security().subnets,
    )
    return ProcessingStep(
        name="PublishScores",
        image=ctx.image("xgboost"),
        entrypoint=("/bin/sh", "-c", PROCESSING_BOOTSTRAP, "training_jobs.batch_scoring"),
        container_arguments=(
            "publish",
            "--ids",
            local["ids"],
            "--predictions",
            local["predictions"],
            "--scoring",
            local["scoring"],
            "--output-dir",
            f"{PROCESSING}/scores",
        ),
        inputs=(
            _code(ctx),
            ProcessingInput("ids", prepare.output_uri("ids"), local["ids"]),
            ProcessingInput("predictions", transform.output_path, local["predictions"]),
            ProcessingInput("scoring", prepare.output_uri("scoring"), local["scoring"]),
        ),
        outputs=(ProcessingOutput("scores", partition, f"{PROCESSING}/scores"),),
        compute=ctx.processing_compute(ctx.config.ml.batch_scoring.publish),
        security=lake_security,
    )
