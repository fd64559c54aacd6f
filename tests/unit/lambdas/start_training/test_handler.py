"""The Lambda entry point as Lambda calls it (environment variables, context), and its settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType

import pytest

from lambdas.start_training.events import MalformedEventError
from lambdas.start_training.settings import SettingsError, TriggerSettings
from tests.unit.lambdas.start_training.conftest import PIPELINE, TABLE, Aws, LambdaContextStub
from tests.unit.lambdas.start_training.sample_events import features_ready

ENVIRONMENT = {
    "ENVIRONMENT_NAME": "dev",
    "PIPELINE_NAME": PIPELINE,
    "TABLE_NAME": TABLE,
    "COOLDOWN_SECONDS": "21600",
    "DAILY_CAP": "2",
    "MAX_RUN_SECONDS": "43200",
    "START_LOCK_SECONDS": "180",
    "DUPLICATE_WINDOW_SECONDS": "172800",
    "AUDIT_RETENTION_DAYS": "400",
}


@pytest.fixture
def handler_module(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in {**ENVIRONMENT, "POWERTOOLS_TRACE_DISABLED": "true"}.items():
        monkeypatch.setenv(name, value)
    from lambdas.start_training import handler

    handler._service.cache_clear()
    yield handler
    handler._service.cache_clear()


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The structured audit lines the function logged (Powertools Logger: `extra` becomes JSON keys)."""
    return [json.loads(json.dumps(r.audit)) for r in caplog.records if hasattr(r, "audit")]


def test_handler_starts_and_logs_one_structured_audit_line(
    aws: Aws, handler_module: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    result = handler_module.handler(features_ready(day="2026-11-20"), LambdaContextStub(aws_request_id="req-1"))

    assert result["outcome"] == "started" and result["execution_arn"]
    assert len(aws.executions()) == 1
    [audit] = _audit_lines(caplog)
    assert audit["outcome"] == "started" and audit["request_id"] == "req-1"
    assert [r["outcome"] for r in aws.audit()] == ["started"]


def test_handler_raises_on_a_malformed_event_so_it_reaches_the_dead_letter_queue(
    aws: Aws, handler_module: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    event = features_ready()
    del event["detail"]["raw_object"]

    with pytest.raises(MalformedEventError, match=r"^detail\.raw_object: required field is missing$"):
        handler_module.handler(event, LambdaContextStub(aws_request_id="req-2"))

    assert aws.executions() == []
    [record] = aws.audit()
    assert record["outcome"] == "rejected" and record["field"] == "detail.raw_object"
    [audit] = _audit_lines(caplog)
    assert audit["field"] == "detail.raw_object" and audit["request_id"] == "req-2"


def test_settings_are_read_from_the_environment() -> None:
    settings = TriggerSettings.from_environ(ENVIRONMENT)
    assert settings.cooldown == timedelta(hours=6) and settings.daily_cap == 2
    assert settings.max_run == timedelta(hours=12) and settings.audit_retention == timedelta(days=400)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"TABLE_NAME": ""}, "TABLE_NAME: environment variable is not set"),
        ({"DAILY_CAP": "two"}, "DAILY_CAP: 'two' is not a whole number"),
        ({"DAILY_CAP": "0"}, "DAILY_CAP: 0 is outside 1..1000"),
        ({"PIPELINE_NAME": "churn"}, "PIPELINE_NAME: 'churn' is not 'telecom-ml-<env>-churn'"),
        ({"PIPELINE_NAME": "telecom-ml-qa-churn"}, "PIPELINE_NAME: 'telecom-ml-qa-churn' is not the pipeline of 'dev'"),
        ({"START_LOCK_SECONDS": "3600", "MAX_RUN_SECONDS": "3600"}, "START_LOCK_SECONDS: must be shorter"),
        ({"ENVIRONMENT_NAME": "Dev"}, "ENVIRONMENT_NAME: 'Dev' does not match"),
    ],
)
def test_a_bad_setting_is_named(changes: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=f"^{message}"):
        TriggerSettings.from_environ({**ENVIRONMENT, **changes})
