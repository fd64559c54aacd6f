"""The serving stack in every environment: the approval rule, the deployer's scope, the alarms it names,
the modes (prod real-time on inf2, dev async from zero) and teardown on stack deletion."""

from __future__ import annotations

import json

import pytest

from lambdas.deployer import api_requests, scaling
from lambdas.deployer.settings import DeployerSettings
from tests.infra.conftest import Assembly
from tests.infra.serving_helpers import PLACEHOLDER, listed, render, resources, role_statements, settings_document
from tests.unit.lambdas.deployer.api_model import problems

STAGES = [("Dev", "dev", "111111111111", "eu-west-1"), ("Staging", "staging", "222222222222", "eu-west-1"),
          ("Prod", "prod", "333333333333", "eu-central-1")]
DEPLOYER_ROLES = ("DeployerReceive", "DeployerPrepare", "DeployerStart", "DeployerCheck", "DeployerScale",
                  "DeployerFinish", "DeployerFollowUp", "DeployerTeardownFunction")


def settings(assembly: Assembly, stage: str) -> DeployerSettings:
    """The synthesized settings document, parsed by the deployer's own parser (template <-> runtime contract)."""
    return DeployerSettings.model_validate(settings_document(assembly, stage))


@pytest.mark.parametrize("stage,env,account,region", STAGES)
def test_only_approvals_of_this_environments_group_start_the_deployer(assembly: Assembly, stage: str, env: str,
                                                                      account: str, region: str) -> None:
    (rule,) = resources(assembly, stage, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [f"telecom-ml-{env}-churn"], "ModelApprovalStatus": ["Approved"]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] == 8
    assert settings(assembly, stage).model_package_group_name == f"telecom-ml-{env}-churn"


@pytest.mark.parametrize("stage,env,account,region", STAGES)
def test_deployer_iam_is_scoped_to_the_endpoint_its_prefix_and_its_group(assembly: Assembly, stage: str, env: str,
                                                                          account: str, region: str) -> None:
    base = f"arn:aws:sagemaker:{region}:{account}"
    name = f"telecom-ml-{env}-churn"
    allowed = {f"{base}:endpoint/{name}", f"{base}:model/{name}-*", f"{base}:endpoint-config/{name}-*",
               f"{base}:model-package/{name}/*", f"{base}:pipeline/{name}-batch-scoring"}
    for spec in settings(assembly, stage).monitoring_schedules:  # dev's Model Monitor engine; none elsewhere
        kind = {"DataQuality": "data-quality", "ModelQuality": "model-quality"}[spec.type]
        allowed.add(f"{base}:monitoring-schedule/{spec.name}")
        allowed.add(f"{base}:{kind}-job-definition/{spec.job_definition_name}")
    seen = set()
    for role in DEPLOYER_ROLES:
        for statement in role_statements(assembly, stage, role):
            actions = listed(statement["Action"])
            targets = {render(r) for r in listed(statement["Resource"])}
            if any(a.startswith("sagemaker:") for a in actions):
                assert targets <= allowed, (role, actions, targets)
                seen |= targets
            if "*" in targets:
                assert all(a.startswith(("xray:", "application-autoscaling:")) for a in actions), (role, actions)
                if set(actions) & {"application-autoscaling:RegisterScalableTarget",
                                   "application-autoscaling:PutScalingPolicy",
                                   "application-autoscaling:DeregisterScalableTarget"}:
                    assert name in json.dumps(statement["Condition"]), statement
            if "iam:PassRole" in actions:
                assert targets == {f"arn:aws:iam::{account}:role/telecom-ml-{env}-sagemaker-execution"}
                assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert seen == allowed


