"""What follows a deployment, in the templates: the current baseline (contract C2), Model Monitor schedules
and the batch scoring hook, each with IAM limited to what it names."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.config import load_environment
from lambdas.deployer.settings import DeployerSettings
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.serving_helpers import PLACEHOLDER, listed, render, resources, role_statements, settings_document

SCHEDULES = [
    {
        "name": "telecom-ml-staging-churn-data-quality",
        "job_definition_name": "telecom-ml-staging-dq-0a1b2c3d",
        "type": "DataQuality",
        "schedule_expression": "cron(0 * ? * * *)",
    },
    {
        "name": "telecom-ml-staging-churn-model-quality",
        "job_definition_name": "telecom-ml-staging-mq-4e5f6a7b",
        "type": "ModelQuality",
        "schedule_expression": "cron(0 0 ? * * *)",
    },
]
PIPELINE = "telecom-ml-staging-churn-batch-scoring"
SAGEMAKER = "arn:aws:sagemaker:eu-west-1:222222222222"


@pytest.mark.parametrize("stage,env", [("Dev", "dev"), ("Staging", "staging"), ("Prod", "prod")])
def test_the_current_baseline_is_the_contracts_prefix(assembly: Assembly, stage: str, env: str) -> None:
    deployed = DeployerSettings.model_validate(settings_document(assembly, stage))
    assert deployed.baseline.current_prefix == f"monitoring/telecom-ml-{env}-churn/current-baseline/"
    assert deployed.baseline.source_prefixes == ("churn-pipeline/baseline/", "promoted/")
    assert deployed.monitoring_schedules == () and deployed.batch_scoring_pipeline_name is None


def test_follow_up_reads_baselines_and_writes_only_the_current_baseline(assembly: Assembly) -> None:
    statements = role_statements(assembly, "Staging", "DeployerFollowUp")
    s3 = {
        a: sorted(render(r) for r in listed(s["Resource"]))
        for s in statements
        for a in listed(s["Action"])
        if a.startswith("s3:")
    }
    assert s3 == {
        "s3:GetObject": [f"{PLACEHOLDER}/churn-pipeline/baseline/*", f"{PLACEHOLDER}/promoted/*"],
        "s3:PutObject": [f"{PLACEHOLDER}/monitoring/telecom-ml-staging-churn/current-baseline/*"],
        "s3:DeleteObject": [f"{PLACEHOLDER}/monitoring/telecom-ml-staging-churn/current-baseline/*"],
    }
    (kms,) = [s for s in statements if "kms:GenerateDataKey" in listed(s["Action"]) and "s3." in json.dumps(s)]
    assert kms["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    actions = {a for s in statements for a in listed(s["Action"])}
    assert not {a for a in actions if "MonitoringSchedule" in a or a == "sagemaker:StartPipelineExecution"}


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


# ---------------------------------------------- a staging Serving stack given schedules and a batch pipeline
@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Foundation + Serving of staging, with the kwargs the monitoring and batch scoring stacks will pass,
    behind the compliance gate (nag packs): synthesis fails on any unacknowledged finding."""
    import app as cdk_app
    from infra.compliance import enable_compliance_gate
    from stacks.foundation_stack import FoundationStack
    from stacks.serving_stack import ServingStack, endpoint_can_run_in_vpc

    config = load_environment(ROOT / "config" / "staging.yaml")
    outdir = Path(tmp_path_factory.mktemp("hooked"))
    app = cdk_app.new_app(outdir=str(outdir))
    app.node.set_context(
        f"availability-zones:account={config.account}:region={config.region}", list(config.availability_zones)
    )
    stage = cdk.Stage(app, "Staging", env=cdk.Environment(account=config.account, region=config.region))
    foundation = FoundationStack(
        stage,
        "Foundation",
        env_name=config.name,
        network=config.network,
        ops=config.ops,
        security=config.security,
        availability_zones=config.availability_zones,
        access_log_lifecycle=config.access_logs,
        destroy_on_removal=config.destroy_on_removal,
    )
    keys = foundation.keys
    serving = ServingStack(
        stage,
        "Serving",
        env_name=config.name,
        config=config.ml.endpoint,
        budget=config.budget,
        budget_emails=(),
        model_package_group_name="telecom-ml-staging-churn",
        ml_key=keys.ml_key,
        data_key=keys.data_key,
        logs_key=keys.logs_key,
        ml_artifacts=foundation.ml_artifacts,
        ops=foundation.ops,
        network=foundation.network,
        vpc_placement=endpoint_can_run_in_vpc(config.network.interface_endpoints),
        log_retention_days=config.log_retention_days,
        destroy_on_removal=False,
        resource_tags={},
        monitoring_schedules=SCHEDULES,
        batch_scoring_pipeline_name=PIPELINE,
    )
    enable_compliance_gate(app)
    assembly = app.synth()
    template = json.loads(Path(assembly.get_stack_artifact(serving.artifact_id).template_full_path).read_text())
    yield template["Resources"]


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


def test_schedules_and_the_pipeline_reach_the_deployer_settings(hooked: dict[str, Any]) -> None:
    documents = {
        render(r["Properties"]["Environment"]["Variables"]["DEPLOYER_SETTINGS"])
        for r in hooked.values()
        if r["Type"] == "AWS::Lambda::Function"
        and "DEPLOYER_SETTINGS" in r["Properties"].get("Environment", {}).get("Variables", {})
    }
    (document,) = documents
    deployed = DeployerSettings.model_validate(json.loads(document))
    assert [s.model_dump() for s in deployed.monitoring_schedules] == SCHEDULES
    assert deployed.batch_scoring_pipeline_name == PIPELINE
    (teardown,) = [r for r in hooked.values() if r["Type"] == "Custom::EndpointTeardown"]
    assert teardown["Properties"]["MonitoringSchedules"] == SCHEDULES, "a new job definition updates the resource"


def test_schedule_iam_names_the_schedules_and_job_definitions(hooked: dict[str, Any]) -> None:
    schedules = {f"{SAGEMAKER}:monitoring-schedule/{s['name']}" for s in SCHEDULES}
    definitions = {
        f"{SAGEMAKER}:data-quality-job-definition/telecom-ml-staging-dq-0a1b2c3d",
        f"{SAGEMAKER}:model-quality-job-definition/telecom-ml-staging-mq-4e5f6a7b",
    }
    follow_up, teardown = _grants(hooked, "DeployerFollowUp"), _grants(hooked, "DeployerTeardownFunction")
    for action in ("CreateMonitoringSchedule", "UpdateMonitoringSchedule", "DescribeMonitoringSchedule"):
        assert follow_up[f"sagemaker:{action}"] == schedules | definitions
        assert teardown[f"sagemaker:{action}"] == schedules | definitions
    assert teardown["sagemaker:DeleteMonitoringSchedule"] == schedules
    assert "sagemaker:DeleteMonitoringSchedule" not in follow_up
    assert follow_up["sagemaker:StartPipelineExecution"] == {f"{SAGEMAKER}:pipeline/{PIPELINE}"}
    others = [_grants(hooked, r) for r in ("DeployerPrepare", "DeployerStart", "DeployerScale", "DeployerFinish")]
    assert not [a for grants in others for a in grants if "MonitoringSchedule" in a or "PipelineExecution" in a]


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
        _schedule_spec({**SCHEDULES[0], **change}, 0)
