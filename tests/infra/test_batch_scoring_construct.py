"""ml.batch_scoring settings and the BatchScoring construct on its own, in a bare stack (no app synth)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from infra.config import BatchScoringConfig, ConfigError
from infra.constructs.ml.batch_scoring import BatchScoring
from infra.pipeline import render
from infra.pipeline.steps import FailStep
from tests.conftest import ROOT
from tests.infra.test_ml_pipeline_config import DEV, load


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"ml.batch_scoring.schedule": "every monday"}, "ml.batch_scoring.schedule: String should match pattern"),
        (
            {"ml.batch_scoring.pytorch_instance_type": "ml.inf9.xlarge"},
            "'ml.inf9.xlarge' is not a transform instance type SageMaker accepts (botocore TransformInstanceType)",
        ),
        ({"ml.batch_scoring.max_payload_mb": 0}, "ml.batch_scoring.max_payload_mb: Input should be greater than"),
        ({"ml.batch_scoring.reader_role_names": ["no spaces allowed"]}, "ml.batch_scoring.reader_role_names.0"),
        ({"ml.batch_scoring.shedule": "rate(1 day)"}, "ml.batch_scoring.shedule: unknown setting"),
    ],
)
def test_bad_batch_scoring_settings_fail_naming_the_setting(tmp_path: Path, changes, expected) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, DEV, changes)
    assert expected in str(raised.value) and str(raised.value).startswith(str(tmp_path / "dev.yaml"))


def test_transform_types_default_to_where_each_package_is_served(tmp_path: Path) -> None:
    config = load(tmp_path, DEV, {"ml.batch_scoring.xgboost_instance_type": "ml.c5.xlarge"})
    assert config.ml.batch_scoring.instance_type("pytorch", config.ml) == config.ml.endpoint.instance_type
    assert config.ml.batch_scoring.instance_type("xgboost", config.ml) == "ml.c5.xlarge"
    assert yaml.safe_load((ROOT / "config" / "prod.yaml").read_text())["ml"]["batch_scoring"]["schedule"]


def construct(schedule: str | None, deployer: bool = False) -> Template:
    import app as cdk_app

    app = cdk_app.new_app()  # cdk.json's feature flags, as every synth here
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    role = iam.Role(stack, "PipelineRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    pipeline = render.Pipeline("telecom-ml-x-churn-batch-scoring", (), (FailStep("Stop", "stopped"),))
    scoring = BatchScoring(
        stack,
        "Scoring",
        pipeline=pipeline,
        variables={},
        role=role,
        config=BatchScoringConfig(schedule=schedule),
        description="probe",
    )
    if deployer:
        scoring.grant_start(iam.Role(stack, "Deployer", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")))
        scoring.notify_failures(sns.Topic(stack, "Ops"))
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def unscheduled() -> Template:
    return construct(None, deployer=True)


def test_the_schedule_is_optional_and_may_only_start_its_pipeline(unscheduled: Template) -> None:
    assert unscheduled.find_resources("AWS::Scheduler::Schedule") == {}
    template = construct("rate(7 days)")
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/telecom-ml-x-churn-batch-scoring"
    assert schedule["Properties"]["Target"]["Arn"] == arn
    assert schedule["Properties"]["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["DependsOn"] == [next(iter(template.find_resources("AWS::SageMaker::Pipeline")))]
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Action": "sagemaker:StartPipelineExecution", "Effect": "Allow", "Resource": arn}
    ]


def test_the_deployer_may_start_it_and_failures_reach_the_topic(unscheduled: Template) -> None:
    template = unscheduled
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/telecom-ml-x-churn-batch-scoring"
    (policy,) = template.find_resources("AWS::IAM::Policy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": ["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
            "Effect": "Allow",
            "Resource": arn,
        }
    ]
    (rule,) = template.find_resources("AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"]["detail"] == {
        "pipelineArn": [arn],
        "currentPipelineExecutionStatus": ["Failed"],
    }
    assert "Ref" in rule["Properties"]["Targets"][0]["Arn"]
