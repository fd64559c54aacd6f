"""Each decision rule under moto: what starts, what is skipped, and that every decision is audited."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from lambdas.start_training.decision import LockHeldByEarlierAttempt, Outcome
from lambdas.start_training.events import parse_trigger
from tests.unit.lambdas.start_training.conftest import Aws
from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready


def test_features_ready_starts_the_pipeline_with_the_contract_parameters(aws: Aws) -> None:
    decision = aws.service().handle(features_ready(day="2026-11-20", execution="run-7"), request_id="r1")

    assert decision.outcome is Outcome.STARTED and decision.daily_count == 1
    [execution] = aws.executions()
    assert execution["PipelineExecutionArn"] == decision.execution_arn
    assert aws.parameters(decision.execution_arn) == {
        "SnapshotDate": "2026-11-20",
        "FeaturesUri": "s3://telecom-ml-dev-features-a1b2c3/features/snapshot_date=2026-11-20/",
        "TriggerReason": "FeaturesReady: snapshot 2026-11-20 (lake execution run-7)",
    }
    assert "run-7" in execution["PipelineExecutionDescription"]
    lock = aws.item("lock", "pipeline")
    assert lock["state"] == "running" and lock["execution_arn"] == decision.execution_arn
    [record] = aws.audit()
    assert record["outcome"] == "started" and record["execution_arn"] == decision.execution_arn
    assert record["request_id"] == "r1" and record["environment"] == "dev" and int(record["expiration"]) > 0


def test_request_token_is_derived_from_the_event_and_fits_the_api() -> None:
    event = features_ready(execution="run-1")
    today = date(2026, 11, 21)
    first = parse_trigger(event, env_name="dev", today=today)
    again = parse_trigger({**event, "id": "another-delivery"}, env_name="dev", today=today)
    other = parse_trigger(features_ready(execution="run-2"), env_name="dev", today=today)
    assert first.request_token == again.request_token != other.request_token
    assert 32 <= len(first.request_token) <= 128


def test_a_running_execution_blocks_a_new_start_and_the_skip_is_recorded(aws: Aws) -> None:
    service = aws.service()
    started = service.handle(features_ready(execution="run-1"), request_id="r1")
    aws.clock.advance(hours=1)

    skipped = service.handle(features_ready(execution="run-2"), request_id="r2")

    assert skipped.outcome is Outcome.PIPELINE_RUNNING
    assert skipped.execution_arn == started.execution_arn and "Executing" in skipped.reason
    assert len(aws.executions()) == 1
    assert [r["outcome"] for r in aws.audit()] == ["started", "pipeline_running"]
    assert aws.audit()[1]["execution_arn"] == started.execution_arn


def test_a_finished_execution_frees_the_lock_for_the_next_trigger(aws: Aws) -> None:
    service = aws.service()
    service.handle(features_ready(execution="run-1"), request_id="r1")
    aws.finish_executions("Failed")
    aws.clock.advance(hours=1)

    decision = service.handle(features_ready(execution="run-2"), request_id="r2")

    assert decision.outcome is Outcome.STARTED and len(aws.executions()) == 2


def test_an_expired_hold_is_taken_over_but_a_still_running_execution_is_not_doubled(aws: Aws) -> None:
    service = aws.service(max_run=timedelta(hours=2))
    first = service.handle(features_ready(execution="run-1"), request_id="r1")
    aws.clock.advance(hours=3)  # past max_run, yet SageMaker still reports it Executing

    decision = service.handle(features_ready(execution="run-2"), request_id="r2")

    assert decision.outcome is Outcome.RUNNING_OUTSIDE_LOCK and decision.execution_arn == first.execution_arn
    assert len(aws.executions()) == 1
    assert aws.item("lock", "pipeline")["state"] == "free"


def test_a_manual_start_outside_the_trigger_is_respected(aws: Aws) -> None:
    aws.session.client("sagemaker").start_pipeline_execution(
        PipelineName="telecom-ml-dev-churn", ClientRequestToken="manual-start-by-an-operator-0000000001"
    )
    decision = aws.service().handle(features_ready(), request_id="r1")
    assert decision.outcome is Outcome.RUNNING_OUTSIDE_LOCK and len(aws.executions()) == 1


def test_cooldown_is_honoured_and_then_lifts(aws: Aws) -> None:
    service = aws.service(cooldown=timedelta(hours=6))
    service.handle(features_ready(execution="run-1"), request_id="r1")
    aws.finish_executions()
    aws.clock.advance(hours=5, minutes=59)

    held_back = service.handle(features_ready(execution="run-2"), request_id="r2")
    aws.clock.advance(minutes=2)
    allowed = service.handle(features_ready(execution="run-3"), request_id="r3")

    assert held_back.outcome is Outcome.COOLDOWN and "cooldown until 2026-11-21T14:00:00+00:00" in held_back.reason
    assert allowed.outcome is Outcome.STARTED
    assert [r["outcome"] for r in aws.audit()] == ["started", "cooldown", "started"]


def test_daily_cap_is_honoured_per_utc_day(aws: Aws) -> None:
    service = aws.service(daily_cap=2)
    outcomes = []
    for run in range(3):
        outcomes.append(service.handle(features_ready(execution=f"run-{run}"), request_id=f"r{run}").outcome)
        aws.finish_executions()
        aws.clock.advance(minutes=10)
    aws.clock.advance(hours=16)  # the next UTC day
    outcomes.append(service.handle(features_ready(day="2026-11-21", execution="run-9"), request_id="r9").outcome)

    assert outcomes == [Outcome.STARTED, Outcome.STARTED, Outcome.DAILY_CAP, Outcome.STARTED]
    assert aws.item("starts", "2026-11-21")["starts"] == "2"
    assert aws.item("starts", "2026-11-22")["starts"] == "1"
    assert len(aws.executions()) == 3


def test_an_older_snapshot_than_the_latest_seen_is_stale(aws: Aws) -> None:
    service = aws.service()
    service.handle(features_ready(day="2026-11-20", execution="run-1"), request_id="r1")
    aws.finish_executions()
    decision = service.handle(features_ready(day="2026-11-19", execution="run-0"), request_id="r2")
    assert decision.outcome is Outcome.STALE_SNAPSHOT and len(aws.executions()) == 1


def test_a_retraining_alarm_trains_on_the_latest_snapshot(aws: Aws) -> None:
    service = aws.service()
    no_features = service.handle(drift_alarm(at="2026-11-21T07:00:00.000+0000"), request_id="r0")
    service.handle(features_ready(day="2026-11-20", execution="run-1"), request_id="r1")
    aws.finish_executions()

    decision = service.handle(drift_alarm(), request_id="r2")

    assert no_features.outcome is Outcome.NO_FEATURES
    assert decision.outcome is Outcome.STARTED
    parameters = aws.parameters(decision.execution_arn)
    assert parameters["SnapshotDate"] == "2026-11-20"
    assert parameters["TriggerReason"].startswith("Alarm telecom-ml-dev-retrain-tenure-drift: Threshold Crossed")
    assert len(parameters["TriggerReason"]) <= 256


def test_the_same_event_twice_is_decided_once_and_the_replay_is_audited(aws: Aws) -> None:
    service = aws.service()
    first = service.handle(features_ready(), request_id="r1")
    aws.clock.advance(minutes=5)
    second = service.handle(features_ready(), request_id="r2")

    assert second.outcome is Outcome.DUPLICATE and second.replay_of == first.decided_at
    assert second.execution_arn == first.execution_arn and len(aws.executions()) == 1
    assert [r["outcome"] for r in aws.audit()] == ["started", "duplicate"]


class _Raises:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, **kwargs: Any) -> Any:
        raise self.error


def test_a_failed_start_frees_the_lock_gives_back_the_count_and_is_retried(aws: Aws) -> None:
    service = aws.service()
    sagemaker = service._decider._pipeline._client  # type: ignore[attr-defined]
    original = sagemaker.start_pipeline_execution
    sagemaker.start_pipeline_execution = _Raises(RuntimeError("ResourceLimitExceeded"))

    with pytest.raises(Exception, match="StartPipelineExecution failed: ResourceLimitExceeded"):
        service.handle(features_ready(), request_id="r1")
    assert aws.item("lock", "pipeline")["state"] == "free"
    assert aws.item("starts", "2026-11-21")["starts"] == "0"
    assert aws.audit()[-1]["outcome"] == "start_failed"

    sagemaker.start_pipeline_execution = original  # the asynchronous retry of the same event
    assert service.handle(features_ready(), request_id="r1-retry").outcome is Outcome.STARTED


def test_a_crashed_attempt_of_the_same_trigger_is_retried_once_its_hold_expires(aws: Aws) -> None:
    service = aws.service()
    trigger = parse_trigger(features_ready(), env_name="dev", today=aws.clock.now.date())
    store = service._decider._store
    store.try_acquire(holder=trigger.request_token, now=aws.clock.now, hold_until=aws.clock.now.replace(minute=3))

    with pytest.raises(LockHeldByEarlierAttempt):
        service.handle(features_ready(), request_id="retry-1")
    aws.clock.advance(minutes=4)
    assert service.handle(features_ready(), request_id="retry-2").outcome is Outcome.STARTED


def test_a_locked_execution_that_no_longer_exists_counts_as_finished(aws: Aws) -> None:
    """SageMaker answers ResourceNotFound for an execution of a deleted pipeline (moto answers otherwise)."""
    service = aws.service()
    service.handle(features_ready(execution="run-1"), request_id="r1")
    sagemaker = service._decider._pipeline._client  # type: ignore[attr-defined]
    sagemaker.describe_pipeline_execution = _Raises(
        sagemaker.exceptions.ResourceNotFound({"Error": {"Code": "ResourceNotFound", "Message": "gone"}}, "Describe")
    )
    aws.finish_executions()  # nothing else runs either
    aws.clock.advance(hours=1)

    assert service.handle(features_ready(execution="run-2"), request_id="r2").outcome is Outcome.STARTED
