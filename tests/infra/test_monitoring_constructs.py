"""Monitoring constructs and the drift pipeline on their own: bare stacks, no app, no nag gate."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from infra.config import SUPPORTED_REGIONS, load_all
from infra.constructs.monitoring.drift_schedule import SCHEDULED_TIME, DriftSchedule, start_request
from infra.constructs.monitoring.drift_window import DriftWindowFunction
from infra.constructs.monitoring.model_monitor_jobs import (
    ANALYZER_ACCOUNTS,
    ANALYZER_REPOSITORY,
    ModelMonitorJobs,
    MonitoringJobSettings,
    analyzer_image,
)
from infra.constructs.monitoring.retrain_alarms import RetrainAlarms, alarm_specs
from infra.pipeline import drift, render
from stacks.serving_stack import endpoint_name as serving_endpoint_name
from tests.conftest import ROOT
from tests.infra.pipeline_checks import EXECUTION_ID, all_steps, concrete, problems

ACCOUNT, REGION = "111111111111", "eu-west-1"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/telecom-ml-dev-sagemaker-execution"
CONFIGS = {c.name: c for c in load_all(ROOT / "config")}
SETTINGS = MonitoringJobSettings(
    env_name="dev",
    endpoint_name="telecom-ml-dev-churn",
    region=REGION,
    role_arn=ROLE,
    kms_key_arn=KEY,
    instance_type="ml.m5.xlarge",
    volume_gb=30,
    max_runtime_seconds=1800,
    baseline_uri="s3://artifacts/monitoring/telecom-ml-dev-churn/current-baseline/",
    reports_uri="s3://artifacts/monitoring/telecom-ml-dev-churn/reports/",
    window_hours=1,
    record_preprocessor_uri="s3://cdk-assets/0123abcd.py",
    security_group_ids=("sg-0123456789abcdef0",),
    subnets=("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"),
)
GROUND_TRUTH = "s3://artifacts/monitoring/telecom-ml-dev-churn/ground-truth/"


def _stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Probe", env=cdk.Environment(account=ACCOUNT, region=REGION))


def _jobs(
    settings: MonitoringJobSettings = SETTINGS, ground_truth: str | None = GROUND_TRUTH
) -> tuple[ModelMonitorJobs, dict[str, Any]]:
    stack = _stack()
    jobs = ModelMonitorJobs(
        stack,
        "Jobs",
        settings=settings,
        ground_truth_uri=ground_truth,
        data_quality_schedule="telecom-ml-dev-churn-data-quality",
        model_quality_schedule="telecom-ml-dev-churn-model-quality",
        schedule_expression="cron(0 * ? * * *)",
    )
    return jobs, Template.from_stack(stack).to_json()["Resources"]


def _of(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [r["Properties"] for r in resources.values() if r["Type"] == f"AWS::SageMaker::{kind}"]
    return dict(found)


# ------------------------------------------------------------------------------------ Model Monitor
def test_analyzer_image_table_is_the_sdks() -> None:
    """The SDK's bundled image table is read as a file: no SDK import, no lookup at synth."""
    spec = importlib.util.find_spec("sagemaker")
    assert spec is not None and spec.submodule_search_locations
    bundled = Path(next(iter(spec.submodule_search_locations))) / "core" / "image_uri_config" / "model-monitor.json"
    (version,) = json.loads(bundled.read_text())["versions"].values()
    assert version["repository"] == ANALYZER_REPOSITORY
    assert {r: version["registries"][r] for r in SUPPORTED_REGIONS} == ANALYZER_ACCOUNTS
    assert (
        analyzer_image("eu-central-1")
        == "048819808253.dkr.ecr.eu-central-1.amazonaws.com/sagemaker-model-monitor-analyzer"
    )
    with pytest.raises(ValueError, match="no Model Monitor analyzer image is known for region mars-1"):
        analyzer_image("mars-1")


