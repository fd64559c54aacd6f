"""Serving constructs synthesized alone in a bare stack (no app, no nag gate)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from infra.config import BudgetConfig, RollbackAlarmsConfig
from infra.constructs.serving.cost_budget import CostBudget
from infra.constructs.serving.rollback_alarms import RollbackAlarms, rollback_alarm_names


def _stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))


def test_rollback_alarms_have_fixed_names_thresholds_and_the_ops_action() -> None:
    stack = _stack()
    topic = sns.Topic.from_topic_arn(stack, "Ops", "arn:aws:sns:eu-west-1:111111111111:ops")
    config = RollbackAlarmsConfig(model_latency_p99_ms=250, evaluation_minutes=3)
    alarms = RollbackAlarms(stack, "Rollback", endpoint_name="ep", variant_name="primary", config=config,
                            ops_topic=topic)
    assert alarms.alarm_names == list(rollback_alarm_names("ep").values())
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::CloudWatch::Alarm", 3)
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": "ep-model-latency", "MetricName": "ModelLatency", "ExtendedStatistic": "p99",
        "Threshold": 250_000, "EvaluationPeriods": 3, "DatapointsToAlarm": 3, "TreatMissingData": "notBreaching",
        "AlarmActions": ["arn:aws:sns:eu-west-1:111111111111:ops"],
    })
    template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "AlarmName": "ep-invocation-5xx", "MetricName": "Invocation5XXErrors", "Statistic": "Sum", "Period": 60,
        "Dimensions": Match.array_with([{"Name": "VariantName", "Value": "primary"}]),
    })


def test_budget_alerts_actual_percentages_and_the_forecast() -> None:
    stack = _stack()
    CostBudget(stack, "Budget", name="b", config=BudgetConfig(monthly_limit_usd=100, alert_at_percent=(50, 90)),
               emails=("a@example.com",), ops_topic_arn="arn:aws:sns:eu-west-1:111111111111:ops")
    (budget,) = Template.from_stack(stack).find_resources("AWS::Budgets::Budget").values()
    notices = budget["Properties"]["NotificationsWithSubscribers"]
    assert [(n["Notification"]["NotificationType"], n["Notification"]["Threshold"]) for n in notices] == [
        ("ACTUAL", 50), ("ACTUAL", 90), ("FORECASTED", 100)]
    assert notices[0]["Subscribers"] == [
        {"SubscriptionType": "SNS", "Address": "arn:aws:sns:eu-west-1:111111111111:ops"},
        {"SubscriptionType": "EMAIL", "Address": "a@example.com"},
    ]
    assert budget["Properties"]["Budget"]["TimeUnit"] == "MONTHLY"