@pytest.mark.parametrize("stage,env,account,region", STAGES)
def test_rollback_alarms_exist_before_any_endpoint_and_the_deployer_names_them(assembly: Assembly, stage: str,
                                                                               env: str, account: str,
                                                                               region: str) -> None:
    template = resources(assembly, stage)
    assert not [r for r in template.values() if r["Type"].startswith("AWS::SageMaker::")], "endpoints are run-time"
    name = f"telecom-ml-{env}-churn"
    alarms = {r["Properties"].get("AlarmName"): r["Properties"] for r in template.values()
              if r["Type"] == "AWS::CloudWatch::Alarm"}
    rollback = {f"{name}-invocation-5xx": "Invocation5XXErrors", f"{name}-model-latency": "ModelLatency",
                f"{name}-model-errors": "InvocationModelErrors"}
    for alarm_name, metric in rollback.items():
        props = alarms[alarm_name]
        assert props["MetricName"] == metric and props["Namespace"] == "AWS/SageMaker"
        assert props["Dimensions"] == [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName",
                                                                                "Value": "primary"}]
        assert props["AlarmActions"] == [f"arn:aws:sns:{region}:{account}:telecom-ml-{env}-ops"]
    deployed = settings(assembly, stage)
    update = api_requests.update_endpoint(deployed, f"{name}-c2-0123456789ab")
    assert problems("sagemaker", "UpdateEndpoint", update) == []
    named = [a["AlarmName"] for a in update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    assert sorted(named) == sorted(rollback)
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy["Type"] == "CANARY"


def test_prod_is_realtime_on_inferentia2_and_staging_too(assembly: Assembly) -> None:
    for stage in ("Prod", "Staging"):
        deployed = settings(assembly, stage)
        assert deployed.mode == "realtime" and deployed.instance_type.startswith("ml.inf2.")
        assert deployed.scaling.min_instances >= 1 and deployed.async_inference is None
    prod = settings(assembly, "Prod")
    assert (prod.scaling.min_instances, prod.scaling.max_instances, prod.initial_instance_count) == (2, 6, 2)


def test_dev_is_async_and_scales_from_zero(assembly: Assembly) -> None:
    dev = settings(assembly, "Dev")
    assert dev.mode == "async" and dev.instance_type == "ml.inf2.xlarge" and dev.initial_instance_count == 1
    register = scaling.register_scalable_target_request(dev)
    assert register["MinCapacity"] == 0
    assert problems("application-autoscaling", "RegisterScalableTarget", register) == []
    assert dev.scaling.wake_alarm_name == "telecom-ml-dev-churn-has-backlog-without-capacity"
    assert dev.async_inference is not None and dev.async_inference.output_s3_uri.endswith(
        "/async-output/telecom-ml-dev-churn")
    topics = resources(assembly, "Dev", "AWS::SNS::Topic").values()
    assert sorted(t["Properties"]["TopicName"] for t in topics) == [
        "telecom-ml-dev-churn-async-error", "telecom-ml-dev-churn-async-success"]
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics)


@pytest.mark.parametrize("stage", ["Dev", "Staging", "Prod"])
def test_endpoint_config_from_the_template_is_valid_for_the_service(assembly: Assembly, stage: str) -> None:
    from lambdas.deployer.package import ServingSpec

    deployed = settings(assembly, stage)
    spec = ServingSpec("arn:aws:sagemaker:eu-west-1:111111111111:model-package/g/1", "g", 1, "Approved", "primary",
                       ({"Image": "image", "ModelDataUrl": "s3://bucket/model.tar.gz"},))
    model = api_requests.create_model(deployed, spec)
    config = api_requests.create_endpoint_config(deployed, spec, model["ModelName"])
    assert problems("sagemaker", "CreateModel", model) == []
    assert problems("sagemaker", "CreateEndpointConfig", config) == []
    assert config["DataCaptureConfig"]["DestinationS3Uri"].endswith("/data-capture")
    # In the VPC where the environment has the SageMaker/ECR endpoints (staging, prod); dev is network mode
    # 'isolated' with no interface endpoints, so its endpoint stays outside the VPC.
    if stage == "Dev":
        assert "VpcConfig" not in model
    else:
        assert len(model["VpcConfig"]["Subnets"]) == 2
    variant = config["ProductionVariants"][0]
    assert variant["ContainerStartupHealthCheckTimeoutInSeconds"] >= 600
    assert variant["ModelDataDownloadTimeoutInSeconds"] >= 600


def test_sagemaker_role_writes_capture_only_under_the_endpoints_prefix(assembly: Assembly) -> None:
    statements = role_statements(assembly, "Staging", "telecom-ml-staging-sagemaker-execution")
    (put,) = [s for s in statements if "s3:PutObject" in listed(s["Action"])]
    assert [render(r) for r in listed(put["Resource"])] == [f"{PLACEHOLDER}/data-capture/telecom-ml-staging-churn/*"]
    assert not [s for s in statements if "s3:GetObject" in listed(s["Action"])], "real-time: no async input to read"
    dev = role_statements(assembly, "Dev", "telecom-ml-dev-sagemaker-execution")
    (dev_put,) = [s for s in dev if "s3:PutObject" in listed(s["Action"])]
    assert sorted(render(r).split("/", 1)[1] for r in listed(dev_put["Resource"])) == [
        "async-failures/telecom-ml-dev-churn/*", "async-output/telecom-ml-dev-churn/*",
        "data-capture/telecom-ml-dev-churn/*"]


def test_stack_deletion_tears_down_what_the_deployer_created(assembly: Assembly) -> None:
    template = resources(assembly, "Dev")
    (teardown_id,) = [k for k, r in template.items() if r["Type"] == "Custom::EndpointTeardown"]
    (rule,) = [r for r in template.values() if r["Type"] == "AWS::Events::Rule"]
    assert teardown_id in listed(rule.get("DependsOn", []))
    teardown = [s for s in role_statements(assembly, "Dev", "DeployerTeardownFunction")]
    actions = {a for s in teardown for a in listed(s["Action"])}
    assert {"sagemaker:DeleteEndpoint", "sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel",
            "application-autoscaling:DeregisterScalableTarget", "states:StopExecution"} <= actions


