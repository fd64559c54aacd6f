"""TrainingTrigger synthesized alone in bare stacks (outside a VPC and inside one): the three nag packs,
cfn-lint, and the properties a reviewer checks (rule scope, least privilege, encryption, DLQ, code)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from moto.events.models import EventPattern

from infra.compliance import ACKNOWLEDGEMENTS_CONTEXT, enable_compliance_gate
from infra.config import RetrainingConfig
from infra.constructs.ml import training_trigger
from infra.constructs.ml.training_trigger import TrainingTrigger
from tests.conftest import ROOT
from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready

ACCOUNT, REGION = "111111111111", "eu-west-1"
PIPELINE_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/telecom-ml-dev-churn"
OPS_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:telecom-ml-dev-ops"
CONFIG = RetrainingConfig(cooldown_hours=4, daily_cap=3, max_run_hours=10, retry_attempts=1, reserved_concurrency=2)



def _cfn(construct: Any) -> Any:
    while construct.node.default_child is not None:
        construct = construct.node.default_child
    return construct


def _build(stack: cdk.Stack, *, in_vpc: bool) -> TrainingTrigger:
    keys = {name: kms.Key(stack, name, enable_key_rotation=True) for name in ("MlKey", "DataKey", "LogsKey")}
    placement: dict[str, Any] = {}
    if in_vpc:
        vpc = ec2.Vpc.from_vpc_attributes(
            stack,
            "Vpc",
            vpc_id="vpc-0123456789abcdef0",
            availability_zones=[f"{REGION}a", f"{REGION}b"],
            isolated_subnet_ids=["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
            isolated_subnet_route_table_ids=["rtb-0aaaaaaaaaaaaaaa1", "rtb-0bbbbbbbbbbbbbbb2"],
        )
        placement = {
            "vpc": vpc,
            "subnets": ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            "security_group": ec2.SecurityGroup.from_security_group_id(stack, "Sg", "sg-0123456789abcdef0"),
        }
    trigger = TrainingTrigger(
        stack,
        "TrainingTrigger",
        env_name="dev",
        pipeline_name="telecom-ml-dev-churn",
        pipeline_arn=PIPELINE_ARN,
        config=CONFIG,
        ml_key=keys["MlKey"],
        dead_letter_key=keys["DataKey"],
        logs_key=keys["LogsKey"],
        ops_topic=sns.Topic.from_topic_arn(stack, "Ops", OPS_TOPIC_ARN),
        log_retention_days=30,
        destroy_on_removal=False,
        **placement,
    )
    trigger.retrain_on_alarms()
    return trigger


@dataclass(frozen=True)
class Synth:
    outdir: Path

    def template(self, stack: str) -> dict[str, Any]:
        [path] = (self.outdir / "assembly-Probe").glob(f"Probe{stack}[0-9A-F]*.template.json")
        return dict(json.loads(path.read_text()))

    def resources(self, stack: str, kind: str) -> dict[str, Any]:
        return {k: v for k, v in self.template(stack)["Resources"].items() if v["Type"] == kind}

    def one(self, stack: str, kind: str) -> dict[str, Any]:
        [resource] = self.resources(stack, kind).values()
        return dict(resource["Properties"])


def _app(outdir: Path, *, acknowledgements: bool) -> cdk.App:
    app = cdk.App(outdir=str(outdir), context=json.loads((ROOT / "cdk.json").read_text())["context"])
    if not acknowledgements:
        app.node.set_context(ACKNOWLEDGEMENTS_CONTEXT, "off")
    stage = cdk.Stage(app, "Probe", env=cdk.Environment(account=ACCOUNT, region=REGION))
    _build(cdk.Stack(stage, "Trigger"), in_vpc=False)
    _build(cdk.Stack(stage, "TriggerInVpc"), in_vpc=True)
    enable_compliance_gate(app)
    return app


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """One synth of both placements behind the compliance gate: a finding fails it here."""
    outdir = tmp_path_factory.mktemp("trigger") / "cdk.out"
    _app(outdir, acknowledgements=True).synth()
    return Synth(outdir)


def test_the_three_nag_packs_report_nothing_open(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text())
    plugins = {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}
    assert {"AwsSolutions", "NIST.800.53.R5", "HIPAA.Security"} <= set(plugins), sorted(plugins)
    for plugin in plugins.values():
        assert plugin["conclusion"] == "success" and plugin.get("violations", []) == [], plugin


def test_each_acknowledgement_is_needed_and_nothing_else_is_open(tmp_path: Path) -> None:
    """Without its acknowledgements, synth fails with exactly their rules, where they apply."""
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _app(tmp_path, acknowledgements=False).synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    found = {
        (violation["ruleName"], construct["constructPath"].split("/")[1])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
    }
    execution_arns = f"AwsSolutions-IAM5[Resource::{PIPELINE_ARN}/execution/*]"
    everywhere = {"AwsSolutions-IAM5[Resource::*]", execution_arns, "AwsSolutions-L1"}
    everywhere |= {f"{pack}-{rule}" for pack in ("NIST.800.53.R5", "HIPAA.Security")
                   for rule in ("DynamoDBInBackupPlan", "IAMNoInlinePolicy")}
    expected = {(rule, stack) for rule in everywhere for stack in ("Trigger", "TriggerInVpc")}
    expected |= {(f"{pack}-LambdaInsideVPC", "Trigger") for pack in ("NIST.800.53.R5", "HIPAA.Security")}
    vpc_access = "arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    expected.add((f"AwsSolutions-IAM4[Policy::{vpc_access}]", "TriggerInVpc"))
    assert found == expected


def test_cfn_lint_reports_nothing(synth: Synth) -> None:
    templates = sorted((synth.outdir / "assembly-Probe").glob("*.template.json"))
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout == "" and result.returncode == 0, result.stdout + result.stderr


class _Pattern:
    """moto's implementation of EventBridge pattern matching, on the synthesized pattern."""

    def __init__(self, pattern: dict[str, Any]) -> None:
        self._pattern = EventPattern.load(json.dumps(pattern))

    def matches_event(self, event: dict[str, Any]) -> bool:
        return bool(self._pattern.matches_event(event))  # type: ignore[arg-type]


