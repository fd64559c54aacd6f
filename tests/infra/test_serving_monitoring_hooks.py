"""What follows a deployment, in the templates: the current baseline, Model Monitor schedules
and the batch scoring hook, each with IAM limited to what it names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.deployer.settings import DeployerSettings
from tests.infra.conftest import Assembly
from tests.infra.serving_helpers import PLACEHOLDER, listed, render, resources, role_statements, settings_document

SAGEMAKER = "arn:aws:sagemaker:eu-west-1:111111111111"
PIPELINE = "telecom-ml-dev-churn-batch-scoring"  # every environment's deployer starts its own


def _dev_schedules(assembly: Assembly) -> list[dict[str, str]]:
    """What dev's Monitoring stack (engine model_monitor) hands the deployer: one schedule per job definition."""
    found = assembly.template("Dev", "Monitoring")["Resources"].values()
    names = {r["Type"]: r["Properties"]["JobDefinitionName"] for r in found if r["Type"].endswith("JobDefinition")}
    return [
        {"name": f"telecom-ml-dev-churn-{kind}", "job_definition_name": names[f"AWS::SageMaker::{t}JobDefinition"],
         "type": t, "schedule_expression": "cron(0 6 ? * * *)"}
        for kind, t in (("data-quality", "DataQuality"), ("model-quality", "ModelQuality"))
        if f"AWS::SageMaker::{t}JobDefinition" in names
    ]


@pytest.mark.parametrize("stage,env", [("Dev", "dev"), ("Staging", "staging"), ("Prod", "prod")])
def test_the_current_baseline_is_the_contracts_prefix(assembly: Assembly, stage: str, env: str) -> None:
    deployed = DeployerSettings.model_validate(settings_document(assembly, stage))
    assert deployed.baseline.current_prefix == f"monitoring/telecom-ml-{env}-churn/current-baseline/"
    assert deployed.baseline.source_prefixes == ("churn-pipeline/baseline/", "promoted/")
    assert deployed.baseline.predictions_prefixes == ("churn-pipeline/executions/", "promoted/")
    assert bool(deployed.monitoring_schedules) == (env == "dev"), "only dev runs the model_monitor engine"
    assert deployed.batch_scoring_pipeline_name == f"telecom-ml-{env}-churn-batch-scoring"


