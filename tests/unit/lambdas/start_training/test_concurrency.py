"""Triggers released together on real threads (one service, i.e. one Lambda container, per thread):
exactly one StartPipelineExecution per round, every other trigger skipped with its reason on record."""

from __future__ import annotations

from collections import Counter

import pytest

from lambdas.start_training.decision import Decision
from lambdas.start_training.dynamodb_store import DynamoDBTriggerStore
from lambdas.start_training.store import LockAcquired
from tests.unit.lambdas.start_training.conftest import Aws, handle_together
from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready

ROUNDS = 3
TRIGGERS = 10


def _outcomes(results: list[Decision | BaseException]) -> Counter[str]:
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    return Counter(r.outcome.value for r in results if isinstance(r, Decision))


def test_ten_identical_triggers_start_one_execution(aws: Aws) -> None:
    for round_ in range(ROUNDS):
        aws.finish_executions()
        aws.clock.advance(minutes=30)
        event = features_ready(execution=f"round-{round_}")
        services = [aws.service() for _ in range(TRIGGERS)]

        results = handle_together(services, [event] * TRIGGERS, f"round-{round_}")

        outcomes = _outcomes(results)
        assert outcomes["started"] == 1, outcomes
        assert outcomes["duplicate"] + outcomes["duplicate_in_flight"] == TRIGGERS - 1, outcomes
        assert len(aws.executions()) == round_ + 1
    assert len(aws.audit()) == ROUNDS * TRIGGERS


def test_ten_distinct_triggers_start_one_execution(aws: Aws) -> None:
    for round_ in range(ROUNDS):
        aws.finish_executions()  # the previous round's execution ended: its lock must be freed, once
        aws.clock.advance(minutes=30)
        services = [aws.service() for _ in range(TRIGGERS)]
        events = [features_ready(execution=f"round-{round_}-{i}") for i in range(TRIGGERS)]

        results = handle_together(services, events, f"round-{round_}")

        outcomes = _outcomes(results)
        assert outcomes["started"] == 1, outcomes
        assert outcomes["pipeline_running"] + outcomes["start_in_progress"] == TRIGGERS - 1, outcomes
        assert len(aws.executions()) == round_ + 1
        started = next(r for r in results if isinstance(r, Decision) and r.started)
        assert aws.item("lock", "pipeline")["execution_arn"] == started.execution_arn
    audit = aws.audit()
    assert len(audit) == ROUNDS * TRIGGERS and all(r["reason"] for r in audit)


def test_ten_concurrent_alarms_start_one_execution(aws: Aws) -> None:
    aws.service().handle(features_ready(), request_id="features")
    aws.finish_executions()
    aws.clock.advance(hours=1)
    services = [aws.service() for _ in range(TRIGGERS)]
    alarms = [drift_alarm(name=f"telecom-ml-dev-retrain-feature{i}-drift") for i in range(TRIGGERS)]

    results = handle_together(services, alarms, "alarm")

    assert _outcomes(results)["started"] == 1
    assert len(aws.executions()) == 2


def test_without_the_lock_the_same_race_starts_more_than_once(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """The threads really race: with the lock removed, the list-then-start check alone lets a second
    execution through (the reason the lock is a conditional write)."""
    monkeypatch.setattr(DynamoDBTriggerStore, "try_acquire", lambda self, **_: LockAcquired(None, None))
    most = 0
    for round_ in range(5):
        services = [aws.service() for _ in range(TRIGGERS)]
        events = [features_ready(execution=f"unlocked-{round_}-{i}") for i in range(TRIGGERS)]
        before = len(aws.executions())
        handle_together(services, events, f"unlocked-{round_}")
        most = max(most, len(aws.executions()) - before)
        aws.finish_executions()
        if most > 1:
            break
    assert most > 1