def _pattern(synth: Synth, description_starts: str) -> _Pattern:
    [rule] = [
        r["Properties"]
        for r in synth.resources("Trigger", "AWS::Events::Rule").values()
        if r["Properties"]["Description"].startswith(description_starts)
    ]
    return _Pattern(rule["EventPattern"])


def test_the_rule_matches_only_this_environments_features_ready(synth: Synth) -> None:
    pattern = _pattern(synth, "The data lake's FeaturesReady")
    assert pattern.matches_event(features_ready(env="dev"))
    assert not pattern.matches_event(features_ready(env="prod"))
    assert not pattern.matches_event({**features_ready(), "source": "aws.s3"})
    assert not pattern.matches_event({**features_ready(), "detail-type": "FeaturesFailed"})
    without_environment = features_ready()
    del without_environment["detail"]["environment"]
    assert not pattern.matches_event(without_environment)


def test_the_alarm_rule_matches_only_retraining_alarms_in_alarm(synth: Synth) -> None:
    pattern = _pattern(synth, "A retraining alarm")
    assert pattern.matches_event(drift_alarm())
    assert not pattern.matches_event(drift_alarm(name="telecom-ml-prod-retrain-tenure-drift"))
    assert not pattern.matches_event(drift_alarm(name="telecom-ml-dev-ops-dead-letters"))
    recovered = drift_alarm()
    recovered["detail"]["state"]["value"] = "OK"
    assert not pattern.matches_event(recovered)


def test_both_rules_deliver_to_the_function_with_the_dead_letter_queue(synth: Synth) -> None:
    for rule in synth.resources("Trigger", "AWS::Events::Rule").values():
        [target] = rule["Properties"]["Targets"]
        assert target["Arn"]["Fn::GetAtt"][0].startswith("TrainingTriggerFunction")
        assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0].startswith("TrainingTriggerDeadLetters")