def test_state_machine_waits_in_bounded_loops_and_notifies_failures(assembly: Assembly) -> None:
    (machine,) = resources(assembly, "Prod", "AWS::StepFunctions::StateMachine").values()
    definition = json.loads(render(machine["Properties"]["DefinitionString"]))
    states = definition["States"]
    assert {"Receive", "Prepare", "Start", "Check", "RegisterScaling", "RestoreScaling", "Finish",
            "NotifyFailure", "WaitForEndpoint", "WaitToStart"} <= set(states)
    assert states["WaitForEndpoint"]["Seconds"] == 60 and definition["TimeoutSeconds"] > 0
    assert machine["Properties"]["StateMachineName"] == "telecom-ml-prod-churn-deployer"
    assert settings(assembly, "Prod").max_polls == 180
    assert states["NotifyFailure"]["Next"] == "Finish"


@pytest.mark.parametrize("stage,limit,emails", [("Dev", 300, 0), ("Staging", 1500, 1), ("Prod", 6000, 1)])
def test_each_environment_has_a_budget(assembly: Assembly, stage: str, limit: int, emails: int) -> None:
    (budget,) = resources(assembly, stage, "AWS::Budgets::Budget").values()
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": limit, "Unit": "USD"}
    notices = budget["Properties"]["NotificationsWithSubscribers"]
    topic = f"telecom-ml-{stage.lower()}-ops"
    for notice in notices:
        sns, *mail = notice["Subscribers"]
        assert sns["SubscriptionType"] == "SNS" and render(sns["Address"]).endswith(f":{topic}"), sns
        assert len(mail) == emails and all(m["SubscriptionType"] == "EMAIL" for m in mail)


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_the_ops_topic_and_its_key_admit_this_accounts_budgets(assembly: Assembly, stage: str) -> None:
    account = {"Dev": "111111111111", "Prod": "333333333333"}[stage]
    for kind, policy_key, action in (("AWS::KMS::Key", "KeyPolicy", "kms:GenerateDataKey"),
                                     ("AWS::SNS::TopicPolicy", "PolicyDocument", "sns:Publish")):
        found = assembly.template(stage, "Foundation")["Resources"].values()
        documents = [r["Properties"][policy_key] for r in found if r["Type"] == kind]
        statements = [s for d in documents for s in d["Statement"] if s.get("Sid") == "PublishBudgets"]
        assert len(statements) == 1, kind
        (statement,) = statements
        assert statement["Principal"] == {"Service": "budgets.amazonaws.com"}
        assert action in json.dumps(statement["Action"])
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": account}
        assert render(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == f"arn:aws:budgets::{account}:budget/*"


def test_dashboard_shows_endpoint_metrics_and_the_async_backlog(assembly: Assembly) -> None:
    for stage, backlog in (("Dev", True), ("Prod", False)):
        (dashboard,) = resources(assembly, stage, "AWS::CloudWatch::Dashboard").values()
        body = render(dashboard["Properties"]["DashboardBody"])
        for metric in ("Invocations", "Invocation5XXErrors", "ModelLatency", "CPUUtilization", "MemoryUtilization",
                       "NeuronCoreUtilization"):
            assert metric in body, metric
        assert ("ApproximateBacklogSize" in body) is backlog


def test_deployer_functions_ship_only_the_deployer_package(assembly: Assembly) -> None:
    functions = [r for r in resources(assembly, "Dev", "AWS::Lambda::Function").values()
                 if "DEPLOYER_SETTINGS" in r["Properties"]["Environment"]["Variables"]]
    assert len(functions) == 8
    assert {f["Properties"]["Runtime"] for f in functions} == {"python3.11"}
    assert all(f["Properties"]["TracingConfig"] == {"Mode": "Active"} for f in functions)
    keys = {f["Properties"]["Code"]["S3Key"] for f in functions}
    assert len(keys) == 1
    asset = assembly.outdir / f"asset.{keys.pop().split('.')[0]}"
    shipped = sorted(str(p.relative_to(asset)) for p in asset.rglob("*") if p.is_file())
    assert "__init__.py" in shipped and "deployer/handlers/receive.py" in shipped
    assert all(p == "__init__.py" or p.startswith("deployer/") for p in shipped), shipped
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")]


@pytest.mark.parametrize("prefix,service,source", [
    ("DeployerStateMachineRole", "states.amazonaws.com", "stateMachine:*"),
    ("DeployerStateMachineEventsRole", "events.amazonaws.com", "rule/*"),
])
def test_service_roles_trust_only_this_accounts_resources(assembly: Assembly, prefix: str, service: str,
                                                          source: str) -> None:
    import re

    roles = resources(assembly, "Prod", "AWS::IAM::Role")
    (role,) = [r for k, r in roles.items() if re.fullmatch(f"{prefix}[0-9A-F]{{8}}", k)]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": service}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "333333333333"},
        "ArnLike": {"aws:SourceArn": f"arn:aws:{service.split('.')[0]}:eu-central-1:333333333333:{source}"},
    }
