"""After a deployment succeeds, monitoring follows it: the current baseline, the Model Monitor
schedules and the batch scoring hook; teardown deletes the schedules before the endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.stub import Stubber
from moto import mock_aws

from lambdas.deployer import baseline, batch_scoring, schedules, steps
from lambdas.deployer.errors import InvalidSettingsError, PackageNotDeployableError
from lambdas.deployer.settings import DeployerSettings, parse_settings
from lambdas.deployer.state import DeploymentState
from lambdas.deployer.teardown import teardown
from tests.unit.lambdas.deployer.api_model import problems
from tests.unit.lambdas.deployer.conftest import (
    BASELINE_PREFIX,
    BUCKET,
    CURRENT_BASELINE,
    PREDICTIONS_KEY,
    REGION,
    Cloud,
    approval_event,
    make_cloud,
    settings_document,
)
from tests.unit.lambdas.deployer.flow import deploy, receive

SCHEDULES = [
    {
        "name": "telecom-ml-dev-churn-data-quality",
        "job_definition_name": "telecom-ml-dev-dq-0a1b2c3d",
        "type": "DataQuality",
        "schedule_expression": "cron(0 * ? * * *)",
    },
    {
        "name": "telecom-ml-dev-churn-model-quality",
        "job_definition_name": "telecom-ml-dev-mq-4e5f6a7b",
        "type": "ModelQuality",
        "schedule_expression": "cron(0 0 ? * * *)",
    },
]
PIPELINE = "telecom-ml-dev-churn-batch-scoring"


def _current(cloud: Cloud) -> dict[str, Any]:
    s3 = cloud.ctx.s3
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=CURRENT_BASELINE).get("Contents", [])
    return {o["Key"].rsplit("/", 1)[1]: s3.get_object(Bucket=BUCKET, Key=o["Key"]) for o in listed}


def _put_baseline(cloud: Cloud, prefix: str, tag: str) -> None:
    for name in baseline.FILES.values():
        cloud.ctx.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=json.dumps({"of": tag}).encode())


# ------------------------------------------------------------------------------------- current baseline
def test_deployment_copies_the_packages_baseline_to_the_current_baseline(cloud: Cloud) -> None:
    arn = cloud.register_package()
    [done] = deploy(cloud, receive(cloud, approval_event(arn)))
    assert done.outcome == "deployed" and done.notices == ()
    current = _current(cloud)
    assert sorted(current) == ["baseline_predictions.csv", "constraints.json", "statistics.json"]
    predictions = current.pop("baseline_predictions.csv")
    assert predictions["Body"].read() == b"probability\n0.1\n0.7\n"
    assert predictions["ContentType"] == "text/csv"
    assert predictions["Metadata"] == {"model-package-arn": arn, "source": f"s3://{BUCKET}/{PREDICTIONS_KEY}"}
    for name, obj in current.items():
        assert json.loads(obj["Body"].read()) == {"baseline": name}
        assert obj["ServerSideEncryption"] == "aws:kms"
        assert obj["SSEKMSKeyId"] == cloud.ctx.settings.baseline.kms_key_arn
        assert obj["Metadata"] == {"model-package-arn": arn, "source": f"s3://{BUCKET}/{BASELINE_PREFIX}/{name}"}


def test_the_next_deployment_replaces_the_current_baseline(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    _put_baseline(cloud, "churn-pipeline/baseline/ffff/2026-11-20/baseline", "second")
    second = cloud.register_package(baseline="churn-pipeline/baseline/ffff/2026-11-20/baseline")
    [done] = deploy(cloud, receive(cloud, approval_event(second), execution="exec-2"))
    assert done.outcome == "deployed"
    current = _current(cloud)
    assert current.pop("baseline_predictions.csv")["Body"].read() == b"probability\n0.1\n0.7\n"
    assert {n: json.loads(o["Body"].read()) for n, o in current.items()} == {
        "statistics.json": {"of": "second"},
        "constraints.json": {"of": "second"},
    }


def test_a_package_without_baseline_predictions_deploys_removes_the_old_ones_and_says_so(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    assert "baseline_predictions.csv" in _current(cloud)
    older = cloud.register_package(predictions=None)
    [done] = deploy(cloud, receive(cloud, approval_event(older), execution="exec-2"))
    assert done.outcome == "deployed"
    [notice] = done.notices
    assert older in notice and "baseline_predictions_uri" in notice and "skips prediction drift" in notice
    assert sorted(_current(cloud)) == ["constraints.json", "statistics.json"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("churn-pipeline/executions/e/EvaluateXGBoost/evaluation/predictions.csv", "does not name a baseline_pred"),
        ("churn-pipeline/features/baseline_predictions.csv", "outside s3://ml-artifacts/"),
    ],
)
def test_baseline_predictions_elsewhere_fail_the_follow_up_and_leave_no_stale_baseline(
    cloud: Cloud, key: str, message: str
) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    cloud.ctx.s3.put_object(Bucket=BUCKET, Key=key, Body=b"id,target,probability\n")
    elsewhere = cloud.register_package(predictions=key)
    state = steps.prepare(receive(cloud, approval_event(elsewhere), execution="exec-2"), cloud.ctx)
    with pytest.raises(PackageNotDeployableError, match=message):
        steps.follow_up(state.but(status="in_service"), cloud.ctx)
    assert _current(cloud) == {}


def test_a_package_without_baseline_deploys_empties_the_current_baseline_and_says_so(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    assert _current(cloud)
    bare = cloud.register_package(baseline=None)
    [done] = deploy(cloud, receive(cloud, approval_event(bare), execution="exec-2"))
    assert done.outcome == "deployed"
    assert cloud.ctx.ledger.status(bare) == "deployed"
    [notice] = done.notices
    assert bare in notice and "monitoring has no baseline" in notice
    assert _current(cloud) == {}


def test_a_baseline_outside_the_readable_prefixes_fails_and_leaves_no_stale_baseline(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    elsewhere = cloud.register_package(baseline="scratch/baseline")
    state = steps.prepare(receive(cloud, approval_event(elsewhere), execution="exec-2"), cloud.ctx)
    state = state.but(status="in_service")
    with pytest.raises(PackageNotDeployableError, match=r"s3://ml-artifacts/scratch/baseline/statistics.json"):
        steps.follow_up(state, cloud.ctx)
    assert _current(cloud) == {}


@pytest.mark.parametrize(
    "quality",
    [
        {},
        {"Statistics": {"S3Uri": "s3://ml-artifacts/churn-pipeline/baseline/a/statistics.json"}},
        {"Statistics": {"S3Uri": ""}, "Constraints": {"S3Uri": "s3://b/c"}},
    ],
)
def test_an_incomplete_baseline_counts_as_none(quality: dict[str, Any]) -> None:
    assert baseline.baseline_sources({"DriftCheckBaselines": {"ModelDataQuality": quality}}) is None


# ------------------------------------------------------------------------------------------- schedules
def _with(**overrides: Any) -> DeployerSettings:
    return DeployerSettings.model_validate(settings_document("realtime", **overrides))


def _not_found(stub: Stubber, name: str) -> None:
    stub.add_client_error(
        "describe_monitoring_schedule",
        service_error_code="ResourceNotFound",
        service_message=f"Monitoring schedule {name} not found",
        expected_params={"MonitoringScheduleName": name},
    )


def _exists(stub: Stubber, name: str) -> None:
    stub.add_response(
        "describe_monitoring_schedule",
        {
            "MonitoringScheduleArn": f"arn:aws:sagemaker:{REGION}:123456789012:monitoring-schedule/{name}",
            "MonitoringScheduleName": name,
            "MonitoringScheduleStatus": "Scheduled",
            "CreationTime": "2026-11-01T00:00:00Z",
            "LastModifiedTime": "2026-11-01T00:00:00Z",
            "MonitoringScheduleConfig": {},
        },
        {"MonitoringScheduleName": name},
    )


def test_schedules_are_created_with_the_job_definition_and_type() -> None:
    settings = _with(monitoring_schedules=SCHEDULES)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    tags = [
        {"Key": "cost-center", "Value": "telecom-ml-dev"},
        {"Key": "telecom-ml:endpoint", "Value": "telecom-ml-dev-churn"},
        {"Key": "telecom-ml:managed-by", "Value": "endpoint-deployer"},
    ]
    with Stubber(sagemaker) as stub:
        for spec in SCHEDULES:
            _not_found(stub, spec["name"])
            request = {
                "MonitoringScheduleName": spec["name"],
                "MonitoringScheduleConfig": {
                    "ScheduleConfig": {"ScheduleExpression": spec["schedule_expression"]},
                    "MonitoringJobDefinitionName": spec["job_definition_name"],
                    "MonitoringType": spec["type"],
                },
                "Tags": tags,
            }
            assert problems("sagemaker", "CreateMonitoringSchedule", request) == []
            stub.add_response("create_monitoring_schedule", {"MonitoringScheduleArn": "arn:x"}, request)
        assert schedules.ensure(sagemaker, settings) == {s["name"]: "created" for s in SCHEDULES}
        stub.assert_no_pending_responses()


def test_existing_schedules_are_moved_to_the_stacks_job_definitions() -> None:
    settings = _with(monitoring_schedules=SCHEDULES[:1])
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    spec = SCHEDULES[0]
    with Stubber(sagemaker) as stub:
        _exists(stub, spec["name"])
        request = {
            "MonitoringScheduleName": spec["name"],
            "MonitoringScheduleConfig": {
                "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
                "MonitoringJobDefinitionName": "telecom-ml-dev-dq-0a1b2c3d",
                "MonitoringType": "DataQuality",
            },
        }
        assert problems("sagemaker", "UpdateMonitoringSchedule", request) == []
        stub.add_response("update_monitoring_schedule", {"MonitoringScheduleArn": "arn:x"}, request)
        assert schedules.ensure(sagemaker, settings) == {spec["name"]: "updated"}
        stub.assert_no_pending_responses()


def test_schedule_errors_other_than_not_found_propagate() -> None:
    settings = _with(monitoring_schedules=SCHEDULES[:1])
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_monitoring_schedule", service_error_code="AccessDeniedException")
        with pytest.raises(Exception, match="AccessDenied"):
            schedules.ensure(sagemaker, settings)


def test_teardown_deletes_schedules_and_skips_missing_ones() -> None:
    settings = _with(monitoring_schedules=SCHEDULES)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub.add_response("delete_monitoring_schedule", {}, {"MonitoringScheduleName": SCHEDULES[0]["name"]})
        stub.add_client_error(
            "delete_monitoring_schedule",
            service_error_code="ResourceNotFound",
            service_message="Could not find schedule",
            expected_params={"MonitoringScheduleName": SCHEDULES[1]["name"]},
        )
        assert schedules.delete(sagemaker, settings) == [SCHEDULES[0]["name"]]
        stub.assert_no_pending_responses()


def test_no_schedules_configured_means_no_monitoring_calls(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    teardown(cloud.sagemaker, cloud.ctx.autoscaling, cloud.ctx.cloudwatch, cloud.ctx.ledger, cloud.ctx.settings)
    assert not [op for op in cloud.operations() if "MonitoringSchedule" in op]


def test_duplicate_schedule_names_are_refused() -> None:
    with pytest.raises(InvalidSettingsError, match="monitoring_schedules"):
        parse_settings(json.dumps(settings_document(monitoring_schedules=[SCHEDULES[0], SCHEDULES[0]])))


class _FakeSchedules:
    """Monitoring schedule APIs moto lacks, answered after botocore validated the request."""

    def __init__(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        request = json.loads(params["body"])
        name = request.get("MonitoringScheduleName")
        ok = AWSResponse("https://sagemaker", 200, {}, None)
        if model.name == "DescribeMonitoringSchedule":
            if name not in self.live:
                error = {"Error": {"Code": "ResourceNotFound", "Message": f"Monitoring schedule {name} not found"}}
                return AWSResponse("https://sagemaker", 400, {}, None), error
            return ok, {"MonitoringScheduleName": name, **self.live[name]}
        if model.name in ("CreateMonitoringSchedule", "UpdateMonitoringSchedule"):
            self.live[name] = request["MonitoringScheduleConfig"]
            return ok, {"MonitoringScheduleArn": f"arn:aws:sagemaker:{REGION}:123456789012:monitoring-schedule/{name}"}
        if model.name == "DeleteMonitoringSchedule":
            self.live.pop(name)
            return ok, {}
        return None


@pytest.fixture
def monitored_cloud(inf2_aware_moto: None) -> Iterator[tuple[Cloud, _FakeSchedules]]:
    with mock_aws():
        cloud = make_cloud(_with(monitoring_schedules=SCHEDULES))
        fake = _FakeSchedules()
        for verb in ("Describe", "Create", "Update", "Delete"):
            cloud.sagemaker.meta.events.register(f"before-call.sagemaker.{verb}MonitoringSchedule", fake)
        yield cloud, fake


def test_schedules_follow_every_deployment_and_go_before_the_endpoint(
    monitored_cloud: tuple[Cloud, _FakeSchedules],
) -> None:
    cloud, fake = monitored_cloud
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    assert sorted(fake.live) == sorted(s["name"] for s in SCHEDULES)
    deploy(cloud, receive(cloud, approval_event(cloud.register_package()), execution="exec-2"))
    assert len(cloud.requests("UpdateMonitoringSchedule")) == 2
    ctx = cloud.ctx
    removed = teardown(ctx.sagemaker, ctx.autoscaling, ctx.cloudwatch, ctx.ledger, ctx.settings)
    assert removed["monitoring_schedules"] == [s["name"] for s in SCHEDULES] and fake.live == {}
    operations = cloud.operations()
    last_schedule_delete = max(i for i, op in enumerate(operations) if op == "DeleteMonitoringSchedule")
    assert last_schedule_delete < operations.index("DeleteEndpoint")


# ------------------------------------------------------------------------------------------ batch scoring
def _in_service(arn: str, execution: str) -> DeploymentState:
    return DeploymentState(
        package_arn=arn,
        version=1,
        execution=execution,
        outcome="deploy",
        status="in_service",
        config_name="telecom-ml-dev-churn-c1-abc",
    )


def test_batch_scoring_starts_once_per_deployment_with_the_package(cloud: Cloud) -> None:
    arn = cloud.register_package()
    ctx = cloud.ctx
    ctx = type(ctx)(**{**ctx.__dict__, "settings": _with(batch_scoring_pipeline_name=PIPELINE)})
    request = batch_scoring.start_request(PIPELINE, "exec-1", arn)
    assert request["PipelineParameters"] == [{"Name": "ModelPackageArn", "Value": arn}]
    assert problems("sagemaker", "StartPipelineExecution", request) == []
    execution_arn = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/{PIPELINE}/execution/abc"
    with Stubber(ctx.sagemaker) as stub:
        for _ in range(2):  # the step, then Step Functions retrying it
            stub.add_response(
                "describe_model_package",
                {
                    "ModelPackageName": "x",
                    "ModelPackageArn": arn,
                    "CreationTime": "2026-11-01T00:00:00Z",
                    "ModelPackageStatus": "Completed",
                    "ModelApprovalStatus": "Approved",
                    "ModelPackageStatusDetails": {"ValidationStatuses": []},
                },
                {"ModelPackageName": arn},
            )
            stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": execution_arn}, request)
        first = steps.follow_up(_in_service(arn, "exec-1"), ctx)
        again = steps.follow_up(_in_service(arn, "exec-1"), ctx)
        stub.assert_no_pending_responses()
    assert first.batch_scoring_execution == again.batch_scoring_execution == execution_arn
    assert first.notices and "no data-quality baseline" in first.notices[0]


def test_the_request_token_names_the_deployment() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/telecom-ml-dev-churn/3"
    token = batch_scoring.request_token("exec-1", arn)
    assert token == batch_scoring.request_token("exec-1", arn) and len(token) == 64
    assert token != batch_scoring.request_token("exec-2", arn)
    assert token != batch_scoring.request_token("exec-1", arn[:-1] + "4")


def test_no_pipeline_configured_starts_nothing(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    assert cloud.requests("StartPipelineExecution") == []


def test_a_stack_update_moves_live_schedules_to_the_new_job_definitions(
    monitored_cloud: tuple[Cloud, _FakeSchedules],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lambdas.deployer import aws
    from lambdas.deployer.handlers import teardown as handler_module

    cloud, fake = monitored_cloud
    sent: list[str] = []
    monkeypatch.setattr(handler_module, "send", lambda event, status, reason, pid: sent.append(status))
    event = {
        "StackId": "s",
        "RequestId": "r",
        "LogicalResourceId": "Teardown",
        "ResponseURL": "https://x/y",
        "RequestType": "Update",
    }
    context = type(
        "Context",
        (),
        {
            "function_name": "teardown",
            "memory_limit_in_mb": 256,
            "aws_request_id": "r",
            "invoked_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:t",
        },
    )()
    monkeypatch.setattr(aws, "step_context", lambda: cloud.ctx)
    handler_module.handler(event, context)  # no endpoint yet: nothing to move
    assert fake.live == {}
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    renamed = [{**s, "job_definition_name": s["job_definition_name"] + "-v2"} for s in SCHEDULES]
    updated = type(cloud.ctx)(**{**cloud.ctx.__dict__, "settings": _with(monitoring_schedules=renamed)})
    monkeypatch.setattr(aws, "step_context", lambda: updated)
    handler_module.handler(event, context)
    assert sent == ["SUCCESS", "SUCCESS"]
    assert {n: c["MonitoringJobDefinitionName"] for n, c in fake.live.items()} == {
        s["name"]: s["job_definition_name"] for s in renamed
    }


def test_where_promotion_is_configured_a_package_trained_here_never_deploys(inf2_aware_moto: None) -> None:
    with mock_aws():
        cloud = make_cloud(_with(require_promoted=True))
        local = cloud.register_package()
        state = receive(cloud, approval_event(local))
        with pytest.raises(PackageNotDeployableError, match="was not promoted"):
            steps.prepare(state, cloud.ctx)
        assert cloud.requests("CreateModel") == []
        promoted = cloud.sagemaker.create_model_package(
            ModelPackageGroupName="telecom-ml-dev-churn",
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"promoted_from": "arn:aws:sagemaker:eu-west-1:222222222222:model-package/s/1"},
            InferenceSpecification=cloud.sagemaker.describe_model_package(ModelPackageName=local)[
                "InferenceSpecification"
            ],
        )["ModelPackageArn"]
        steps.finish(state.but(status="failed", reason="refused"), cloud.ctx)
        [done] = deploy(cloud, receive(cloud, approval_event(promoted), execution="exec-2"))
        assert done.outcome == "deployed"
