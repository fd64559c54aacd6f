"""The thin handlers: JSON in, JSON out, the same steps; settings errors name the field."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from lambdas.deployer import aws
from lambdas.deployer.errors import InvalidEventError, InvalidSettingsError
from lambdas.deployer.handlers import check, finish, follow_up, prepare, receive, scale, start
from lambdas.deployer.settings import parse_settings
from tests.unit.lambdas.deployer.conftest import Cloud, approval_event, settings_document

CONTEXT = SimpleNamespace(function_name="deployer", memory_limit_in_mb=256, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:deployer")


def _through_json(document: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(document))  # what Step Functions passes on
    return loaded


def test_handlers_chain_like_the_state_machine(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "step_context", lambda: cloud.ctx)
    arn = cloud.register_package()
    state = receive.handler({"event": approval_event(arn), "execution": "arn:aws:states:x:exec-1"}, CONTEXT)
    assert state["outcome"] == "deploy" and state["package_arn"] == arn
    for step in (prepare, start, check, scale, follow_up, finish):
        state = step.handler(_through_json(state), CONTEXT)  # type: ignore[attr-defined]
    assert state["outcome"] == "deployed" and state["next_package_arn"] is None


def test_receive_needs_the_execution_id(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "step_context", lambda: cloud.ctx)
    with pytest.raises(InvalidEventError, match="execution"):
        receive.handler({"event": approval_event(cloud.register_package())}, CONTEXT)


def test_a_malformed_state_document_names_its_field(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "step_context", lambda: cloud.ctx)
    with pytest.raises(InvalidEventError, match=r"state\.version"):
        prepare.handler({"package_arn": "a", "version": "three", "execution": "e", "outcome": "deploy"}, CONTEXT)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"mode": "batch"}, "mode"),
        ({"endpoint_name": "Telecom_ML"}, "endpoint_name"),
        ({"rollback_alarm_names": []}, "rollback_alarm_names"),
        ({"container_startup_timeout_seconds": 30}, "container_startup_timeout_seconds"),
        ({"surprise": 1}, "surprise"),
        ({"baseline": None}, "baseline"),
        ({"monitoring_schedules": [{"name": "s", "job_definition_name": "j", "type": "ModelBias",
                                    "schedule_expression": "cron(0 * ? * * *)"}]}, "monitoring_schedules.0.type"),
        ({"batch_scoring_pipeline_name": "not a name"}, "batch_scoring_pipeline_name"),
    ],
)
def test_settings_errors_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSettingsError) as err:
        parse_settings(json.dumps(settings_document(**change)))
    assert err.value.field == field


def test_settings_that_are_not_json_are_refused() -> None:
    with pytest.raises(InvalidSettingsError, match="not JSON"):
        parse_settings("{mode: async")
