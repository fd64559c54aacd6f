"""The retrain decision, taken by the real lambdas/start_training code on the events the cloud would send.

The drift alarms of the features the detector flagged (`telecom-ml-<env>-retrain-drift-<feature>`, the
prefix lambdas.start_training.events.retrain_alarm_prefix accepts) go to ALARM together; EventBridge
delivers one "CloudWatch Alarm State Change" event per alarm to start_training. Here the same
TrainingTriggerService decides on them, with
  settings   built from the environment config's ml.retraining exactly as the TrainingTrigger construct
             sets the function's environment (TriggerSettings.from_environ reads the same variables);
  store      lambdas.start_training.memory_store (the DynamoDB store's rules, in memory);
  pipeline   LocalPipeline: records each start instead of calling StartPipelineExecution;
  clock      a simulated one, so that a week of decisions takes no time.
The lake's FeaturesReady of the run's snapshot comes first (it started the run that trained the champion,
which has finished by the time the alarms fire), so the store knows the features an alarm trains on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from infra.config import RetrainingConfig
from lambdas.start_training.decision import Decision
from lambdas.start_training.events import (
    ALARM_DETAIL_TYPE,
    ALARM_SOURCE,
    FEATURES_READY_DETAIL_TYPE,
    FEATURES_READY_SOURCE,
    retrain_alarm_prefix,
)
from lambdas.start_training.memory_store import InMemoryTriggerStore
from lambdas.start_training.pipeline import StartRequest
from lambdas.start_training.service import TrainingTriggerService
from lambdas.start_training.settings import TriggerSettings

LOCAL_ACCOUNT = "000000000000"
LOCAL_REGION = "local"
START_LOCK_SECONDS = 3 * 60  # as infra/constructs/ml/training_trigger.py sets START_LOCK_SECONDS
LAKE_BUCKET = "twin-local-lake"


def trigger_environ(env_name: str, config: RetrainingConfig) -> dict[str, str]:
    """The function's environment variables, as the TrainingTrigger construct writes them."""
    hours = 3600
    return {
        "ENVIRONMENT_NAME": env_name,
        "PIPELINE_NAME": f"telecom-ml-{env_name}-churn",
        "TABLE_NAME": f"telecom-ml-{env_name}-twin-trigger",
        "COOLDOWN_SECONDS": str(config.cooldown_hours * hours),
        "DAILY_CAP": str(config.daily_cap),
        "MAX_RUN_SECONDS": str(config.max_run_hours * hours),
        "START_LOCK_SECONDS": str(START_LOCK_SECONDS),
        "DUPLICATE_WINDOW_SECONDS": str(config.duplicate_window_hours * hours),
        "AUDIT_RETENTION_DAYS": str(config.audit_retention_days),
    }


@dataclass
class LocalPipeline:
    """The pipeline as start_training sees it (lambdas.start_training.pipeline.Pipeline), in memory."""

    name: str
    starts: list[StartRequest] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)

    def start(self, request: StartRequest) -> str:
        self.starts.append(request)
        arn = f"arn:aws:sagemaker:{LOCAL_REGION}:{LOCAL_ACCOUNT}:pipeline/{self.name}/execution/twin-{len(self.starts)}"
        self.statuses[arn] = "Executing"
        return arn

    def status(self, execution_arn: str) -> str:
        return self.statuses.get(execution_arn, "NotFound")

    def running_executions(self, *, created_after: datetime) -> list[str]:
        return [arn for arn, status in self.statuses.items() if status == "Executing"]

    def finish(self, execution_arn: str, status: str = "Succeeded") -> None:
        self.statuses[execution_arn] = status


def features_ready_event(env_name: str, snapshot: date, at: datetime) -> dict[str, Any]:
    """The lake's FeaturesReady for `snapshot` (the shape etl's state machine puts on the bus)."""
    execution = f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:execution:telecom-ml-{env_name}-lake:twin-{snapshot}"
    return _envelope(
        f"features-ready-{snapshot}",
        FEATURES_READY_SOURCE,
        FEATURES_READY_DETAIL_TYPE,
        at,
        [],
        {
            "features_uri": f"s3://{LAKE_BUCKET}/features/churn_features/",
            "features_table": "telecom_ml_curated.churn_features",
            "raw_object": f"s3://{LAKE_BUCKET}/raw/subscribers/ingest_date={snapshot}/snapshot.csv",
            "execution": execution,
            "environment": env_name,
        },
    )


