"""Deleting the stack removes what the deployer created: endpoint, configurations, models, scaling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.deployer.teardown import stop_executions, teardown
from tests.unit.lambdas.deployer.conftest import Cloud, approval_event
from tests.unit.lambdas.deployer.flow import deploy, receive

NOTHING: dict[str, list[str]] = {
    "scaling": [], "monitoring_schedules": [], "endpoint": [], "endpoint_configs": [], "models": []
}


def _teardown(cloud: Cloud) -> dict[str, list[str]]:
    ctx = cloud.ctx
    return teardown(ctx.sagemaker, ctx.autoscaling, ctx.cloudwatch, ctx.ledger, ctx.settings)


def test_teardown_removes_everything_the_deployer_created(async_cloud: Cloud) -> None:
    cloud = async_cloud
    for execution in ("exec-1", "exec-2"):
        deploy(cloud, receive(cloud, approval_event(cloud.register_package()), execution=execution))
    sm = cloud.sagemaker
    assert len(sm.list_models()["Models"]) == 2 and len(sm.list_endpoint_configs()["EndpointConfigs"]) == 2
    removed = _teardown(cloud)
    assert removed["endpoint"] == [cloud.ctx.settings.endpoint_name]
    assert len(removed["models"]) == 2 and len(removed["endpoint_configs"]) == 2
    assert removed["scaling"] == [cloud.ctx.settings.scaling_resource_id]
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert cloud.ctx.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert cloud.ctx.cloudwatch.describe_alarms()["MetricAlarms"] == []
    assert cloud.ctx.ledger.resources() == {"models": set(), "endpoint_configs": set()}


def test_teardown_twice_or_before_any_deployment_is_harmless(cloud: Cloud) -> None:
    assert _teardown(cloud) == NOTHING
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    assert _teardown(cloud)["endpoint"]
    assert _teardown(cloud) == NOTHING


def test_running_executions_are_stopped_first(cloud: Cloud) -> None:
    import boto3

    sfn = boto3.client("stepfunctions", region_name="eu-west-1")
    machine = sfn.create_state_machine(
        name="deployer", definition=json.dumps({"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60,
                                                                                    "End": True}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    running = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    assert stop_executions(sfn, machine) == [running]
    assert sfn.describe_execution(executionArn=running)["status"] == "ABORTED"


def test_the_custom_resource_handler_answers_cloudformation(cloud: Cloud, monkeypatch: pytest.MonkeyPatch,
                                                            settings_env: None) -> None:
    from lambdas.deployer import aws
    from lambdas.deployer.handlers import teardown as handler_module

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(handler_module, "send", lambda event, status, reason, pid: sent.append(
        {"status": status, "reason": reason, "id": pid}))
    monkeypatch.setattr(aws, "step_context", lambda: cloud.ctx)
    monkeypatch.setattr(handler_module, "stop_executions", lambda client, arn: [])
    monkeypatch.setenv("STATE_MACHINE_ARN", "arn:aws:states:eu-west-1:123456789012:stateMachine:deployer")
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    base = {"StackId": "s", "RequestId": "r", "LogicalResourceId": "Teardown", "ResponseURL": "https://example.com/x"}
    handler_module.handler({**base, "RequestType": "Create"}, _context())
    handler_module.handler({**base, "RequestType": "Delete"}, _context())
    assert [s["status"] for s in sent] == ["SUCCESS", "SUCCESS"]
    assert sent[1]["reason"].startswith("removed ") and cloud.sagemaker.list_endpoints()["Endpoints"] == []


def test_a_teardown_failure_is_reported_not_hung(monkeypatch: pytest.MonkeyPatch, settings_env: None) -> None:
    from lambdas.deployer import aws
    from lambdas.deployer.handlers import teardown as handler_module

    sent: list[str] = []
    monkeypatch.setattr(handler_module, "send", lambda event, status, reason, pid: sent.append(f"{status} {reason}"))
    monkeypatch.setattr(aws, "step_context", lambda: (_ for _ in ()).throw(RuntimeError("no credentials")))
    handler_module.handler({"RequestType": "Delete", "StackId": "s", "RequestId": "r", "LogicalResourceId": "T",
                            "ResponseURL": "https://example.com/x"}, _context())
    assert sent == ["FAILED RuntimeError: no credentials"]


def test_the_response_body_is_what_cloudformation_expects() -> None:
    from lambdas.deployer.cfn_response import response_body

    event = {"StackId": "s", "RequestId": "r", "LogicalResourceId": "T"}
    body = json.loads(response_body(event, "SUCCESS", "ok", "pid"))
    assert body == {"Status": "SUCCESS", "Reason": "ok", "PhysicalResourceId": "pid", "StackId": "s",
                    "RequestId": "r", "LogicalResourceId": "T", "NoEcho": False, "Data": {}}


def _context() -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(function_name="teardown", memory_limit_in_mb=256, aws_request_id="req-1",
                           invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:teardown")
