"""The Monitoring stack as synthesized for every environment: the configured engine, its grants, the alarms
that start retraining, and the drift pipeline pinned by a reviewed golden copy."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from dataset.schema import load_schema
from infra.config import load_all
from infra.constructs.monitoring.model_monitor_jobs import analyzer_image
from infra.pipeline import drift, render
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.pipeline_checks import EXECUTION_ID, all_steps, concrete, problems
from tests.infra.sdk_oracle import SdkOracle

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}
STAGES = sorted(CONFIGS)
DRIFT_STAGES = [s for s in STAGES if CONFIGS[s].monitoring.engine == "drift_job"]
MONITOR_STAGES = [s for s in STAGES if CONFIGS[s].monitoring.engine == "model_monitor"]
GOLDEN = Path(__file__).with_name("pipeline_golden")
# What CloudFormation fills in for the variables whose value is known only at deploy time.
SDK_FAKES = {
    "ArtifactBucket": "artifacts",
    "MlKeyArn": "arn:aws:kms:eu-west-1:111111111111:key/k",
    "LabelsLocation": "s3://curated/churn_labels/",
    "WindowGuardArn": "arn:aws:lambda:eu-west-1:111111111111:function:Monitoring-WindowGuardFunction-AbC123",
    "JobSecurityGroup": "sg-0123456789abcdef0",
    "JobSubnet1": "subnet-0123456789abcdef0",
    "JobSubnet2": "subnet-0fedcba9876543210",
}
FEATURES = tuple(load_schema(ROOT / "dataset/schemas/ibm_telco_churn.yaml").raw_feature_columns)


def resources(assembly: Assembly, stage: str, kind: str, stack: str = "Monitoring") -> dict[str, Any]:
    found = assembly.template(stage, stack)["Resources"]
    return {k: v["Properties"] for k, v in found.items() if v["Type"] == kind}


def drift_body(assembly: Assembly, stage: str) -> tuple[str, dict[str, Any]]:
    (pipeline,) = resources(assembly, stage, "AWS::SageMaker::Pipeline").values()
    body, variables = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return body, variables


def statements(assembly: Assembly, stage: str, policy_prefix: str) -> list[dict[str, Any]]:
    policies = resources(assembly, stage, "AWS::IAM::Policy")
    (policy,) = [p for k, p in policies.items() if k.startswith(policy_prefix)]
    return list(policy["PolicyDocument"]["Statement"])


def test_dev_and_prod_synthesize_different_engines(assembly: Assembly) -> None:
    assert DRIFT_STAGES and MONITOR_STAGES
    for stage in STAGES:
        pipelines = resources(assembly, stage, "AWS::SageMaker::Pipeline")
        definitions = resources(assembly, stage, "AWS::SageMaker::DataQualityJobDefinition")
        schedules = resources(assembly, stage, "AWS::Scheduler::Schedule")
        drift_job = stage in DRIFT_STAGES
        assert (len(pipelines), len(schedules), len(definitions)) == ((1, 1, 0) if drift_job else (0, 0, 1)), stage


# ------------------------------------------------------------------------------------- drift_job
@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_drift_definition_matches_the_reviewed_golden_copy(assembly: Assembly, stage: str) -> None:
    """Every change is a reviewed diff: `UPDATE_PIPELINE_GOLDEN=1` rewrites the copies."""
    body, _ = drift_body(assembly, stage)
    current = re.sub(r"[0-9a-f]{64}\.gz", "<code-bundle>.gz", render.pretty(body))
    golden = GOLDEN / f"drift-{CONFIGS[stage].name}.json"
    if os.environ.get("UPDATE_PIPELINE_GOLDEN") == "1":
        golden.write_text(current)
    assert current == golden.read_text(), f"{golden.name} differs; review and rerun with UPDATE_PIPELINE_GOLDEN=1"


@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_drift_step_as_deployed_is_a_valid_processing_job_in_the_environments_network(
    assembly: Assembly, stage: str
) -> None:
    config = CONFIGS[stage]
    body, variables = drift_body(assembly, stage)
    values = {k: v for k, v in variables.items() if isinstance(v, str)}
    fakes = {
        "ArtifactBucket": "artifacts",
        "MlKeyArn": "arn:aws:kms:eu-west-1:111111111111:key/k",
        "LabelsLocation": "s3://curated/churn_labels/",
        "WindowGuardArn": SDK_FAKES["WindowGuardArn"],
        "JobSecurityGroup": "sg-0123456789abcdef0",
        "JobSubnet1": "subnet-0123456789abcdef0",
        "JobSubnet2": "subnet-0fedcba9876543210",
    }
    document = json.loads(render.resolve(body, {**fakes, **values}))
    jobs = [s for s in all_steps(document["Steps"]) if s["Type"] == "Processing"]
    assert [s["Name"] for s in jobs] == (
        ["DetectDrift", "DetectDriftWithoutLabels"] if config.monitoring.model_quality else ["DetectDrift"]
    )
    for step in jobs:
        request = concrete(document, step)
        assert not problems("CreateProcessingJob", request), step["Name"]
        assert ("VpcConfig" in request["NetworkConfig"]) == (config.network.mode == "vpc")
        inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
        labels = step["Name"] == "DetectDrift" and config.monitoring.model_quality
        assert set(inputs) == {"code", "baseline", "capture", *(["labels"] if labels else [])}
        assert ("--labels-dir" in request["AppSpecification"]["ContainerArguments"]) == labels
        # The window's files only: WindowGuard's manifest, not the endpoint's whole capture prefix.
        assert inputs["capture"]["S3DataType"] == "ManifestFile"
        assert step["Arguments"]["ProcessingInputs"][2]["S3Input"]["S3Uri"] == {
            "Get": "Steps.WindowGuard.OutputParameters['manifest_uri']"
        }
        endpoint = drift.endpoint_name(config.name)
        assert (
            inputs["capture"]["S3Uri"] == f"s3://artifacts/monitoring/{endpoint}/reports/manifests/{EXECUTION_ID}.json"
        )
    assert values["JobRoleArn"].endswith(f":role/telecom-ml-{config.name}-sagemaker-execution")
    assert ("LabelsLocation" in variables) == config.monitoring.model_quality
    (pipeline,) = resources(assembly, stage, "AWS::SageMaker::Pipeline").values()
    assert pipeline["PipelineName"] == drift.pipeline_name(config.name)
    assert pipeline["RoleArn"] == f"arn:aws:iam::{config.account}:role/telecom-ml-{config.name}-pipeline-execution"


@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_a_run_without_a_baseline_or_captured_data_ends_after_the_window_guard(assembly: Assembly, stage: str) -> None:
    """SageMaker refuses a Processing input that matches no object: the job runs only when both exist, and
    otherwise the execution succeeds with the guard's `reason` as its last output."""
    config = CONFIGS[stage]
    body, variables = drift_body(assembly, stage)
    document = json.loads(body)
    guard, condition = document["Steps"]
    assert (guard["Name"], guard["Type"], guard["FunctionArn"]) == ("WindowGuard", "Lambda", "${WindowGuardArn}")
    assert {o["OutputName"] for o in guard["OutputParameters"]} >= {"has_baseline", "has_captures", "reason"}
    endpoint = drift.endpoint_name(config.name)
    assert guard["Arguments"]["CapturePrefix"] == f"data-capture/{endpoint}/primary/"
    assert guard["Arguments"]["BaselinePrefix"] == f"monitoring/{endpoint}/current-baseline/"
    assert guard["Arguments"]["WindowEnd"] == {"Get": "Parameters.WindowEnd"}
    assert ("LabelsUri" in guard["Arguments"]) == config.monitoring.model_quality
    assert condition["Type"] == "Condition"
    assert condition["Arguments"]["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Get": f"Steps.WindowGuard.OutputParameters['{name}']"}, "RightValue": "true"}
        for name in ("has_baseline", "has_captures")
    ]
    assert condition["Arguments"]["ElseSteps"] == []
    (run,) = condition["Arguments"]["IfSteps"]
    if config.monitoring.model_quality:
        assert run["Arguments"]["Conditions"][0]["LeftValue"] == {
            "Get": "Steps.WindowGuard.OutputParameters['has_labels']"
        }
    assert "WindowGuardFunction" in json.dumps(variables["WindowGuardArn"])


