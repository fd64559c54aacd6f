"""Valid events as the producers send them: the lake's FeaturesReady and a retraining alarm."""

from __future__ import annotations

import hashlib
from typing import Any

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def features_ready(
    *, day: str = "2026-11-20", execution: str = "run-1", env: str = "dev", event_id: str | None = None
) -> dict[str, Any]:
    """The lake's FeaturesReady (LakeOrchestration's AnnounceFeaturesReady, with `environment`)."""
    return {
        "version": "0",
        "id": event_id or f"0f3c1a52-0000-4000-8000-{_digits(day, execution)}",
        "source": "telecom-ml.data-lake",
        "account": ACCOUNT,
        "time": f"{day}T06:00:00Z",
        "region": REGION,
        "resources": [],
        "detail-type": "FeaturesReady",
        "detail": {
            "features_uri": "s3://telecom-ml-dev-features-a1b2c3/features/",
            "features_table": "telecom_ml_dev.ibm_telco_churn_features",
            "raw_object": f"s3://telecom-ml-dev-raw-a1b2c3/subscribers/ingest_date={day}/subscribers.csv",
            "execution": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:LakeOrchestration1A2B3C:{execution}",
            "environment": env,
        },
    }


def drift_alarm(
    *, name: str = "telecom-ml-dev-retrain-tenure-drift", at: str = "2026-11-21T07:55:00.000+0000"
) -> dict[str, Any]:
    """CloudWatch's Alarm State Change event for a retraining alarm going to ALARM."""
    return {
        "version": "0",
        "id": f"c4c1c1c9-6542-e61b-6ef0-{_digits(name, at)}",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": "2026-11-21T07:55:10Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{name}"],
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {
            "alarmName": name,
            "state": {
                "value": "ALARM",
                "reason": "Threshold Crossed: 1 datapoint [0.31 (21/11/26 07:50:00)] was greater than 0.2.",
                "timestamp": at,
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-11-20T07:55:00.000+0000"},
            "configuration": {"metrics": []},
        },
    }


def _digits(*parts: str) -> str:
    """Twelve hex digits that depend only on `parts` (event ids must be stable between runs)."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]