def test_the_function(synth: Synth) -> None:
    function = synth.one("Trigger", "AWS::Lambda::Function")
    assert function["Runtime"] == "python3.11" and function["Handler"] == "start_training.handler.handler"
    assert function["Layers"] == ["{{resolve:ssm:/aws/service/powertools/python/x86_64/python3.11/3.37.0}}"]
    assert function["ReservedConcurrentExecutions"] == 2 and function["TracingConfig"] == {"Mode": "Active"}
    assert function["DeadLetterConfig"]["TargetArn"]["Fn::GetAtt"][0].startswith("TrainingTriggerDeadLetters")
    assert "VpcConfig" not in function
    environment = function["Environment"]["Variables"]
    assert environment["COOLDOWN_SECONDS"] == str(4 * 3600) and environment["DAILY_CAP"] == "3"
    assert environment["MAX_RUN_SECONDS"] == str(10 * 3600) and environment["PIPELINE_NAME"] == "telecom-ml-dev-churn"
    invoke = synth.one("Trigger", "AWS::Lambda::EventInvokeConfig")
    assert invoke["MaximumRetryAttempts"] == 1 and invoke["MaximumEventAgeInSeconds"] == 6 * 3600
    logs = synth.one("Trigger", "AWS::Logs::LogGroup")
    assert logs["RetentionInDays"] == 30 and logs["KmsKeyId"]["Fn::GetAtt"][0].startswith("LogsKey")


def test_settings_reach_the_function_as_it_reads_them(synth: Synth) -> None:
    from lambdas.start_training.settings import TriggerSettings

    environment = synth.one("Trigger", "AWS::Lambda::Function")["Environment"]["Variables"]
    settings = TriggerSettings.from_environ({**environment, "TABLE_NAME": "resolved-at-deploy"})
    assert settings.daily_cap == CONFIG.daily_cap and settings.max_run.total_seconds() == 10 * 3600


def test_the_function_in_a_vpc(synth: Synth) -> None:
    function = synth.one("TriggerInVpc", "AWS::Lambda::Function")
    assert function["VpcConfig"] == {
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
        "SubnetIds": ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0bbbbbbbbbbbbbbb2"],
    }
    role = synth.one("TriggerInVpc", "AWS::IAM::Role")
    [policy] = role["ManagedPolicyArns"]
    assert "service-role/AWSLambdaVPCAccessExecutionRole" in json.dumps(policy)
    assert "ManagedPolicyArns" not in synth.one("Trigger", "AWS::IAM::Role")