def test_job_definitions_are_valid_api_requests_with_kms_network_and_the_current_baseline() -> None:
    jobs, resources = _jobs()
    data, model = _of(resources, "DataQualityJobDefinition"), _of(resources, "ModelQualityJobDefinition")
    assert not problems("CreateDataQualityJobDefinition", data)
    assert not problems("CreateModelQualityJobDefinition", model)
    assert data["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": f"{SETTINGS.baseline_uri}constraints.json"},
        "StatisticsResource": {"S3Uri": f"{SETTINGS.baseline_uri}statistics.json"},
    }
    # The endpoint's nested requests reach the analyzer flattened (training_jobs/monitor_preprocessor.py).
    assert data["DataQualityAppSpecification"]["RecordPreprocessorSourceUri"] == "s3://cdk-assets/0123abcd.py"
    assert "RecordPreprocessorSourceUri" not in model["ModelQualityAppSpecification"]
    for props, kind in ((data, "DataQuality"), (model, "ModelQuality")):
        assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
        assert props[f"{kind}JobOutputConfig"]["KmsKeyId"] == KEY
        assert props["NetworkConfig"] == {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": False,
            "VpcConfig": {"SecurityGroupIds": list(SETTINGS.security_group_ids), "Subnets": list(SETTINGS.subnets)},
        }
        assert props[f"{kind}AppSpecification"]["ImageUri"] == analyzer_image(REGION)
        assert props[f"{kind}JobInput"]["EndpointInput"]["EndpointName"] == "telecom-ml-dev-churn"
        assert props["RoleArn"] == ROLE
    quality_input = model["ModelQualityJobInput"]
    assert quality_input["GroundTruthS3Input"] == {"S3Uri": GROUND_TRUTH}
    assert quality_input["EndpointInput"]["ProbabilityAttribute"] == "predictions[0].probability"
    assert model["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert jobs.schedule_specs == [
        {
            "name": "telecom-ml-dev-churn-data-quality",
            "job_definition_name": data["JobDefinitionName"],
            "type": "DataQuality",
            "schedule_expression": "cron(0 * ? * * *)",
        },
        {
            "name": "telecom-ml-dev-churn-model-quality",
            "job_definition_name": model["JobDefinitionName"],
            "type": "ModelQuality",
            "schedule_expression": "cron(0 * ? * * *)",
        },
    ]


def test_job_definition_names_hash_every_property() -> None:
    """Same properties, same names; any change (each forces replacement) deploys under a new name."""
    first, _ = _jobs()
    again, _ = _jobs()
    assert [s["job_definition_name"] for s in first.schedule_specs] == [
        s["job_definition_name"] for s in again.schedule_specs
    ]
    assert first.schedule_specs[0]["job_definition_name"].startswith("telecom-ml-dev-churn-dq-")
    for change in (
        {"instance_type": "ml.m5.2xlarge"},
        {"baseline_uri": "s3://other/current-baseline/"},
        {"subnets": ("subnet-0123456789abcdef0",)},
        {"max_runtime_seconds": 1200},
    ):
        other, _ = _jobs(replace(SETTINGS, **change))  # type: ignore[arg-type]
        changed = {
            old["type"]
            for old, new in zip(first.schedule_specs, other.schedule_specs, strict=True)
            if old["job_definition_name"] != new["job_definition_name"]
        }
        # The model-quality definition reads no baseline: only the data-quality one changes with it.
        assert changed == ({"DataQuality"} if "baseline_uri" in change else {"DataQuality", "ModelQuality"}), change


