"""Batch scoring as synthesized: a definition SageMaker accepts whose PrepareRequests arguments the job
really takes, the reviewed golden copy, the schedule, scoped roles, and the lake's scores table."""

from __future__ import annotations

import itertools
import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from infra.config import load_all
from infra.constructs.lake import lake_catalog
from infra.pipeline import render, scoring
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.pipeline_checks import EXECUTION_ID, Execution, all_steps, definition_of, problems, sub_of
from training_jobs import batch_scoring

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}
STAGES = sorted(CONFIGS)
GOLDEN = Path(__file__).with_name("pipeline_golden") / "batch_scoring"
SUFFIX = "-churn-batch-scoring"
OPERATIONS = {
    "Processing": ("CreateProcessingJob", "ProcessingJobName"),
    "Model": ("CreateModel", "ModelName"),
    "Transform": ("CreateTransformJob", "TransformJobName"),
}
MODEL_NAME = f"pipelines-{EXECUTION_ID}-CreateScoringModel-x1y2z3"


def template(assembly: Assembly, stage: str) -> dict[str, Any]:
    return assembly.template(stage, "MlPipeline")


def definition(assembly: Assembly, stage: str) -> dict[str, Any]:
    config = CONFIGS[stage]
    return definition_of(template(assembly, stage), config.region, config.account, SUFFIX)


class ScoringExecution(Execution):
    """One execution with the champion registered: PrepareRequests' scoring.json is what the job wrote."""

    def __init__(self, document: dict[str, Any], decided: dict[str, Any]) -> None:
        super().__init__(document)
        self.decided = decided

    def get(self, path: str) -> Any:
        if path == "Steps.CreateScoringModel.ModelName":
            return MODEL_NAME
        if path == "Steps.ScoreSubscribers.TransformOutput.S3OutputPath":
            return self.value(self.steps["ScoreSubscribers"]["Arguments"]["TransformOutput"]["S3OutputPath"])
        return super().get(path)

    def json_get(self, json_get: dict[str, Any]) -> Any:
        assert json_get["PropertyFile"] == {"Get": "Steps.PrepareRequests.PropertyFiles.Scoring"}, json_get
        return self.decided[json_get["Path"]]


def run_prepare(document: dict[str, Any], tmp_path: Path, raw_csv: Path) -> dict[str, Any]:
    """PrepareRequests' container arguments as the execution resolves them, run by the real job, with the
    container's paths mapped to local folders: what it decides is what the later steps read."""
    prepare = {s["Name"]: s for s in all_steps(document["Steps"])}["PrepareRequests"]
    arguments = Execution(document).value(prepare["Arguments"]["AppSpecification"]["ContainerArguments"])
    features = tmp_path / "features" / "snapshot_date=2026-11-01"
    features.mkdir(parents=True)
    pd.read_csv(raw_csv, dtype=str, keep_default_na=False).iloc[:60].to_parquet(features / "part-0.parquet")
    local = {
        "/opt/ml/processing/input/features": str(tmp_path / "features"),
        "/opt/ml/processing/output": str(tmp_path / "out"),
        "/opt/ml/code/": f"{ROOT}/",
    }
    mapped = []
    for argument in arguments:
        for container, here in local.items():
            argument = argument.replace(container, here)
        mapped.append(argument)
    assert batch_scoring.main(mapped) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ids", "requests", "scoring"]
    return json.loads((tmp_path / "out" / "scoring" / "scoring.json").read_text())