@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_window_guard_lists_only_the_endpoints_prefixes_and_writes_only_manifests(
    assembly: Assembly, stage: str
) -> None:
    config = CONFIGS[stage]
    endpoint = drift.endpoint_name(config.name)
    granted = statements(assembly, stage, "WindowGuardRoleDefaultPolicy")
    s3 = [s for s in granted if str(s["Action"]).startswith("s3:")]
    listed = sorted(p for s in s3 if s["Action"] == "s3:ListBucket" for p in s["Condition"]["StringLike"]["s3:prefix"])
    expected = [f"data-capture/{endpoint}/primary/*", f"monitoring/{endpoint}/current-baseline/*"]
    assert listed == sorted(expected + (["churn_labels/*"] if config.monitoring.model_quality else []))
    (put,) = [s for s in s3 if s["Action"] != "s3:ListBucket"]
    assert put["Action"] == "s3:PutObject"
    assert put["Resource"]["Fn::Join"][1][-1] == f"/monitoring/{endpoint}/reports/manifests/*"
    assert not [s for s in granted if "s3:GetObject" in json.dumps(s)]
    (key,) = [s for s in granted if str(s["Action"]).count("kms:")]
    assert key["Condition"]["StringEquals"]["kms:ViaService"] == f"s3.{config.region}.amazonaws.com"
    assert "PublishOutputFnGetAttKeysMlKey" in json.dumps(key["Resource"])
    (function,) = [
        r
        for r in resources(assembly, stage, "AWS::Lambda::Function").values()
        if r["Handler"] == "lambdas.drift_window.handler.handler"
    ]
    assert ("VpcConfig" in function) == (config.network.mode == "vpc")
    assert function["Runtime"] == "python3.11" and "powertools" in json.dumps(function["Layers"])
    code = assembly.outdir / f"asset.{function['Code']['S3Key'].removesuffix('.zip')}"
    shipped = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
    assert shipped == [
        "lambdas/__init__.py",
        "lambdas/drift_window/__init__.py",
        "lambdas/drift_window/handler.py",
        "lambdas/drift_window/window.py",
    ]
    star = {a for st in granted if st["Resource"] == "*" for a in st["Action"]}
    assert star <= {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"}
    (log_group,) = resources(assembly, stage, "AWS::Logs::LogGroup").values()
    assert "KmsKeyId" in log_group and log_group["RetentionInDays"] == config.log_retention_days
    invoke = [s for s in statements(assembly, stage, "PipelineExecutionRolePolicy") if "lambda:" in str(s["Action"])]
    assert [(s["Action"], json.dumps(s["Resource"])) for s in invoke] == [
        ("lambda:InvokeFunction", json.dumps({"Fn::GetAtt": [function_id(assembly, stage), "Arn"]}))
    ]


def function_id(assembly: Assembly, stage: str) -> str:
    found = assembly.template(stage, "Monitoring")["Resources"]
    (name,) = [k for k, v in found.items() if v["Type"] == "AWS::Lambda::Function" and k.startswith("WindowGuard")]
    return name


@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_scheduler_starts_only_the_drift_pipeline_encrypted_with_retries_and_a_dead_letter_queue(
    assembly: Assembly, stage: str
) -> None:
    config = CONFIGS[stage]
    (schedule,) = resources(assembly, stage, "AWS::Scheduler::Schedule").values()
    assert schedule["ScheduleExpression"] == config.monitoring.schedule
    assert "PublishOutputFnGetAttKeysMlKey" in json.dumps(schedule["KmsKeyArn"])
    target = schedule["Target"]
    assert target["Arn"] == "arn:aws:scheduler:::aws-sdk:sagemaker:startPipelineExecution"
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1 and "DeadLetterConfig" in target
    assert json.loads(target["Input"])["PipelineName"] == drift.pipeline_name(config.name)
    pipeline_arn = f"arn:aws:sagemaker:{config.region}:{config.account}:pipeline/{drift.pipeline_name(config.name)}"
    granted = statements(assembly, stage, "DriftScheduleRoleDefaultPolicy")
    sagemaker = [s for s in granted if "sagemaker" in json.dumps(s["Action"])]
    assert sagemaker == [{"Action": "sagemaker:StartPipelineExecution", "Effect": "Allow", "Resource": pipeline_arn}]
    (queue,) = resources(assembly, stage, "AWS::SQS::Queue").values()
    assert "PublishOutputFnGetAttKeysDataKey" in json.dumps(queue["KmsMasterKeyId"])


@pytest.mark.parametrize("stage", DRIFT_STAGES)
def test_failed_drift_runs_notify_the_ops_topic(assembly: Assembly, stage: str) -> None:
    (rule,) = resources(assembly, stage, "AWS::Events::Rule").values()
    detail = rule["EventPattern"]["detail"]
    assert detail["currentPipelineExecutionStatus"] == ["Failed"]
    assert detail["pipelineArn"][0].endswith(f":pipeline/{drift.pipeline_name(CONFIGS[stage].name)}")
    assert rule["Targets"][0]["Arn"].endswith(f":telecom-ml-{CONFIGS[stage].name}-ops")


# --------------------------------------------------------------------------------- model_monitor
@pytest.mark.parametrize("stage", MONITOR_STAGES)
def test_data_quality_definition_reads_the_current_baseline_with_kms_and_the_environments_network(
    assembly: Assembly, stage: str
) -> None:
    config = CONFIGS[stage]
    (definition,) = resources(assembly, stage, "AWS::SageMaker::DataQualityJobDefinition").values()
    baseline = definition["DataQualityBaselineConfig"]
    prefix = f"/monitoring/telecom-ml-{config.name}-churn/current-baseline/"
    assert baseline["ConstraintsResource"]["S3Uri"]["Fn::Join"][1][-1] == f"{prefix}constraints.json"
    assert baseline["StatisticsResource"]["S3Uri"]["Fn::Join"][1][-1] == f"{prefix}statistics.json"
    assert "MlArtifactsBucket" in json.dumps(baseline)
    assert definition["DataQualityAppSpecification"]["ImageUri"] == analyzer_image(config.region)
    assert definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == f"telecom-ml-{config.name}-churn"
    ml_key = "PublishOutputFnGetAttKeysMlKey"
    assert ml_key in json.dumps(definition["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"])
    assert ml_key in json.dumps(definition["DataQualityJobOutputConfig"]["KmsKeyId"])
    network = definition["NetworkConfig"]
    assert network["EnableInterContainerTrafficEncryption"] is True
    assert ("VpcConfig" in network) == (config.network.mode == "vpc")
    name = definition["JobDefinitionName"]
    assert re.fullmatch(rf"telecom-ml-{config.name}-churn-dq-[0-9a-f]{{10}}", name)
    # The record preprocessor: the rendered script, a content-addressed asset of this environment.
    script = json.dumps(definition["DataQualityAppSpecification"]["RecordPreprocessorSourceUri"])
    assert re.search(r"cdk-[a-z0-9]+-assets-.*/[0-9a-f]{64}\.py", script), script


@pytest.mark.parametrize("stage", MONITOR_STAGES)
def test_the_analyzer_may_pull_only_its_repository(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    account = analyzer_image(config.region).split(".")[0]
    granted = statements(assembly, stage, "SageMakerExecutionRolePolicy")
    (pull,) = [s for s in granted if "ecr:BatchGetImage" in s["Action"]]
    assert pull["Resource"] == f"arn:aws:ecr:{config.region}:{account}:repository/sagemaker-model-monitor-analyzer"


# --------------------------------------------------------------------------------------- grants
@pytest.mark.parametrize("stage", STAGES)
def test_job_role_reads_and_writes_only_the_endpoints_monitoring_prefixes(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    endpoint = f"telecom-ml-{config.name}-churn"
    granted = statements(assembly, stage, "SageMakerExecutionRolePolicy")

    def suffixes(action: str) -> set[str]:
        found = set()
        for statement in granted:
            if action in statement["Action"]:
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                # Bucket ARNs from other stacks are joins; the CDK assets bucket's is a plain string.
                found |= {t[t.index(":s3:::") :] if isinstance(t, str) else t["Fn::Join"][1][-1] for t in targets}
        return found

    reads = {f"/data-capture/{endpoint}/*", f"/monitoring/{endpoint}/current-baseline/*"}
    if config.monitoring.engine == "drift_job":
        reads.add(f"/monitoring/{endpoint}/reports/manifests/*")  # the window's capture manifest
    if config.monitoring.model_quality:
        reads.add(
            "/churn_labels/*" if config.monitoring.engine == "drift_job" else f"/monitoring/{endpoint}/ground-truth/*"
        )
    scripts = {s for s in suffixes("s3:GetObject") if s.endswith(".py")}
    assert suffixes("s3:GetObject") - scripts == reads
    # model_monitor: the one record preprocessor object in the CDK assets bucket, nothing else there.
    assert len(scripts) == (config.monitoring.engine == "model_monitor")
    assert all(re.fullmatch(r":s3:::cdk-[a-z0-9]+-assets-\d{12}-[a-z0-9-]+/[0-9a-f]{64}\.py", s) for s in scripts)
    assert suffixes("s3:PutObject") == {f"/monitoring/{endpoint}/reports/*"}
    (metrics,) = [s for s in granted if s["Action"] == "cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {
        "StringEquals": {
            "cloudwatch:namespace": ["aws/sagemaker/Endpoints/data-metrics", "aws/sagemaker/Endpoints/model-metrics"]
        }
    }


@pytest.mark.parametrize("stage", STAGES)
def test_monitoring_reports_expire_as_configured(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    monitoring, endpoint = config.monitoring, f"telecom-ml-{config.name}-churn"
    buckets = resources(assembly, stage, "AWS::S3::Bucket", "Foundation").values()
    rules = {r["Id"]: r for b in buckets for r in b.get("LifecycleConfiguration", {}).get("Rules", []) if "Id" in r}
    assert (rules["ExpireMonitoringReports"]["Prefix"], rules["ExpireMonitoringReports"]["ExpirationInDays"]) == (
        f"monitoring/{endpoint}/reports/",
        monitoring.reports_retention_days,
    )


# --------------------------------------------------------------------------------------- alarms
@pytest.mark.parametrize("stage", STAGES)
def test_retraining_alarms_watch_every_feature_prediction_drift_and_auc_with_ground_truth(
    assembly: Assembly, stage: str
) -> None:
    config = CONFIGS[stage]
    monitoring, env = config.monitoring, config.name
    alarms = {
        a["AlarmName"]: a
        for a in resources(assembly, stage, "AWS::CloudWatch::Alarm").values()
        if a.get("AlarmName", "").startswith(f"telecom-ml-{env}-retrain-")
    }
    expected = {f"telecom-ml-{env}-retrain-{kind}-{f}" for f in FEATURES for kind in ("drift", "psi")}
    expected.add(f"telecom-ml-{env}-retrain-prediction-drift")
    if monitoring.model_quality:
        expected.add(f"telecom-ml-{env}-retrain-auc")
    assert set(alarms) == expected
    tenure = alarms[f"telecom-ml-{env}-retrain-drift-tenure"]
    assert (tenure["Namespace"], tenure["MetricName"], tenure["Threshold"], tenure["Period"]) == (
        "aws/sagemaker/Endpoints/data-metrics",
        "feature_baseline_drift_tenure",
        monitoring.thresholds.drift_distance,
        3600 * monitoring.window_hours,
    )
    assert tenure["Dimensions"] == [
        {"Name": "Endpoint", "Value": f"telecom-ml-{env}-churn"},
        {"Name": "MonitoringSchedule", "Value": f"telecom-ml-{env}-churn-data-quality"},
    ]
    assert all(a["AlarmActions"][0].endswith(f":telecom-ml-{env}-ops") for a in alarms.values())
    if monitoring.model_quality:
        auc = alarms[f"telecom-ml-{env}-retrain-auc"]
        assert (auc["Namespace"], auc["ComparisonOperator"], auc["Threshold"]) == (
            "aws/sagemaker/Endpoints/model-metrics",
            "LessThanThreshold",
            monitoring.min_auc(config.ml.quality_gate),
        )
        assert auc["Dimensions"][1]["Value"] == f"telecom-ml-{env}-churn-model-quality"


@pytest.mark.parametrize("stage", STAGES)
def test_retraining_alarms_reach_start_training(assembly: Assembly, stage: str) -> None:
    env = CONFIGS[stage].name
    rules = resources(assembly, stage, "AWS::Events::Rule", "MlPipeline")
    (rule,) = [r for r in rules.values() if r["EventPattern"].get("source") == ["aws.cloudwatch"]]
    assert rule["EventPattern"]["detail"] == {
        "alarmName": [{"prefix": f"telecom-ml-{env}-retrain-"}],
        "state": {"value": ["ALARM"]},
    }
    (features_ready,) = [r for r in rules.values() if r["EventPattern"].get("detail-type") == ["FeaturesReady"]]
    assert rule["Targets"][0]["Arn"] == features_ready["Targets"][0]["Arn"]  # the start_training function


def test_the_sdk_renders_the_deployed_drift_definitions(assembly: Assembly, sdk_oracle: SdkOracle) -> None:
    """The SageMaker Python SDK 3, offline, writes exactly each environment's drift definition."""
    request: dict[str, Any] = {"config_dir": str(ROOT / "config"), "environments": {}}
    ours = {}
    for stage in DRIFT_STAGES:
        config = CONFIGS[stage]
        body, variables = drift_body(assembly, stage)
        (code_key,) = set(re.findall(r"s3://\$\{CodeBucket\}/([0-9a-f]{64}\.gz)", body))
        values = {**SDK_FAKES, **{k: v for k, v in variables.items() if isinstance(v, str)}}
        request["environments"][config.name] = {"code_key": code_key, "values": values}
        ours[config.name] = json.loads(render.resolve(body, values))
    assert sdk_oracle.render("drift", request) == ours


@pytest.mark.parametrize("stage", STAGES)
def test_dashboard_shows_the_metrics_and_every_retraining_alarm(assembly: Assembly, stage: str) -> None:
    config = CONFIGS[stage]
    (dashboard,) = resources(assembly, stage, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["DashboardName"] == f"telecom-ml-{config.name}-churn-drift"
    widgets = json.loads(dashboard["DashboardBody"])["widgets"]
    alarm_names = {
        a["AlarmName"]
        for a in resources(assembly, stage, "AWS::CloudWatch::Alarm").values()
        if a.get("AlarmName", "").startswith(f"telecom-ml-{config.name}-retrain-")
    }
    (alarms,) = [w for w in widgets if w["type"] == "alarm"]
    assert {arn.rsplit(":", 1)[1] for arn in alarms["properties"]["alarms"]} == alarm_names
    assert all(
        a.startswith(f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:")
        for a in alarms["properties"]["alarms"]
    )
    drawn = {m[1] for w in widgets if w["type"] == "metric" for m in w["properties"]["metrics"]}
    assert {f"feature_baseline_drift_{f}" for f in FEATURES} | {"prediction_drift_psi"} <= drawn
    assert ("auc" in drawn) == config.monitoring.model_quality
