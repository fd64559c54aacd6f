"""Application Auto Scaling of the endpoint's variant, registered once it is in service.

- realtime: target tracking on SageMakerVariantInvocationsPerInstance, min/max from config;
- async: minimum 0, target tracking on ApproximateBacklogSizePerInstance, and a step policy that a
  HasBacklogWithoutCapacity alarm (owned by the deployer: its action is the policy's ARN) triggers to
  wake the variant from zero, because target tracking alone cannot scale out from no instances.
The scalable target is deregistered before an update that changes the instance type (SageMaker rejects
that update on an auto-scaled variant) and registered again after it.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .settings import DeployerSettings

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TARGET_POLICY = "target-tracking"
WAKE_POLICY = "wake-from-zero"
TAG_KEY = "telecom-ml:endpoint"


def target(settings: DeployerSettings) -> dict[str, Any]:
    return {
        "ServiceNamespace": NAMESPACE,
        "ResourceId": settings.scaling_resource_id,
        "ScalableDimension": DIMENSION,
    }


def register_scalable_target_request(settings: DeployerSettings) -> dict[str, Any]:
    scaling = settings.scaling
    return {
        **target(settings),
        "MinCapacity": scaling.min_instances,
        "MaxCapacity": scaling.max_instances,
        "Tags": {TAG_KEY: settings.endpoint_name},
    }


def target_tracking_request(settings: DeployerSettings) -> dict[str, Any]:
    scaling = settings.scaling
    configuration: dict[str, Any] = {
        "TargetValue": scaling.target_value,
        "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
        "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
    }
    if settings.mode == "realtime":
        configuration["PredefinedMetricSpecification"] = {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
        }
    else:
        configuration["CustomizedMetricSpecification"] = {
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Namespace": "AWS/SageMaker",
            "Dimensions": [{"Name": "EndpointName", "Value": settings.endpoint_name}],
            "Statistic": "Average",
        }
    return {
        **target(settings),
        "PolicyName": f"{settings.endpoint_name}-{TARGET_POLICY}",
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": configuration,
    }


def wake_policy_request(settings: DeployerSettings) -> dict[str, Any]:
    return {
        **target(settings),
        "PolicyName": f"{settings.endpoint_name}-{WAKE_POLICY}",
        "PolicyType": "StepScaling",
        "StepScalingPolicyConfiguration": {
            "AdjustmentType": "ChangeInCapacity",
            "MetricAggregationType": "Maximum",
            "Cooldown": settings.scaling.scale_out_cooldown_seconds,
            "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
        },
    }


def wake_alarm_request(settings: DeployerSettings, policy_arn: str) -> dict[str, Any]:
    name = settings.scaling.wake_alarm_name
    if name is None:
        raise ValueError("async scaling needs scaling.wake_alarm_name")
    return {
        "AlarmName": name,
        "AlarmDescription": f"Requests queue on {settings.endpoint_name} while it has no instance: scale out",
        "Namespace": "AWS/SageMaker",
        "MetricName": "HasBacklogWithoutCapacity",
        "Dimensions": [{"Name": "EndpointName", "Value": settings.endpoint_name}],
        "Statistic": "Average",
        "Period": 60,
        "EvaluationPeriods": 2,
        "DatapointsToAlarm": 2,
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "missing",
        "AlarmActions": [policy_arn],
    }


def register(autoscaling: Any, cloudwatch: Any, settings: DeployerSettings) -> list[str]:
    """Register (or refresh) the scalable target and its policies; returns the policy names."""
    autoscaling.register_scalable_target(**register_scalable_target_request(settings))
    tracking = target_tracking_request(settings)
    autoscaling.put_scaling_policy(**tracking)
    names = [tracking["PolicyName"]]
    if settings.mode == "async":
        wake = wake_policy_request(settings)
        policy_arn = autoscaling.put_scaling_policy(**wake)["PolicyARN"]
        cloudwatch.put_metric_alarm(**wake_alarm_request(settings, policy_arn))
        names.append(wake["PolicyName"])
    return names


def deregister(autoscaling: Any, cloudwatch: Any, settings: DeployerSettings) -> bool:
    """Remove the scalable target (its policies and their alarms go with it) and the wake alarm."""
    if settings.scaling.wake_alarm_name:
        cloudwatch.delete_alarms(AlarmNames=[settings.scaling.wake_alarm_name])
    try:
        autoscaling.deregister_scalable_target(**target(settings))
    except ClientError as error:
        if _no_target(error):
            return False
        raise
    return True


def _no_target(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code")
    message = error.response.get("Error", {}).get("Message", "")
    return code == "ObjectNotFoundException" or (code == "ValidationException" and "No scalable target" in message)


def is_registered(autoscaling: Any, settings: DeployerSettings) -> bool:
    found = autoscaling.describe_scalable_targets(
        ServiceNamespace=NAMESPACE, ResourceIds=[settings.scaling_resource_id], ScalableDimension=DIMENSION
    )
    return bool(found.get("ScalableTargets"))