def test_without_ground_truth_there_is_no_model_quality_definition_or_schedule() -> None:
    jobs, resources = _jobs(replace(SETTINGS, security_group_ids=(), subnets=()), ground_truth=None)
    assert [s["type"] for s in jobs.schedule_specs] == ["DataQuality"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::SageMaker::ModelQualityJobDefinition"]
    assert "VpcConfig" not in _of(resources, "DataQualityJobDefinition")["NetworkConfig"]


# ------------------------------------------------------------------------------------ drift schedule
def test_schedule_starts_only_its_pipeline_with_the_scheduled_time_as_window_end() -> None:
    stack = _stack()
    key = kms.Key.from_key_arn(stack, "Key", KEY)
    topic = sns.Topic.from_topic_arn(stack, "Ops", f"arn:aws:sns:{REGION}:{ACCOUNT}:ops")
    pipeline_arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/telecom-ml-dev-churn-drift"
    DriftSchedule(
        stack,
        "Drift",
        schedule_name="telecom-ml-dev-churn-drift",
        schedule_expression="cron(0 6 * * ? *)",
        pipeline_name="telecom-ml-dev-churn-drift",
        pipeline_arn=pipeline_arn,
        payload_key=key,
        dead_letter_key=key,
        ops_topic=topic,
        destroy_on_removal=True,
    )
    template = Template.from_stack(stack).to_json()["Resources"]
    (schedule,) = [r["Properties"] for r in template.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)" and schedule["KmsKeyArn"] == KEY
    target = schedule["Target"]
    assert target["Arn"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":scheduler:::aws-sdk:sagemaker:startPipelineExecution"]]
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}
    assert "DeadLetterConfig" in target
    request = json.loads(target["Input"].replace(SCHEDULED_TIME, "2026-11-27T10:00:00Z"))
    assert not problems("StartPipelineExecution", request)
    assert request["PipelineParameters"] == [{"Name": "WindowEnd", "Value": "2026-11-27T10:00:00Z"}]
    assert request == json.loads(
        json.dumps(start_request("telecom-ml-dev-churn-drift")).replace(SCHEDULED_TIME, "2026-11-27T10:00:00Z")
    )
    (policy,) = [r["Properties"] for r in template.values() if r["Type"] == "AWS::IAM::Policy"]
    statements = {
        s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]): s["Resource"]
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert statements["sagemaker:StartPipelineExecution"] == pipeline_arn
    assert [a for a in statements if "sagemaker" in str(a)] == ["sagemaker:StartPipelineExecution"]
    (role,) = [r["Properties"] for r in template.values() if r["Type"] == "AWS::IAM::Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT


# --------------------------------------------------------------------------------------- alarms
def test_alarm_specs_cover_each_feature_prediction_drift_and_auc_only_with_ground_truth() -> None:
    common: dict[str, Any] = {
        "features": ("tenure", "contract"),
        "data_schedule": "d",
        "model_schedule": "m",
        "drift_distance": 0.1,
        "feature_psi": 0.25,
        "prediction_psi": 0.2,
    }
    with_auc = alarm_specs(**common, min_auc=0.8)
    assert [s.suffix for s in with_auc] == [
        "drift-tenure",
        "psi-tenure",
        "drift-contract",
        "psi-contract",
        "prediction-drift",
        "auc",
    ]
    assert [s.suffix for s in alarm_specs(**common, min_auc=None)][-1] == "prediction-drift"
    auc = with_auc[-1]
    assert (auc.namespace, auc.metric_name, auc.schedule, auc.threshold) == (
        "aws/sagemaker/Endpoints/model-metrics",
        "auc",
        "m",
        0.8,
    )


def test_alarms_are_named_for_the_retrain_trigger_and_notify_ops() -> None:
    stack = _stack()
    topic = sns.Topic.from_topic_arn(stack, "Ops", f"arn:aws:sns:{REGION}:{ACCOUNT}:ops")
    specs = alarm_specs(
        features=("tenure",),
        data_schedule="d",
        model_schedule="m",
        drift_distance=0.1,
        feature_psi=0.25,
        prediction_psi=0.2,
        min_auc=0.8,
    )
    alarms = RetrainAlarms(
        stack,
        "Alarms",
        name_prefix="telecom-ml-dev-retrain-",
        endpoint_name="ep",
        specs=specs,
        period_hours=24,
        evaluation_periods=2,
        ops_topic=topic,
    )
    assert alarms.alarm_names == sorted(
        f"telecom-ml-dev-retrain-{s}" for s in ("drift-tenure", "psi-tenure", "prediction-drift", "auc")
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "telecom-ml-dev-retrain-drift-tenure",
            "MetricName": "feature_baseline_drift_tenure",
            "Namespace": "aws/sagemaker/Endpoints/data-metrics",
            "Statistic": "Maximum",
            "Period": 86400,
            "Dimensions": [{"Name": "Endpoint", "Value": "ep"}, {"Name": "MonitoringSchedule", "Value": "d"}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 0.1,
            "EvaluationPeriods": 2,
            "TreatMissingData": "notBreaching",
            "AlarmActions": [f"arn:aws:sns:{REGION}:{ACCOUNT}:ops"],
        },
    )
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "AlarmName": "telecom-ml-dev-retrain-auc",
            "Namespace": "aws/sagemaker/Endpoints/model-metrics",
            "Statistic": "Minimum",
            "ComparisonOperator": "LessThanThreshold",
            "Threshold": 0.8,
        },
    )