def _statements(synth: Synth) -> list[tuple[str, Any, Any]]:
    """(sorted actions, resource, condition) of every statement in the function role's policy."""
    statements = []
    for statement in synth.one("Trigger", "AWS::IAM::Policy")["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statements.append((",".join(sorted(actions)), statement["Resource"], statement.get("Condition")))
    return statements


def test_least_privilege(synth: Synth) -> None:
    statements = _statements(synth)
    assert sorted(actions for actions, _, _ in statements) == sorted(
        [
            "sqs:SendMessage",
            "xray:PutTelemetryRecords,xray:PutTraceSegments",
            "logs:CreateLogStream,logs:PutLogEvents",
            "dynamodb:DeleteItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem",
            "kms:Decrypt,kms:GenerateDataKey",
            "kms:Decrypt,kms:GenerateDataKey",
            "sagemaker:ListPipelineExecutions,sagemaker:StartPipelineExecution",
            "sagemaker:DescribePipelineExecution",
        ]
    )
    by_actions = {actions: (resource, condition) for actions, resource, condition in statements}
    assert by_actions["sagemaker:ListPipelineExecutions,sagemaker:StartPipelineExecution"] == (PIPELINE_ARN, None)
    assert by_actions["sagemaker:DescribePipelineExecution"] == (f"{PIPELINE_ARN}/execution/*", None)
    table, _ = by_actions["dynamodb:DeleteItem,dynamodb:GetItem,dynamodb:PutItem,dynamodb:UpdateItem"]
    assert table["Fn::GetAtt"][0].startswith("TrainingTriggerState")
    kms_uses = {
        (resource["Fn::GetAtt"][0].rstrip("0123456789ABCDEF"), condition["StringEquals"]["kms:ViaService"])
        for actions, resource, condition in statements
        if actions.startswith("kms:")
    }
    assert kms_uses == {("MlKey", f"dynamodb.{REGION}.amazonaws.com"), ("DataKey", f"sqs.{REGION}.amazonaws.com")}
    wildcards = [actions for actions, resource, _ in statements if resource == "*"]
    assert wildcards == ["xray:PutTelemetryRecords,xray:PutTraceSegments"]


def test_the_state_table_is_encrypted_recoverable_and_expires_old_records(synth: Synth) -> None:
    table = synth.one("Trigger", "AWS::DynamoDB::Table")
    assert table["SSESpecification"]["SSEEnabled"] and table["SSESpecification"]["SSEType"] == "KMS"
    assert table["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0].startswith("MlKey")
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["DeletionProtectionEnabled"] is True


def test_dead_letters_are_encrypted_and_alarm_on_the_ops_topic(synth: Synth) -> None:
    queue = synth.one("Trigger", "AWS::SQS::Queue")
    assert queue["KmsMasterKeyId"]["Fn::GetAtt"][0].startswith("DataKey")
    alarm = synth.one("Trigger", "AWS::CloudWatch::Alarm")
    assert alarm["AlarmActions"] == [OPS_TOPIC_ARN] and alarm["Threshold"] == 1
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0].startswith("TrainingTriggerDeadLetters")


def test_the_code_asset_is_the_runtime_package_only(synth: Synth) -> None:
    function = synth.one("Trigger", "AWS::Lambda::Function")
    asset_hash = function["Code"]["S3Key"].removesuffix(".zip")
    asset = synth.outdir / f"asset.{asset_hash}"
    shipped = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    expected = sorted(f"start_training/{p.name}" for p in (ROOT / "lambdas" / "start_training").glob("*.py"))
    assert shipped == expected
    for path in asset.rglob("*.py"):
        assert not re.search(r"^\s*(from|import) (aws_cdk|infra|stacks|constructs)\b", path.read_text(), re.M), path


def test_constants_shared_with_the_runtime_agree() -> None:
    from lambdas.start_training import dynamodb_store, events

    assert training_trigger.retrain_alarm_prefix("dev") == events.retrain_alarm_prefix("dev")
    assert training_trigger.ALARM_SOURCE == events.ALARM_SOURCE
    assert training_trigger.ALARM_DETAIL_TYPE == events.ALARM_DETAIL_TYPE
    assert training_trigger.FEATURES_READY_SOURCE == events.FEATURES_READY_SOURCE
    assert training_trigger.FEATURES_READY_DETAIL_TYPE == events.FEATURES_READY_DETAIL_TYPE
    assert training_trigger.TTL_ATTRIBUTE == dynamodb_store.TTL_ATTRIBUTE
    assert training_trigger.FUNCTION_TIMEOUT.to_seconds() < training_trigger.START_LOCK_SECONDS
    for requirements in ("requirements/lambdas.txt", "requirements.txt"):
        pins = re.findall(r"^aws-lambda-powertools\S*==(\S+)", (ROOT / requirements).read_text(), re.M)
        assert pins == [training_trigger.POWERTOOLS_VERSION], requirements


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"pipeline_name": "telecom-ml-qa-churn"}, "pipeline_name 'telecom-ml-qa-churn' is not 'telecom-ml-dev-churn'"),
        ({"vpc": "given-alone"}, "vpc, subnets and security_group go together"),
    ],
)
def test_inconsistent_inputs_are_refused(changes: dict[str, Any], message: str) -> None:
    stack = cdk.Stack(cdk.App(), "Bare")
    key = kms.Key(stack, "Key")
    if changes.get("vpc") == "given-alone":
        changes["vpc"] = ec2.Vpc.from_vpc_attributes(stack, "Vpc", vpc_id="vpc-1", availability_zones=["a"])
    arguments: dict[str, Any] = {
        "env_name": "dev",
        "pipeline_name": "telecom-ml-dev-churn",
        "pipeline_arn": PIPELINE_ARN,
        "config": CONFIG,
        "ml_key": key,
        "dead_letter_key": key,
        "logs_key": key,
        "ops_topic": sns.Topic.from_topic_arn(stack, "Ops", OPS_TOPIC_ARN),
        "log_retention_days": 30,
        "destroy_on_removal": True,
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainingTrigger(stack, "TrainingTrigger", **{**arguments, **changes})