@pytest.fixture(scope="module")
def raw_csv(tmp_path_factory) -> Path:
    from dataset.schema import load_schema
    from dataset.sources import export_snapshot

    schema = load_schema(ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml")
    return export_snapshot(schema, tmp_path_factory.mktemp("raw") / "snapshot.csv")


# ------------------------------------------------------------------------------ the definition
@pytest.mark.parametrize("stage", STAGES)
def test_every_step_is_a_valid_api_request_with_what_prepare_decides(
    assembly: Assembly, stage: str, tmp_path, raw_csv
) -> None:
    config = CONFIGS[stage]
    document = definition(assembly, stage)
    decided = run_prepare(document, tmp_path, raw_csv)
    # The default run: no ModelPackageArn, so the champion ChampionLookup found (an XGBoost package, v3).
    assert decided["has_package"] == "true" and decided["model_package_arn"].endswith(f"{config.name}-churn/3")
    assert decided["instance_type"] == config.ml.batch_scoring.instance_type("xgboost", config.ml)
    assert (decided["snapshot_date"], decided["records"]) == ("2026-11-01", 60)
    execution = ScoringExecution(document, decided)
    checked = []
    for step in all_steps(document["Steps"]):
        if step["Type"] in OPERATIONS:
            operation, name_field = OPERATIONS[step["Type"]]
            params = {**execution.value(step["Arguments"]), name_field: f"pipelines-{EXECUTION_ID}-{step['Name']}"}
            assert not problems(operation, params), f"{stage} {step['Name']}: {problems(operation, params)}"
            checked.append(step["Name"])
    assert checked == ["PrepareRequests", "CreateScoringModel", "ScoreSubscribers", "PublishScores"]
    steps = {s["Name"]: s for s in all_steps(document["Steps"])}
    published = execution.value(steps["PublishScores"]["Arguments"]["ProcessingOutputConfig"])
    partition = published["Outputs"][0]["S3Output"]["S3Uri"]
    assert partition == f"{execution.value(document['Parameters'][2]['DefaultValue'])}".replace(
        "ibm_telco_churn/", f"ibm_telco_churn_scores/scoring_date={decided['scoring_date']}"
    )
    assert published["KmsKeyId"].endswith("key/abcd1234-12ab-34cd-56ef-1234567890ab")  # the lake's data key


def test_the_scoring_run_fails_clearly_without_any_package(assembly: Assembly, tmp_path, raw_csv) -> None:
    document = definition(assembly, "Dev")
    condition = document["Steps"][2]
    assert condition["Arguments"]["Conditions"] == [
        {
            "Type": "Equals",
            "LeftValue": {
                "Std:JsonGet": {
                    "PropertyFile": {"Get": "Steps.PrepareRequests.PropertyFiles.Scoring"},
                    "Path": "has_package",
                }
            },
            "RightValue": "true",
        }
    ]
    (fail,) = condition["Arguments"]["ElseSteps"]
    assert fail["Type"] == "Fail" and "has no Approved model package" in json.dumps(fail)
    parameters = {p["Name"]: p["DefaultValue"] for p in document["Parameters"]}
    assert parameters["ModelPackageArn"] == "" and parameters["ScoringDate"] == ""


@pytest.mark.parametrize("stage", STAGES)
def test_definition_matches_the_reviewed_golden_copy(assembly: Assembly, stage: str) -> None:
    """`UPDATE_PIPELINE_GOLDEN=1` rewrites the copies; every change is a reviewed diff."""
    body, _ = sub_of(template(assembly, stage), SUFFIX)
    current = re.sub(r"[0-9a-f]{64}\.gz", "<code-bundle>.gz", render.pretty(body))
    golden = GOLDEN / f"{CONFIGS[stage].name}.json"
    if os.environ.get("UPDATE_PIPELINE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(current)
    assert current == golden.read_text(), f"{golden.name} differs; review and rerun with UPDATE_PIPELINE_GOLDEN=1"


@pytest.mark.parametrize("stage", STAGES)
def test_the_transform_runs_where_each_package_type_can(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    steps = {s["Name"]: s for s in all_steps(definition(assembly, stage)["Steps"])}
    arguments = steps["PrepareRequests"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    given = {
        a: b
        for a, b in itertools.pairwise(arguments)
        if isinstance(a, str) and a.startswith("--") and isinstance(b, str)
    }
    assert given["--pytorch-instance-type"] == config.ml.endpoint.instance_type  # the Neuron package's inf2
    assert given["--xgboost-instance-type"] == config.ml.pipeline.xgboost_serving_instance_type
    transform = steps["ScoreSubscribers"]["Arguments"]
    assert transform["TransformInput"]["ContentType"] == "application/jsonlines"
    assert transform["TransformInput"]["SplitType"] == "Line" and transform["BatchStrategy"] == "MultiRecord"
    assert transform["TransformOutput"]["AssembleWith"] == "Line"
    assert transform["Environment"] == batch_scoring.transform_environment(config.ml.batch_scoring.max_payload_mb)
    model = steps["CreateScoringModel"]["Arguments"]
    assert model["EnableNetworkIsolation"] is True
    assert ("VpcConfig" in model) is (config.network.mode == "vpc")


def test_job_and_catalog_agree_on_the_scores_table() -> None:
    assert lake_catalog.SCORE_COLUMNS == batch_scoring.SCORE_COLUMNS
    assert lake_catalog.SCORES_PARTITION_COLUMN == batch_scoring.SCORES_PARTITION == scoring.SCORES_PARTITION
    assert scoring.transform_environment(3) == batch_scoring.transform_environment(3)


# ------------------------------------------------------------------------------- the template
@pytest.mark.parametrize("stage", STAGES)
def test_the_schedule_starts_the_pipeline_with_no_parameters(assembly: Assembly, stage: str, resources_of) -> None:
    config = CONFIGS[stage]
    (schedule,) = resources_of(stage, "MlPipeline", "AWS::Scheduler::Schedule").values()
    props = schedule["Properties"]
    arn = f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/telecom-ml-{config.name}{SUFFIX}"
    assert props["ScheduleExpression"] == config.ml.batch_scoring.schedule
    assert props["ScheduleExpressionTimezone"] == config.ml.batch_scoring.schedule_time_zone
    assert props["Target"]["Arn"] == arn
    assert props["Target"]["SageMakerPipelineParameters"] == {"PipelineParameterList": []}
    role_id = props["Target"]["RoleArn"]["Fn::GetAtt"][0]
    resources = template(assembly, stage)["Resources"]
    trust = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": config.account}},
        }
    ]
    (policy,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and r["Properties"]["Roles"] == [{"Ref": role_id}]
    ]
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "sagemaker:StartPipelineExecution", "Effect": "Allow", "Resource": arn}
    ]