def test_window_guard_function_alone_lists_what_it_is_granted_and_writes_only_manifests() -> None:
    stack = _stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Artifacts", encryption_key=key)
    guard = DriftWindowFunction(
        stack,
        "WindowGuard",
        logs_key=key,
        log_retention_days=30,
        destroy_on_removal=True,
        vpc=None,
        security_group=None,
    )
    guard.grant_list(bucket, ["data-capture/e/primary/", "monitoring/e/current-baseline/"])
    guard.grant_manifests(bucket, "monitoring/e/reports/manifests/", key)
    resources = Template.from_stack(stack).to_json()["Resources"]
    (function,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert (function["Handler"], function["Runtime"], function["Timeout"]) == (
        "lambdas.drift_window.handler.handler",
        "python3.11",
        120,
    )
    assert "VpcConfig" not in function and function["ReservedConcurrentExecutions"] == 2
    (logs,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert "KmsKeyId" in logs and logs["RetentionInDays"] == 30
    (policy,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::IAM::Policy"]
    by_action = {json.dumps(st["Action"]): st for st in policy["PolicyDocument"]["Statement"]}
    listing = by_action['"s3:ListBucket"']
    assert listing["Condition"] == {
        "StringLike": {"s3:prefix": ["data-capture/e/primary/*", "monitoring/e/current-baseline/*"]}
    }
    assert by_action['"s3:PutObject"']["Resource"]["Fn::Join"][1][-1] == "/monitoring/e/reports/manifests/*"
    assert set(by_action) == {
        '["logs:CreateLogStream", "logs:PutLogEvents"]',
        '"s3:ListBucket"',
        '"s3:PutObject"',
        '["kms:Decrypt", "kms:GenerateDataKey"]',
    }


# --------------------------------------------------------------------------------- drift pipeline
def _drift(env: str) -> render.Pipeline:
    config = CONFIGS[env]
    return drift.build(drift.DriftPipelineInputs(config, config.data_lake.dataset_schema, "0" * 64 + ".gz"))


def test_names_match_the_serving_stack_and_the_contracts() -> None:
    assert drift.endpoint_name("dev") == serving_endpoint_name("dev")
    assert drift.data_quality_schedule_name("dev") == "telecom-ml-dev-churn-data-quality"
    assert drift.model_quality_schedule_name("dev") == "telecom-ml-dev-churn-model-quality"


def test_drift_step_is_a_valid_processing_job_with_the_c3_arguments() -> None:
    for env in ("dev", "staging"):
        pipeline = _drift(env)
        values = {name: f"value-of-{name}" for name in pipeline.variables}
        values.update(
            {
                "ArtifactBucket": "artifacts",
                "CodeBucket": "code",
                "JobRoleArn": ROLE,
                "MlKeyArn": KEY,
                "LabelsLocation": "s3://curated/churn_labels/",
                "WindowGuardArn": "arn:aws:lambda:eu-west-1:111111111111:function:WindowGuard",
                "JobSecurityGroup": "sg-0123456789abcdef0",
                "JobSubnet1": "subnet-0123456789abcdef0",
                "JobSubnet2": "subnet-0fedcba9876543210",
            }
        )
        document = json.loads(render.resolve(render.sub_body(render.definition(pipeline), pipeline.variables), values))
        (step,) = [s for s in all_steps(document["Steps"]) if s["Name"] == "DetectDrift"]
        request = concrete(document, step)
        assert not problems("CreateProcessingJob", request), env
        app = request["AppSpecification"]
        arguments = app["ContainerArguments"]
        assert app["ContainerEntrypoint"][-1] == "training_jobs.drift"
        assert arguments[:2] == ["1970-01-01T01:00:00Z", str(CONFIGS[env].monitoring.window_hours)]
        flags = arguments[2::2]
        assert {
            "--baseline-dir",
            "--capture-dir",
            "--output-dir",
            "--schema",
            "--endpoint-name",
            "--monitoring-schedule-name",
        } <= set(flags) and arguments[-1] == "--publish-metrics"
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in request["ProcessingInputs"]}
        assert inputs["baseline"] == "s3://artifacts/monitoring/telecom-ml-" + env + "-churn/current-baseline/"
        # The window's capture files, listed by WindowGuard into a manifest (not the whole capture prefix).
        assert (
            inputs["capture"]
            == f"s3://artifacts/monitoring/telecom-ml-{env}-churn/reports/manifests/{EXECUTION_ID}.json"
        )
        assert ("labels" in inputs) == ("--labels-dir" in arguments) == CONFIGS[env].monitoring.model_quality
        (output,) = request["ProcessingOutputConfig"]["Outputs"]
        assert output["S3Output"]["S3Uri"].startswith(
            f"s3://artifacts/monitoring/telecom-ml-{env}-churn/reports/telecom-ml-{env}-churn-data-quality/"
        )
        assert request["NetworkConfig"]["EnableNetworkIsolation"] is False
        assert ("VpcConfig" in request["NetworkConfig"]) == (CONFIGS[env].network.mode == "vpc")
        assert request["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY


def test_the_bootstrap_computes_the_window_start_and_runs_the_module(tmp_path: Path) -> None:
    """The entrypoint shell as SageMaker runs it, with its container paths moved under tmp_path."""
    code_in, code_dir = tmp_path / "input" / "code", tmp_path / "code"
    code_in.mkdir(parents=True)
    module = b"import json, sys; print(json.dumps(sys.argv[1:]))\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("echo_args.py")
        info.size = len(module)
        tar.addfile(info, io.BytesIO(module))
    (code_in / "0123.gz").write_bytes(buffer.getvalue())
    script = (
        drift.DRIFT_BOOTSTRAP.replace(drift.CODE_DIR, str(code_dir))
        .replace(f"{drift.PROCESSING}/input/code", str(code_in))
        .replace("python3", sys.executable)
    )
    assert len(drift.DRIFT_BOOTSTRAP) <= 256
    for end, hours, start in (
        ("2026-11-27T10:00:00Z", "1", "2026-11-27T09:00:00Z"),
        ("2026-03-01T06:00:00Z", "24", "2026-02-28T06:00:00Z"),
        ("2026-11-27T10:00:00+01:00", "2", "2026-11-27T07:00:00Z"),
        ("2026-11-27T10:00:00", "1", "2026-11-27T09:00:00Z"),
    ):
        result = subprocess.run(
            ["/bin/sh", "-c", script, "echo_args", end, hours, "--schema", "s.yaml"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(result.stdout) == ["--window-start", start, "--window-end", end, "--schema", "s.yaml"]
    failed = subprocess.run(
        ["/bin/sh", "-c", script, "echo_args", "10 o'clock", "1"], capture_output=True, text=True, timeout=60
    )
    assert failed.returncode != 0 and "invalid date" in failed.stderr and failed.stdout == ""


# ------------------------------------------------------------------------------------- dashboard
def test_dashboard_draws_every_feature_its_threshold_and_the_retraining_alarms() -> None:
    from infra.constructs.monitoring.drift_dashboard import dashboard_body

    arns = ["arn:aws:cloudwatch:eu-west-1:111111111111:alarm:telecom-ml-dev-retrain-drift-tenure"]
    common: dict[str, Any] = {
        "region": REGION,
        "endpoint_name": "ep",
        "data_schedule": "d",
        "model_schedule": "m",
        "features": ("tenure", "contract"),
        "period_hours": 24,
        "drift_distance": 0.1,
        "feature_psi": 0.25,
        "prediction_psi": 0.2,
        "alarm_arns": arns,
    }
    widgets = json.loads(dashboard_body(**common, min_auc=None))["widgets"]
    graphs = {w["properties"]["title"]: w["properties"] for w in widgets if w["type"] == "metric"}
    drift_graph = graphs["Distance from the baseline, per feature"]
    assert drift_graph["metrics"] == [
        [
            "aws/sagemaker/Endpoints/data-metrics",
            f"feature_baseline_drift_{f}",
            "Endpoint",
            "ep",
            "MonitoringSchedule",
            "d",
        ]
        for f in ("tenure", "contract")
    ]
    assert drift_graph["period"] == 86400 and drift_graph["annotations"]["horizontal"][0]["value"] == 0.1
    assert "Model quality on labelled captures" not in graphs
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert alarms["properties"]["alarms"] == arns
    with_quality = json.loads(dashboard_body(**common, min_auc=0.8))["widgets"]
    (quality,) = [w for w in with_quality if w["properties"].get("title") == "Model quality on labelled captures"]
    assert [m[1] for m in quality["properties"]["metrics"]] == ["auc", "top_decile_lift", "calibration_error"]
