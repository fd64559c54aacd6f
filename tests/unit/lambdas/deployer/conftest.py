"""A moto account holding the model package group, the ledger table and a fake for UpdateEndpoint.

moto 5.2.5 has no UpdateEndpoint and an outdated endpoint instance-type list (no ml.inf2.*): the
fixture answers UpdateEndpoint itself (after botocore validated the request) by moving moto's
endpoint to Updating on the new configuration, and checks instance types against botocore's own
ProductionVariantInstanceType enum instead of moto's list. Every request the deployer sends is
recorded, so tests assert on the real API arguments.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.sagemaker import models as sagemaker_models

from lambdas.deployer.context import StepContext
from lambdas.deployer.ledger import Ledger
from lambdas.deployer.settings import DeployerSettings
from tests.unit.lambdas.deployer.api_model import enum_of

ACCOUNT, REGION = "123456789012", "eu-west-1"
GROUP = "telecom-ml-dev-churn"
ENDPOINT = "telecom-ml-dev-churn"
ROLLBACK_ALARMS = (f"{ENDPOINT}-invocation-5xx", f"{ENDPOINT}-model-latency", f"{ENDPOINT}-model-errors")
REGISTRY = f"763104351884.dkr.ecr.{REGION}.amazonaws.com"
NEURON_IMAGE = f"{REGISTRY}/pytorch-inference-neuronx:2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"
CPU_IMAGE = f"{REGISTRY}/pytorch-inference:2.9.0-cpu-py312-ubuntu24.04"
BUCKET = "ml-artifacts"
CURRENT_BASELINE = f"monitoring/{ENDPOINT}/current-baseline/"
BASELINE_PREFIX = "churn-pipeline/baseline/0123456789abcdef/2026-11-01/baseline"
PREDICTIONS_KEY = "churn-pipeline/executions/exec0/EvaluateXGBoost/evaluation/baseline_predictions.csv"


def settings_document(mode: str = "realtime", **overrides: Any) -> dict[str, Any]:
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
    doc: dict[str, Any] = {
        "env_name": "dev",
        "account": ACCOUNT,
        "region": REGION,
        "endpoint_name": ENDPOINT,
        "variant_name": "primary",
        "model_package_group_name": GROUP,
        "ledger_table": "deployer-ledger",
        "mode": mode,
        "instance_type": "ml.inf2.xlarge",
        "initial_instance_count": 1,
        "container_startup_timeout_seconds": 900,
        "model_data_download_timeout_seconds": 1200,
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/telecom-ml-dev-sagemaker-execution",
        "volume_kms_key_arn": key,
        "network": {"subnet_ids": ["subnet-0a", "subnet-0b"], "security_group_ids": ["sg-0endpoint"]},
        "capture": {"enabled": True, "sampling_percent": 100, "destination_s3_uri": "s3://ml-artifacts/data-capture",
                    "kms_key_arn": key},
        "canary": {"size_percent": 10, "wait_seconds": 600, "termination_wait_seconds": 300,
                   "maximum_execution_seconds": 7200},
        "rollback_alarm_names": list(ROLLBACK_ALARMS),
        "scaling": {"min_instances": 1, "max_instances": 3, "target_value": 1000.0, "scale_in_cooldown_seconds": 600,
                    "scale_out_cooldown_seconds": 60},
        "lease_seconds": 14400,
        "max_polls": 5,
        "tags": {"cost-center": "telecom-ml-dev"},
        "baseline": {"bucket": BUCKET, "source_prefixes": ["churn-pipeline/baseline/", "promoted/"],
                     "predictions_prefixes": ["churn-pipeline/executions/", "promoted/"],
                     "current_prefix": CURRENT_BASELINE, "kms_key_arn": key},
    }
    if mode == "async":
        doc["async_inference"] = {
            "output_s3_uri": f"s3://ml-artifacts/async-output/{ENDPOINT}",
            "failure_s3_uri": f"s3://ml-artifacts/async-failures/{ENDPOINT}",
            "kms_key_arn": key,
            "success_topic_arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{ENDPOINT}-async-success",
            "error_topic_arn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{ENDPOINT}-async-error",
            "max_concurrent_invocations_per_instance": 4,
        }
        doc["scaling"] = {**doc["scaling"], "min_instances": 0, "max_instances": 1, "target_value": 5.0,
                          "wake_alarm_name": f"{ENDPOINT}-has-backlog-without-capacity"}
    doc.update(overrides)
    return doc


@dataclass
class Cloud:
    """The moto account, the deployer's context and what the deployer asked AWS to do."""

    ctx: StepContext
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    versions: int = 0

    @property
    def sagemaker(self) -> Any:
        return self.ctx.sagemaker

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, op, params in self.calls if op == operation]

    def operations(self) -> list[str]:
        return [op for _, op, _ in self.calls]

    def register_package(self, status: str = "Approved", baseline: str | None = BASELINE_PREFIX,
                         predictions: str | None = PREDICTIONS_KEY, **spec: Any) -> str:
        inference = {
            "Containers": [{"Image": NEURON_IMAGE, "ModelDataUrl": "s3://ml-artifacts/models/neuron/model.tar.gz",
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}],
            "SupportedRealtimeInferenceInstanceTypes": ["ml.inf2.xlarge", "ml.inf2.8xlarge"],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
            **spec,
        }
        cpu = {"Name": "cpu-torchscript", "Containers": [{"Image": CPU_IMAGE,
               "ModelDataUrl": "s3://ml-artifacts/models/cpu/model.tar.gz"}],
               "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.xlarge", "ml.c6i.xlarge"]}
        extra: dict[str, Any] = {}
        if baseline is not None:
            extra["DriftCheckBaselines"] = {"ModelDataQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{baseline}/statistics.json"},
                "Constraints": {"ContentType": "application/json",
                                "S3Uri": f"s3://{BUCKET}/{baseline}/constraints.json"},
            }}
        if predictions is not None:
            extra["CustomerMetadataProperties"] = {"baseline_predictions_uri": f"s3://{BUCKET}/{predictions}"}
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus=status, InferenceSpecification=inference,
            AdditionalInferenceSpecifications=[cpu], **extra,
        )["ModelPackageArn"]
        self.versions += 1
        return str(arn)

    def set_approval(self, arn: str, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)

    def endpoint(self) -> Any:
        return sagemaker_models.sagemaker_backends[ACCOUNT][REGION].endpoints.get(ENDPOINT)

    def settle(self, status: str = "InService", config: str | None = None, reason: str | None = None) -> None:
        """What SageMaker does at the end of a deployment: in service, possibly back on the old config."""
        endpoint = self.endpoint()
        endpoint.endpoint_status = status
        if config is not None:
            endpoint.endpoint_config_name = config
        endpoint.failure_reason = reason