def test_a_failed_scoring_run_reaches_the_ops_topic(assembly: Assembly, resources_of) -> None:
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/telecom-ml-dev-churn-batch-scoring"
    rules = [
        r["Properties"]
        for r in resources_of("Dev", "MlPipeline", "AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("detail", {}).get("pipelineArn") == [arn]
    ]
    (rule,) = rules
    assert rule["EventPattern"]["detail"]["currentPipelineExecutionStatus"] == ["Failed"]
    (target,) = rule["Targets"]
    assert target["Arn"].endswith(":telecom-ml-dev-ops")


@pytest.mark.parametrize("stage", STAGES)
def test_pipeline_role_creates_only_pipeline_named_models_and_transforms(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    resources = template(assembly, stage)["Resources"]
    statements = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy"
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "ScoringModelAndTransform"
    ]
    (statement,) = statements
    prefix = f"arn:aws:sagemaker:{config.region}:{config.account}"
    assert statement["Resource"] == [f"{prefix}:model/pipelines-*", f"{prefix}:transform-job/pipelines-*"]
    assert "sagemaker:CreateTransformJob" in statement["Action"] and "sagemaker:DeleteModel" not in statement["Action"]
    (pipeline,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::SageMaker::Pipeline" and r["Properties"]["PipelineName"].endswith(SUFFIX)
    ]
    assert (
        pipeline["Properties"]["RoleArn"]
        == f"arn:aws:iam::{config.account}:role/telecom-ml-{config.name}-pipeline-execution"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_lake_catalogues_and_governs_the_scores_table(assembly: Assembly, stage: str, resources_of) -> None:
    config = CONFIGS[stage]
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"]["TableInput"]
        for t in resources_of(stage, "DataLake", "AWS::Glue::Table").values()
    }
    table = tables["ibm_telco_churn_scores"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == list(batch_scoring.SCORE_COLUMNS)
    assert table["PartitionKeys"] == [{"Name": "scoring_date", "Type": "string"}]
    parameters = table["Parameters"]
    assert parameters["projection.enabled"] == "true" and parameters["projection.scoring_date.type"] == "date"
    assert json.dumps(parameters["storage.location.template"]).endswith(
        '"/ibm_telco_churn_scores/scoring_date=${scoring_date}/"]]}'
    )
    (location,) = [
        r
        for k, r in resources_of(stage, "DataLake", "AWS::LakeFormation::Resource").items()
        if k.startswith("ScoresLocation")
    ]
    assert location["Properties"]["ResourceArn"]["Fn::Join"][1][1] == "/ibm_telco_churn_scores"
    # The job role may write the scores folder and nothing else new: no read, no other prefix.
    resources = assembly.template(stage, "DataLake")["Resources"]
    writes = [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and "sagemaker-execution" in json.dumps(r["Properties"]["Roles"])
        for s in r["Properties"]["PolicyDocument"]["Statement"]
        if "ibm_telco_churn_scores" in json.dumps(s["Resource"])
    ]
    actions = sorted({a for s in writes for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])})
    assert actions == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"]  # no GetObject
    grants = [
        g["Properties"]
        for k, g in resources_of(stage, "DataLake", "AWS::LakeFormation::PrincipalPermissions").items()
        if g["Properties"]["Resource"].get("Table", {}).get("Name") == "ibm_telco_churn_scores"
    ]
    readers = [f"arn:aws:iam::{config.account}:role/{name}" for name in config.ml.batch_scoring.reader_role_names]
    assert [g["Principal"]["DataLakePrincipalIdentifier"] for g in grants] == readers
    assert all(g["Permissions"] == ["DESCRIBE", "SELECT"] and g["PermissionsWithGrantOption"] == [] for g in grants)
    assert bool(readers) is (stage == "Prod")  # the shipped configs name the retention team's role in prod only