def test_follow_up_reads_baselines_and_writes_only_the_current_baseline(assembly: Assembly) -> None:
    statements = role_statements(assembly, "Staging", "DeployerFollowUp")
    s3 = {
        a: sorted(render(r) for r in listed(s["Resource"]))
        for s in statements
        for a in listed(s["Action"])
        if a.startswith("s3:")
    }
    assert s3 == {
        "s3:GetObject": [
            f"{PLACEHOLDER}/churn-pipeline/baseline/*",
            f"{PLACEHOLDER}/churn-pipeline/executions/*/baseline_predictions.csv",
            f"{PLACEHOLDER}/promoted/*",
            f"{PLACEHOLDER}/promoted/*/baseline_predictions.csv",
        ],
        "s3:PutObject": [f"{PLACEHOLDER}/monitoring/telecom-ml-staging-churn/current-baseline/*"],
        "s3:DeleteObject": [f"{PLACEHOLDER}/monitoring/telecom-ml-staging-churn/current-baseline/*"],
    }
    (kms,) = [s for s in statements if "kms:GenerateDataKey" in listed(s["Action"]) and "s3." in json.dumps(s)]
    assert kms["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    actions = {a for s in statements for a in listed(s["Action"])}
    assert not {a for a in actions if "MonitoringSchedule" in a}, "staging runs the drift_job engine"
    (start,) = [s for s in statements if "sagemaker:StartPipelineExecution" in listed(s["Action"])]
    assert [render(r) for r in listed(start["Resource"])] == [
        "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/telecom-ml-staging-churn-batch-scoring"
    ]


def test_follow_up_runs_after_scaling_and_before_finish(assembly: Assembly) -> None:
    (machine,) = resources(assembly, "Prod", "AWS::StepFunctions::StateMachine").values()
    states = json.loads(render(machine["Properties"]["DefinitionString"]))["States"]
    assert states["RegisterScaling"]["Next"] == "FollowUp"
    assert states["FollowUp"]["Next"] == "Notices?"
    assert [c["Next"] for c in states["FollowUp"]["Catch"]] == ["NotifyFailure"]
    (when,) = states["Notices?"]["Choices"]
    assert when == {"Variable": "$.notices[0]", "IsPresent": True, "Next": "NotifyDeployedWithNotices"}
    assert states["Notices?"]["Default"] == "Finish" and states["NotifyDeployedWithNotices"]["Next"] == "Finish"
    assert states["RestoreScaling"]["Next"] == "NotifyFailure", "a rolled-back deployment never refreshes baselines"


# ---------------------------------------------- dev: Model Monitor schedules and the batch pipeline wired in
@pytest.fixture(scope="module")
def hooked(assembly: Assembly) -> dict[str, Any]:
    return assembly.template("Dev", "Serving")["Resources"]


def _statements(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for r in template.values()
        if r["Type"] == "AWS::IAM::Policy"
        and any(
            isinstance(role, dict) and role.get("Ref", "").startswith(role_prefix) for role in r["Properties"]["Roles"]
        )
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


def _grants(template: dict[str, Any], role_prefix: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for statement in _statements(template, role_prefix):
        for action in listed(statement["Action"]):
            found.setdefault(action, set()).update(render(r) for r in listed(statement["Resource"]))
    return found


def test_schedules_and_the_pipeline_reach_the_deployer_settings(assembly: Assembly, hooked: dict[str, Any]) -> None:
    schedules = _dev_schedules(assembly)
    assert [s["type"] for s in schedules] == ["DataQuality", "ModelQuality"], "dev merges the labels job's ground truth"
    documents = {
        render(r["Properties"]["Environment"]["Variables"]["DEPLOYER_SETTINGS"])
        for r in hooked.values()
        if r["Type"] == "AWS::Lambda::Function"
        and "DEPLOYER_SETTINGS" in r["Properties"].get("Environment", {}).get("Variables", {})
    }
    (document,) = documents
    deployed = DeployerSettings.model_validate(json.loads(document))
    assert [s.model_dump() for s in deployed.monitoring_schedules] == schedules
    assert deployed.batch_scoring_pipeline_name == PIPELINE
    (teardown,) = [r for r in hooked.values() if r["Type"] == "Custom::EndpointTeardown"]
    assert teardown["Properties"]["MonitoringSchedules"] == schedules, "a new job definition updates the resource"


def test_schedule_iam_names_the_schedules_and_job_definitions(assembly: Assembly, hooked: dict[str, Any]) -> None:
    specs = _dev_schedules(assembly)
    schedules = {f"{SAGEMAKER}:monitoring-schedule/{s['name']}" for s in specs}
    kinds = {"DataQuality": "data-quality", "ModelQuality": "model-quality"}
    definitions = {f"{SAGEMAKER}:{kinds[s['type']]}-job-definition/{s['job_definition_name']}" for s in specs}
    follow_up, teardown = _grants(hooked, "DeployerFollowUp"), _grants(hooked, "DeployerTeardownFunction")
    for action in ("CreateMonitoringSchedule", "UpdateMonitoringSchedule", "DescribeMonitoringSchedule"):
        assert follow_up[f"sagemaker:{action}"] == schedules | definitions
        assert teardown[f"sagemaker:{action}"] == schedules | definitions
    assert teardown["sagemaker:DeleteMonitoringSchedule"] == schedules
    assert "sagemaker:DeleteMonitoringSchedule" not in follow_up
    assert follow_up["sagemaker:StartPipelineExecution"] == {f"{SAGEMAKER}:pipeline/{PIPELINE}"}
    others = [_grants(hooked, r) for r in ("DeployerPrepare", "DeployerStart", "DeployerScale", "DeployerFinish")]
    assert not [a for grants in others for a in grants if "MonitoringSchedule" in a or "PipelineExecution" in a]


VALID_SPEC = {"name": "telecom-ml-dev-churn-data-quality", "job_definition_name": "telecom-ml-dev-dq-0a1b2c3d",
              "type": "DataQuality", "schedule_expression": "cron(0 * ? * * *)"}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"type": "ModelBias"}, r"monitoring_schedules\[0\]\.type"),
        ({"extra": "x"}, r"monitoring_schedules\[0\]: expected keys"),
    ],
)
def test_a_malformed_schedule_spec_fails_synth_naming_it(change: dict[str, str], message: str) -> None:
    from stacks.serving_stack import _schedule_spec

    with pytest.raises(ValueError, match=message):
        _schedule_spec({**VALID_SPEC, **change}, 0)
