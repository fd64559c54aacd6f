"""Retraining alarms on the monitoring metrics (Model Monitor's metric names), the same whichever engine publishes them.

Each alarm is named `telecom-ml-<env>-retrain-...` (TrainingTrigger.retrain_alarm_prefix): when one goes to
ALARM, EventBridge hands the state change to start_training (its lock, cooldown, daily cap and audit decide)
and the alarm itself notifies the ops topic. One period per monitoring run (period = the window); a run that
published nothing (no captured data, no baseline yet) is missing data, which never breaches.

    retrain-drift-<feature>     feature_baseline_drift_<feature> > thresholds.drift_distance   (both engines)
    retrain-psi-<feature>       feature_psi_<feature> > thresholds.feature_psi                 (drift job)
    retrain-prediction-drift    prediction_drift_psi > thresholds.prediction_psi               (drift job)
    retrain-auc                 auc < the AUC floor, with ground truth only                    (both engines)
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
ABOVE = "GreaterThanThreshold"
BELOW = "LessThanThreshold"


@dataclass(frozen=True)
class AlarmSpec:
    """One retraining alarm: its name suffix, metric, comparison and threshold."""

    suffix: str
    namespace: str
    metric_name: str
    schedule: str  # the MonitoringSchedule dimension
    comparison: str  # CloudFormation's ComparisonOperator
    threshold: float
    description: str


def alarm_specs(
    *,
    features: tuple[str, ...],
    data_schedule: str,
    model_schedule: str,
    drift_distance: float,
    feature_psi: float,
    prediction_psi: float,
    min_auc: float | None,
) -> list[AlarmSpec]:
    """Every retraining alarm of one environment; `min_auc` None = no ground truth, no quality alarm."""
    specs = []
    for feature in features:
        specs.append(
            AlarmSpec(
                f"drift-{feature}",
                DATA_NAMESPACE,
                f"feature_baseline_drift_{feature}",
                data_schedule,
                ABOVE,
                drift_distance,
                f"{feature}: distance from the baseline distribution above {drift_distance}",
            )
        )
        specs.append(
            AlarmSpec(
                f"psi-{feature}",
                DATA_NAMESPACE,
                f"feature_psi_{feature}",
                data_schedule,
                ABOVE,
                feature_psi,
                f"{feature}: population stability index above {feature_psi}",
            )
        )
    specs.append(
        AlarmSpec(
            "prediction-drift",
            DATA_NAMESPACE,
            "prediction_drift_psi",
            data_schedule,
            ABOVE,
            prediction_psi,
            f"served churn probabilities: PSI against the baseline above {prediction_psi}",
        )
    )
    if min_auc is not None:
        specs.append(
            AlarmSpec(
                "auc",
                MODEL_NAMESPACE,
                "auc",
                model_schedule,
                BELOW,
                min_auc,
                f"ROC-AUC on labelled captures below {min_auc}",
            )
        )
    return specs


class RetrainAlarms(Construct):
    """One CloudWatch alarm per spec, as plain L1 resources: dozens per environment, and each L2 alarm would
    cost several more jsii round trips at synth (metric, action objects) for the same template."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        endpoint_name: str,
        specs: list[AlarmSpec],
        period_hours: int,
        evaluation_periods: int,
        ops_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.CfnAlarm] = {}
        period = int(cdk.Duration.hours(period_hours).to_seconds())
        for spec in specs:
            name = f"{name_prefix}{spec.suffix}"
            self.alarms[name] = cloudwatch.CfnAlarm(
                self,
                spec.suffix,
                # Named: start_training accepts only alarms with this environment's retraining prefix.
                alarm_name=name,
                alarm_description=f"{spec.description}; starts retraining (runbook: docs/monitoring.md)",
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=[
                    cloudwatch.CfnAlarm.DimensionProperty(name="Endpoint", value=endpoint_name),
                    cloudwatch.CfnAlarm.DimensionProperty(name="MonitoringSchedule", value=spec.schedule),
                ],
                statistic="Maximum" if spec.comparison == ABOVE else "Minimum",
                period=period,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                evaluation_periods=evaluation_periods,
                treat_missing_data="notBreaching",
                alarm_actions=[ops_topic.topic_arn],
            )

    @property
    def alarm_names(self) -> list[str]:
        return sorted(self.alarms)