def alarm_name(env_name: str, feature: str) -> str:
    return f"{retrain_alarm_prefix(env_name)}drift-{feature}"


def alarm_event(env_name: str, feature: str, distance: float, threshold: float, at: datetime) -> dict[str, Any]:
    """CloudWatch's "Alarm State Change" for the drift alarm on `feature` going to ALARM."""
    name = alarm_name(env_name, feature)
    reason = (
        f"Threshold Crossed: 1 datapoint [{distance:.4f}] was greater than the threshold ({threshold}) "
        f"on feature_baseline_drift_{feature}"
    )
    return _envelope(
        f"alarm-{feature}-{at:%Y%m%dT%H%M%S}",
        ALARM_SOURCE,
        ALARM_DETAIL_TYPE,
        at,
        [f"arn:aws:cloudwatch:{LOCAL_REGION}:{LOCAL_ACCOUNT}:alarm:{name}"],
        {"alarmName": name, "state": {"value": "ALARM", "reason": reason, "timestamp": _iso(at)}},
    )


def _envelope(
    event_id: str, source: str, detail_type: str, at: datetime, resources: list[str], detail: dict[str, Any]
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "account": LOCAL_ACCOUNT,
        "time": _iso(at),
        "region": LOCAL_REGION,
        "resources": resources,
        "detail": detail,
    }


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimulatedClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class DriftAlarm:
    feature: str
    distance: float
    threshold: float


def decide_retraining(
    env_name: str,
    config: RetrainingConfig,
    snapshot: date,
    alarms: list[DriftAlarm],
    alarms_at: datetime,
    spacing: timedelta = timedelta(seconds=1),
) -> dict[str, Any]:
    """FeaturesReady at the snapshot (its run finished), then one alarm event per drifted feature, `spacing`
    apart from `alarms_at`: each decided by TrainingTriggerService. Returns what summary.json keeps."""
    settings = TriggerSettings.from_environ(trigger_environ(env_name, config))
    store = InMemoryTriggerStore()
    pipeline = LocalPipeline(settings.pipeline_name)
    clock = SimulatedClock(datetime.combine(snapshot, datetime.min.time(), UTC) + timedelta(hours=1))
    service = TrainingTriggerService(
        settings=settings, store=store, pipeline=pipeline, clock=clock, log=logging.getLogger("twin.start_training")
    )
    first = service.handle(features_ready_event(env_name, snapshot, clock.now), request_id="twin-features-ready")
    if first.execution_arn:
        pipeline.finish(first.execution_arn)  # the run that trained the champion
    decisions = []
    for k, alarm in enumerate(alarms):
        clock.now = alarms_at + k * spacing
        event = alarm_event(env_name, alarm.feature, alarm.distance, alarm.threshold, clock.now)
        decision = service.handle(event, request_id=f"twin-alarm-{k + 1}")
        decisions.append({"alarm": alarm_name(env_name, alarm.feature), "feature": alarm.feature, **_shown(decision)})
    started = [d for d in decisions if d["outcome"] == "started"]
    return {
        "settings": {
            "cooldown_hours": config.cooldown_hours,
            "daily_cap": config.daily_cap,
            "max_run_hours": config.max_run_hours,
        },
        "features_ready": _shown(first),
        "alarms": decisions,
        "retrain": bool(started),
        "started_by": started[0]["alarm"] if started else None,
        "reason": _summary_reason(decisions),
        "pipeline_starts": [r.reason for r in pipeline.starts],
        "audit_records": len(store.audit),
    }


def _shown(decision: Decision) -> dict[str, Any]:
    return {
        "outcome": decision.outcome.value,
        "reason": decision.reason,
        "decided_at": decision.decided_at,
        "execution_arn": decision.execution_arn,
    }


def _summary_reason(decisions: list[dict[str, Any]]) -> str:
    if not decisions:
        return "no drift alarm fired: nothing to decide"
    counts: dict[str, int] = {}
    for d in decisions:
        counts[d["outcome"]] = counts.get(d["outcome"], 0) + 1
    parts = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    started = next((d for d in decisions if d["outcome"] == "started"), None)
    head = f"{started['alarm']} started the pipeline" if started else "no alarm started the pipeline"
    return f"{len(decisions)} alarm(s): {parts}; {head}"


def outcomes(result: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(alarm, outcome, reason) per alarm, in the order they were decided."""
    for d in result["alarms"]:
        yield d["alarm"], d["outcome"], d["reason"]
