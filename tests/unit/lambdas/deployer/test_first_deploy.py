"""First approval: model, endpoint configuration and endpoint created with the configured, validated arguments."""

from __future__ import annotations

import pytest

from lambdas.deployer import steps
from tests.unit.lambdas.deployer.api_model import enum_of, problems
from tests.unit.lambdas.deployer.conftest import ENDPOINT, NEURON_IMAGE, Cloud, approval_event
from tests.unit.lambdas.deployer.flow import deploy, receive


def test_ml_inf2_xlarge_is_a_valid_production_variant_instance_type() -> None:
    assert "ml.inf2.xlarge" in enum_of("sagemaker", "ProductionVariantInstanceType")


def test_first_approval_creates_the_endpoint(cloud: Cloud) -> None:
    arn = cloud.register_package()
    state = receive(cloud, approval_event(arn))
    assert state.outcome == "deploy"
    [done] = deploy(cloud, state)
    assert done.outcome == "deployed"
    assert cloud.ctx.ledger.status(arn) == "deployed"
    assert cloud.ctx.ledger.lock().get("holder") is None
    assert cloud.requests("UpdateEndpoint") == []
    [create] = cloud.requests("CreateEndpoint")
    assert create["EndpointName"] == ENDPOINT and create["EndpointConfigName"] == done.config_name
    assert cloud.endpoint().endpoint_status == "InService"


def test_every_request_is_valid_against_the_service_models(cloud: Cloud) -> None:
    arn = cloud.register_package()
    deploy(cloud, receive(cloud, approval_event(arn)))
    service_of = {"sagemaker": "sagemaker", "application-autoscaling": "application-autoscaling",
                  "cloudwatch": "cloudwatch"}
    sent = [(service_of[s], op, p) for s, op, p in cloud.calls]
    assert {op for _, op, _ in sent} >= {"CreateModel", "CreateEndpointConfig", "CreateEndpoint",
                                         "RegisterScalableTarget", "PutScalingPolicy"}
    for service, operation, params in sent:
        assert problems(service, operation, params) == [], (operation, params)


def test_model_takes_image_and_data_from_the_package(cloud: Cloud) -> None:
    arn = cloud.register_package()
    deploy(cloud, receive(cloud, approval_event(arn)))
    [model] = cloud.requests("CreateModel")
    assert model["PrimaryContainer"] == {
        "Image": NEURON_IMAGE,
        "ModelDataUrl": "s3://ml-artifacts/models/neuron/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    assert model["ExecutionRoleArn"] == cloud.ctx.settings.execution_role_arn
    assert model["EnableNetworkIsolation"] is True
    assert model["VpcConfig"] == {"SecurityGroupIds": ["sg-0endpoint"], "Subnets": ["subnet-0a", "subnet-0b"]}
    assert model["ModelName"].startswith(f"{ENDPOINT}-m1-")


def test_endpoint_config_from_config_with_kms_capture_and_neuron_timeouts(cloud: Cloud) -> None:
    arn = cloud.register_package()
    deploy(cloud, receive(cloud, approval_event(arn)))
    [config] = cloud.requests("CreateEndpointConfig")
    settings = cloud.ctx.settings
    [variant] = config["ProductionVariants"]
    assert variant == {
        "VariantName": "primary",
        "ModelName": cloud.requests("CreateModel")[0]["ModelName"],
        "InstanceType": "ml.inf2.xlarge",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": 1.0,
        "ContainerStartupHealthCheckTimeoutInSeconds": 900,
        "ModelDataDownloadTimeoutInSeconds": 1200,
    }
    assert config["KmsKeyId"] == settings.volume_kms_key_arn  # inf2 is EBS-backed: the ML key encrypts volumes
    assert config["DataCaptureConfig"] == {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "s3://ml-artifacts/data-capture",
        "KmsKeyId": settings.capture.kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]},
    }
    assert "AsyncInferenceConfig" not in config
    assert config["EndpointConfigName"].startswith(f"{ENDPOINT}-c1-")


def test_names_are_content_derived_and_stable_for_a_retried_step(cloud: Cloud) -> None:
    arn = cloud.register_package()
    state = receive(cloud, approval_event(arn))
    first = steps.prepare(state, cloud.ctx)
    again = steps.prepare(state, cloud.ctx)  # Step Functions retried the task
    assert (first.model_name, first.config_name) == (again.model_name, again.config_name)
    assert len(cloud.requests("CreateModel")) == 1 and len(cloud.requests("CreateEndpointConfig")) == 1
    assert cloud.ctx.ledger.resources() == {"models": {first.model_name}, "endpoint_configs": {first.config_name}}


def test_cpu_instance_type_serves_the_packages_cpu_specification(inf2_aware_moto: None) -> None:
    from moto import mock_aws

    from lambdas.deployer.settings import DeployerSettings
    from tests.unit.lambdas.deployer.conftest import CPU_IMAGE, make_cloud, settings_document

    with mock_aws():
        cloud = make_cloud(DeployerSettings.model_validate(settings_document(instance_type="ml.m5.xlarge")))
        arn = cloud.register_package()
        [done] = deploy(cloud, receive(cloud, approval_event(arn)))
        assert done.outcome == "deployed"
        assert cloud.requests("CreateModel")[0]["PrimaryContainer"]["Image"] == CPU_IMAGE
        assert cloud.requests("CreateEndpointConfig")[0]["ProductionVariants"][0]["InstanceType"] == "ml.m5.xlarge"


@pytest.mark.parametrize("instance_type,kms", [("ml.inf2.xlarge", True), ("ml.m5.xlarge", True),
                                               ("ml.g5.xlarge", False), ("ml.c5d.2xlarge", False)])
def test_volume_key_only_where_the_instance_has_no_instance_storage(instance_type: str, kms: bool) -> None:
    from lambdas.deployer.api_requests import volume_kms_applies

    assert volume_kms_applies(instance_type) is kms
