"""Autoscaling registered after InService: realtime target tracking; async from zero with a wake-up alarm."""

from __future__ import annotations

from tests.unit.lambdas.deployer.api_model import problems
from tests.unit.lambdas.deployer.conftest import ENDPOINT, Cloud, approval_event
from tests.unit.lambdas.deployer.flow import deploy, receive

TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceId": f"endpoint/{ENDPOINT}/variant/primary",
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


def test_realtime_tracks_invocations_per_instance_within_config_bounds(cloud: Cloud) -> None:
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    [register] = cloud.requests("RegisterScalableTarget")
    assert register == {**TARGET, "MinCapacity": 1, "MaxCapacity": 3, "Tags": {"telecom-ml:endpoint": ENDPOINT}}
    [policy] = cloud.requests("PutScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 1000.0,
        "ScaleInCooldown": 600,
        "ScaleOutCooldown": 60,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
    }
    ops = cloud.operations()
    assert ops.index("RegisterScalableTarget") > ops.index("CreateEndpoint")


def test_async_endpoint_output_is_encrypted_and_notifies_both_topics(async_cloud: Cloud) -> None:
    cloud = async_cloud
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    [config] = cloud.requests("CreateEndpointConfig")
    assert problems("sagemaker", "CreateEndpointConfig", config) == []
    settings = cloud.ctx.settings.async_inference
    assert settings is not None
    assert config["AsyncInferenceConfig"] == {
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
        "OutputConfig": {
            "KmsKeyId": settings.kms_key_arn,
            "S3OutputPath": f"s3://ml-artifacts/async-output/{ENDPOINT}",
            "S3FailurePath": f"s3://ml-artifacts/async-failures/{ENDPOINT}",
            "NotificationConfig": {"SuccessTopic": settings.success_topic_arn, "ErrorTopic": settings.error_topic_arn},
        },
    }


def test_async_scales_from_zero_on_backlog_and_wakes_on_backlog_without_capacity(async_cloud: Cloud) -> None:
    cloud = async_cloud
    deploy(cloud, receive(cloud, approval_event(cloud.register_package())))
    [register] = cloud.requests("RegisterScalableTarget")
    assert register["MinCapacity"] == 0 and register["MaxCapacity"] == 1
    tracking, wake = cloud.requests("PutScalingPolicy")
    assert tracking["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": ENDPOINT}],
        "Statistic": "Average",
    }
    assert wake["PolicyType"] == "StepScaling"
    assert wake["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}
    ]
    [alarm] = cloud.requests("PutMetricAlarm")
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["AlarmName"] == f"{ENDPOINT}-has-backlog-without-capacity"
    policy_arn = alarm["AlarmActions"][0]
    assert ":scalingPolicy:" in policy_arn and policy_arn.endswith(f"policyName/{wake['PolicyName']}")
    for operation in ("RegisterScalableTarget", "PutScalingPolicy", "PutMetricAlarm"):
        service = "cloudwatch" if operation == "PutMetricAlarm" else "application-autoscaling"
        for request in cloud.requests(operation):
            assert problems(service, operation, request) == [], request
    described = cloud.ctx.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"]) for t in described] == [(TARGET["ResourceId"], 0)]
