"""CloudWatch metrics of a drift run, under Model Monitor's names so alarms do not depend on the engine.

Data quality (namespace aws/sagemaker/Endpoints/data-metrics by default):
  feature_baseline_drift_<feature>   the distance compared with comparison_threshold (Model Monitor's name)
  feature_psi_<feature>              population stability index of the feature
  prediction_drift_psi               PSI of the served probabilities (when baseline predictions are given)
Model quality (namespace aws/sagemaker/Endpoints/model-metrics): auc, top_decile_lift, calibration_error.
Dimensions: Endpoint=<endpoint name>, MonitoringSchedule=<schedule name>. One datum per metric, stamped
with the window's end; PutMetricData takes at most MAX_DATUMS_PER_CALL datums per request.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

DATA_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
MAX_DATUMS_PER_CALL = 1000
MODEL_QUALITY_METRICS = ("auc", "top_decile_lift", "calibration_error")


def datum(name: str, value: float, dimensions: dict[str, str], timestamp: datetime) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Value": float(value),
        "Unit": "None",
        "Timestamp": timestamp,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
    }


def data_quality_datums(
    features: dict[str, dict[str, Any]], prediction_psi: float | None, dimensions: dict[str, str], timestamp: datetime
) -> list[dict[str, Any]]:
    out = []
    for name, result in features.items():
        if _finite(result.get("distance")):
            out.append(datum(f"feature_baseline_drift_{name}", result["distance"], dimensions, timestamp))
        if _finite(result.get("psi")):
            out.append(datum(f"feature_psi_{name}", result["psi"], dimensions, timestamp))
    if _finite(prediction_psi):
        out.append(datum("prediction_drift_psi", float(prediction_psi), dimensions, timestamp))  # type: ignore[arg-type]
    return out


def model_quality_datums(
    metrics: dict[str, Any], dimensions: dict[str, str], timestamp: datetime
) -> list[dict[str, Any]]:
    return [datum(n, metrics[n], dimensions, timestamp) for n in MODEL_QUALITY_METRICS if _finite(metrics.get(n))]


def publish(client: Any, namespace: str, datums: list[dict[str, Any]]) -> int:
    """PutMetricData in batches; returns the number of calls made."""
    calls = 0
    for i in range(0, len(datums), MAX_DATUMS_PER_CALL):
        client.put_metric_data(Namespace=namespace, MetricData=datums[i : i + MAX_DATUMS_PER_CALL])
        calls += 1
    return calls


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
