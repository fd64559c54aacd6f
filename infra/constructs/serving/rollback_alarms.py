"""The alarms that roll a canary back, in the template before any endpoint exists.

SageMaker's AutoRollbackConfiguration names alarms; the deployer passes these names in every
UpdateEndpoint. They watch the fixed endpoint and variant names (the endpoint is created later, at run
time), so they exist, with their actions, from the first deploy of the stack. Each also alerts the ops
topic: a canary that trips them is rolled back and someone is told.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import RollbackAlarmsConfig

NAMESPACE = "AWS/SageMaker"
MINUTE = cdk.Duration.minutes(1)


def rollback_alarm_names(endpoint_name: str) -> dict[str, str]:
    return {
        "Invocation5xx": f"{endpoint_name}-invocation-5xx",
        "ModelLatency": f"{endpoint_name}-model-latency",
        "ModelErrors": f"{endpoint_name}-model-errors",
    }


class RollbackAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        config: RollbackAlarmsConfig,
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}
        names = rollback_alarm_names(endpoint_name)

        def metric(name: str, statistic: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=MINUTE
            )

        # (construct id, metric, threshold, what it means)
        specs = [
            ("Invocation5xx", metric("Invocation5XXErrors", "Sum"), config.max_5xx_per_minute,
             "invocations answered with a 5xx per minute"),
            ("ModelLatency", metric("ModelLatency", "p99"), config.model_latency_p99_ms * 1000,
             "p99 model latency in microseconds"),
            ("ModelErrors", metric("InvocationModelErrors", "Sum"), config.max_model_errors_per_minute,
             "model errors per minute"),
        ]
        self.alarms: list[cloudwatch.Alarm] = []
        for construct_id_, alarm_metric, threshold, meaning in specs:
            alarm = cloudwatch.Alarm(
                self,
                construct_id_,
                alarm_name=names[construct_id_],
                alarm_description=f"{endpoint_name}/{variant_name}: {meaning} at or above {threshold}; "
                "rolls back a canary deployment (AutoRollbackConfiguration)",
                metric=alarm_metric,
                threshold=threshold,
                evaluation_periods=config.evaluation_minutes,
                datapoints_to_alarm=config.evaluation_minutes,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(cw_actions.SnsAction(ops_topic))
            self.alarms.append(alarm)
        self.alarm_names = [names[spec[0]] for spec in specs]