def approval_event(arn: str, status: str = "Approved", **changes: Any) -> dict[str, Any]:
    version = int(arn.rsplit("/", 1)[1])
    event = {
        "version": "0",
        "id": f"0b5d3e6f-0000-4000-8000-00000000000{version}",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-11-27T10:00:00Z",
        "region": REGION,
        "resources": [arn],
        "detail": {
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": version,
            "ModelPackageArn": arn,
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": status,
            "CreationTime": 1795000000000,
        },
    }
    event.update(changes)
    return event


def _record(calls: list[tuple[str, str, dict[str, Any]]], service: str) -> Any:
    def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body") or b"{}"
        decoded = json.loads(body) if isinstance(body, (bytes, str)) and body else {}
        calls.append((service, model.name, decoded))

    return before_call


def _fake_update_endpoint(model: Any, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
    request = json.loads(params["body"])
    backend = sagemaker_models.sagemaker_backends[ACCOUNT][REGION]
    endpoint = backend.endpoints[request["EndpointName"]]
    if endpoint.endpoint_status != "InService":
        raise AssertionError(f"UpdateEndpoint on an endpoint that is {endpoint.endpoint_status}")
    backend.describe_endpoint_config(request["EndpointConfigName"])  # must exist, as in SageMaker
    endpoint.endpoint_config_name = request["EndpointConfigName"]
    endpoint.endpoint_status = "Updating"
    return AWSResponse("https://sagemaker", 200, {}, None), {"EndpointArn": endpoint.arn}


@pytest.fixture(autouse=True)
def _lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "endpoint-deployer",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def inf2_aware_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    valid = set(enum_of("sagemaker", "ProductionVariantInstanceType"))

    def validate(self: Any, instance_type: str) -> None:
        if instance_type not in valid:
            raise sagemaker_models.ValidationError(message=f"'{instance_type}' is not a ProductionVariantInstanceType")

    monkeypatch.setattr(sagemaker_models.FakeEndpointConfig, "validate_instance_type", validate)


def make_cloud(settings: DeployerSettings) -> Cloud:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    clients = {}
    for service in ("sagemaker", "application-autoscaling", "cloudwatch"):
        clients[service] = boto3.client(service, region_name=REGION)
        clients[service].meta.events.register("before-call.*.*", _record(calls, service))
    clients["sagemaker"].meta.events.register("before-call.sagemaker.UpdateEndpoint", _fake_update_endpoint)
    table = boto3.resource("dynamodb", region_name=REGION).create_table(
        TableName=settings.ledger_table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
    )
    clients["sagemaker"].create_model_package_group(ModelPackageGroupName=GROUP)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name in ("statistics.json", "constraints.json"):
        s3.put_object(Bucket=BUCKET, Key=f"{BASELINE_PREFIX}/{name}", Body=json.dumps({"baseline": name}).encode())
    s3.put_object(Bucket=BUCKET, Key=PREDICTIONS_KEY, Body=b"probability\n0.1\n0.7\n")
    ctx = StepContext(settings=settings, sagemaker=clients["sagemaker"], autoscaling=clients["application-autoscaling"],
                      cloudwatch=clients["cloudwatch"], ledger=Ledger(table), clock=lambda: 1_795_000_000, s3=s3)
    cloud = Cloud(ctx=ctx, calls=calls)
    return cloud


@pytest.fixture
def cloud(inf2_aware_moto: None) -> Iterator[Cloud]:
    with mock_aws():
        yield make_cloud(DeployerSettings.model_validate(settings_document("realtime")))


@pytest.fixture
def async_cloud(inf2_aware_moto: None) -> Iterator[Cloud]:
    with mock_aws():
        yield make_cloud(DeployerSettings.model_validate(settings_document("async")))


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYER_SETTINGS", json.dumps(settings_document()))
    assert os.environ["DEPLOYER_SETTINGS"]
