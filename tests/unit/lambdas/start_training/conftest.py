"""moto DynamoDB + SageMaker with a real pipeline, a settable clock and services built like the handler's.

Two adjustments make moto behave as the services do, and nothing more:
- DynamoDB applies each conditional write atomically. moto's in-memory backend checks a condition
  and writes in separate Python steps, so under threads it could let two writers pass; requests
  are serialized here. The code under test relies on single-item atomicity only.
- A real pipeline execution is `Executing` after StartPipelineExecution; moto marks it `Succeeded`
  at once. Executions start `Executing` here, and tests finish them with `finish_executions`.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler
from moto.sagemaker import models as sagemaker_models

from lambdas.start_training.decision import Decision
from lambdas.start_training.service import TrainingTriggerService, build_service
from lambdas.start_training.settings import TriggerSettings

TABLE = "telecom-ml-dev-training-trigger"
PIPELINE = "telecom-ml-dev-churn"
START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@dataclass
class LambdaContextStub:
    """What Powertools and the handler read from a Lambda context."""

    aws_request_id: str = "5f1b7a3c-0000-4000-8000-000000000001"
    function_name: str = "start-training"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:start-training"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def settings(**changes: Any) -> TriggerSettings:
    values: dict[str, Any] = {
        "env_name": "dev",
        "pipeline_name": PIPELINE,
        "table_name": TABLE,
        "cooldown": timedelta(0),
        "daily_cap": 10,
        "max_run": timedelta(hours=12),
        "start_lock": timedelta(minutes=3),
        "duplicate_window": timedelta(hours=48),
        "audit_retention": timedelta(days=400),
    }
    return TriggerSettings(**{**values, **changes})


@dataclass
class Aws:
    """The mocked account: build services on it, and read what they did."""

    session: boto3.session.Session
    clock: Clock = field(default_factory=Clock)

    def service(self, **setting_changes: Any) -> TrainingTriggerService:
        """A service with its own clients, as one Lambda container has."""
        service = build_service(
            settings(**setting_changes),
            dynamodb=self.session.client("dynamodb"),
            sagemaker=self.session.client("sagemaker"),
            clock=self.clock,
        )
        service.idempotency_config.register_lambda_context(cast(LambdaContext, LambdaContextStub()))
        return service

    def executions(self) -> list[dict[str, Any]]:
        client = self.session.client("sagemaker")
        return client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]

    def parameters(self, execution_arn: str) -> dict[str, str]:
        client = self.session.client("sagemaker")
        listed = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
        return {p["Name"]: p["Value"] for p in listed["PipelineParameters"]}

    def finish_executions(self, status: str = "Succeeded") -> None:
        backend = sagemaker_models.sagemaker_backends["123456789012"]["eu-west-1"]
        for execution in backend.pipelines[PIPELINE].pipeline_executions.values():
            execution.pipeline_execution_status = status

    def audit(self) -> list[dict[str, Any]]:
        client = self.session.client("dynamodb")
        items = client.scan(TableName=TABLE)["Items"]
        records = [_plain(item) for item in items if item["pk"]["S"].startswith("audit#")]
        return sorted(records, key=lambda r: r["sk"])

    def item(self, pk: str, sk: str) -> dict[str, Any]:
        client = self.session.client("dynamodb")
        return _plain(client.get_item(TableName=TABLE, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item", {}))


def _plain(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A DynamoDB item without its type tags ({"S": "x"} -> "x"; numbers stay strings)."""
    return {name: next(iter(value.values())) for name, value in item.items()}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    _serialize_dynamodb_requests(monkeypatch)
    _executions_start_executing(monkeypatch)
    with mock_aws():
        session = boto3.session.Session(region_name="eu-west-1")
        _create_table(session.client("dynamodb"))
        _create_pipeline(session.client("sagemaker"))
        yield Aws(session)


def _serialize_dynamodb_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = threading.Lock()
    original = DynamoHandler.call_action

    def atomic(self: DynamoHandler) -> Any:
        with lock:
            return original(self)

    monkeypatch.setattr(DynamoHandler, "call_action", atomic)


def _executions_start_executing(monkeypatch: pytest.MonkeyPatch) -> None:
    original = sagemaker_models.FakePipelineExecution.__init__

    def executing(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.pipeline_execution_status = "Executing"

    monkeypatch.setattr(sagemaker_models.FakePipelineExecution, "__init__", executing)


def _create_table(client: Any) -> None:
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )


def _create_pipeline(client: Any) -> None:
    definition = {
        "Version": "2020-12-01",
        "Parameters": [
            {"Name": "SnapshotDate", "Type": "String"},
            {"Name": "FeaturesUri", "Type": "String"},
            {"Name": "TriggerReason", "Type": "String"},
        ],
        "Steps": [],
    }
    client.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps(definition),
        RoleArn="arn:aws:iam::123456789012:role/telecom-ml-dev-pipeline",
    )


def handle_together(
    services: list[TrainingTriggerService], events: list[dict[str, Any]], request_prefix: str = "req"
) -> list[Decision | BaseException]:
    """services[i] handles events[i], all on their own threads released together."""
    calls = [
        functools.partial(service.handle, event, request_id=f"{request_prefix}-{number}")
        for number, (service, event) in enumerate(zip(services, events, strict=True))
    ]
    return run_together(calls)


def run_together(calls: Sequence[Callable[[], Decision]]) -> list[Decision | BaseException]:
    """Run every call on its own thread, all released at the same instant by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Decision | BaseException | None] = [None] * len(calls)

    def work(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as err:  # recorded and asserted on by the test
            results[index] = err

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in results), "a thread did not finish"
    return [r for r in results if r is not None]
