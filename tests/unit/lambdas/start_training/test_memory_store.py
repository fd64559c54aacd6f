"""The in-memory store (for the local twin) follows the same rules as DynamoDB: same scenarios, no AWS."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from lambdas.start_training.decision import Outcome
from lambdas.start_training.memory_store import InMemoryTriggerStore
from lambdas.start_training.pipeline import StartRequest
from lambdas.start_training.service import TrainingTriggerService
from tests.unit.lambdas.start_training.conftest import Clock, handle_together, settings
from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready

PIPELINE_ARN = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/telecom-ml-dev-churn"


class FakePipeline:
    """A pipeline whose executions run until `finish` is called."""

    def __init__(self) -> None:
        self.started: list[StartRequest] = []
        self.status_of: dict[str, str] = {}
        self._mutex = threading.Lock()

    def start(self, request: StartRequest) -> str:
        with self._mutex:
            self.started.append(request)
            arn = f"{PIPELINE_ARN}/execution/{len(self.started)}"
            self.status_of[arn] = "Executing"
            return arn

    def status(self, execution_arn: str) -> str:
        return self.status_of[execution_arn]

    def running_executions(self, *, created_after: datetime) -> list[str]:
        return [arn for arn, status in self.status_of.items() if status == "Executing"]

    def finish(self) -> None:
        self.status_of = dict.fromkeys(self.status_of, "Succeeded")


def _service(
    store: InMemoryTriggerStore, pipeline: FakePipeline, clock: Clock, **changes: object
) -> TrainingTriggerService:
    return TrainingTriggerService(settings=settings(**changes), store=store, pipeline=pipeline, clock=clock)


def test_the_rules_hold_on_the_memory_store() -> None:
    store, pipeline, clock = InMemoryTriggerStore(), FakePipeline(), Clock()
    service = _service(store, pipeline, clock, cooldown=timedelta(hours=1), daily_cap=2)

    outcomes = [service.handle(features_ready(execution="a"), request_id="1").outcome]
    outcomes.append(service.handle(features_ready(execution="b"), request_id="2").outcome)
    pipeline.finish()
    outcomes.append(service.handle(features_ready(execution="c"), request_id="3").outcome)
    clock.advance(hours=2)
    outcomes.append(service.handle(drift_alarm(), request_id="4").outcome)
    pipeline.finish()
    clock.advance(hours=2)
    outcomes.append(service.handle(features_ready(execution="d"), request_id="5").outcome)

    assert outcomes == [
        Outcome.STARTED,
        Outcome.PIPELINE_RUNNING,
        Outcome.COOLDOWN,
        Outcome.STARTED,
        Outcome.DAILY_CAP,
    ]
    assert [r["outcome"] for r in store.audit] == [o.value for o in outcomes]
    assert [r.snapshot_date.isoformat() for r in pipeline.started] == ["2026-11-20", "2026-11-20"]


def test_distinct_concurrent_triggers_start_once_on_the_memory_store() -> None:
    store, pipeline, clock = InMemoryTriggerStore(), FakePipeline(), Clock()
    services = [_service(store, pipeline, clock) for _ in range(10)]
    events = [features_ready(execution=f"run-{i}") for i in range(10)]

    results = handle_together(services, events)

    assert sum(1 for r in results if not isinstance(r, BaseException) and r.started) == 1
    assert len(pipeline.started) == 1
