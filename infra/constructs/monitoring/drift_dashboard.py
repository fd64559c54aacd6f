"""CloudWatch dashboard of the monitoring metrics and the retraining alarms, whichever engine publishes.

One `AWS::CloudWatch::Dashboard` whose body is built here as JSON: a graph per metric family with one line per
feature and the alarm threshold drawn on it, model quality, and the state of every retraining alarm. Built as
one L1 resource on purpose: per-metric L2 or cdk-monitoring-constructs objects would cost dozens of jsii round
trips at synth for the same dashboard (the all-environments synth is over its time budget).
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra.constructs.monitoring.retrain_alarms import DATA_NAMESPACE, MODEL_NAMESPACE

WIDTH, HEIGHT = 12, 6


def _graph(
    title: str, region: str, period: int, metrics: list[list[Any]], threshold: float | None, label: str
) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "stat": "Maximum",
        "period": period,
        "metrics": metrics,
    }
    if threshold is not None:
        properties["annotations"] = {"horizontal": [{"label": label, "value": threshold}]}
    return {"type": "metric", "width": WIDTH, "height": HEIGHT, "properties": properties}


def dashboard_body(
    *,
    region: str,
    endpoint_name: str,
    data_schedule: str,
    model_schedule: str,
    features: tuple[str, ...],
    period_hours: int,
    drift_distance: float,
    feature_psi: float,
    prediction_psi: float,
    min_auc: float | None,
    alarm_arns: list[str],
) -> str:
    """The dashboard's JSON body (CloudWatch dashboard body structure)."""
    period = period_hours * 3600

    def data(metric: str) -> list[Any]:
        return [DATA_NAMESPACE, metric, "Endpoint", endpoint_name, "MonitoringSchedule", data_schedule]

    def model(metric: str) -> list[Any]:
        return [MODEL_NAMESPACE, metric, "Endpoint", endpoint_name, "MonitoringSchedule", model_schedule]

    widgets = [
        {
            "type": "text",
            "width": 2 * WIDTH,
            "height": 2,
            "properties": {
                "markdown": (
                    f"## {endpoint_name}: drift and model quality\n"
                    f"One point per monitoring run (period {period_hours} h). "
                    "A retraining alarm in ALARM starts training through start_training; runbook: docs/monitoring.md."
                )
            },
        },
        _graph(
            "Distance from the baseline, per feature",
            region,
            period,
            [data(f"feature_baseline_drift_{f}") for f in features],
            drift_distance,
            "drift threshold",
        ),
        _graph(
            "Population stability index, per feature",
            region,
            period,
            [data(f"feature_psi_{f}") for f in features],
            feature_psi,
            "PSI threshold",
        ),
        _graph(
            "Prediction drift (PSI of served probabilities)",
            region,
            period,
            [data("prediction_drift_psi")],
            prediction_psi,
            "threshold",
        ),
    ]
    if min_auc is not None:  # with ground truth only
        widgets.append(
            _graph(
                "Model quality on labelled captures",
                region,
                period,
                [model(m) for m in ("auc", "top_decile_lift", "calibration_error")],
                min_auc,
                "AUC floor",
            )
        )
    widgets += [
        {
            "type": "alarm",
            "width": 2 * WIDTH,
            "height": HEIGHT,
            "properties": {
                "title": "Retraining alarms",
                "alarms": sorted(alarm_arns),
                "sortBy": "stateUpdatedTimestamp",
            },
        },
    ]
    return json.dumps({"widgets": widgets}, separators=(",", ":"), sort_keys=True)


class DriftDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, dashboard_name: str, body: str) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.CfnDashboard(self, "Dashboard", dashboard_name=dashboard_name, dashboard_body=body)
        self.dashboard_name = dashboard_name


def alarm_arns(stack: cdk.Stack, alarm_names: list[str]) -> list[str]:
    """Literal ARNs, so the body stays one JSON string: every supported region is in the `aws` partition."""
    prefix = f"arn:aws:cloudwatch:{stack.region}:{stack.account}:alarm:"
    return [prefix + name for name in alarm_names]
