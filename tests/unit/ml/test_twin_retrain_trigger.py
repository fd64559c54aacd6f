"""The twin's retrain decision goes through the real start_training service: concurrent drift alarms start
one execution and the others are coalesced by the pipeline lock; cooldown and the daily cap decide as in the
cloud; the settings are the ones the TrainingTrigger construct gives the function."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta

import pytest

from infra.config import RetrainingConfig
from lambdas.start_training.events import parse_trigger
from tests.conftest import ROOT
from twin.retrain_trigger import DriftAlarm, alarm_event, alarm_name, decide_retraining, trigger_environ

SNAPSHOT = date(2026, 1, 1)
WEEK_TWO = datetime(2026, 1, 15, 9, tzinfo=UTC)
ALARMS = [DriftAlarm("monthly_charges", 0.2, 0.1), DriftAlarm("contract", 0.16, 0.1), DriftAlarm("tenure", 0.12, 0.1)]


def test_first_alarm_starts_and_the_others_are_coalesced() -> None:
    result = decide_retraining("dev", RetrainingConfig(), SNAPSHOT, ALARMS, WEEK_TWO)
    assert result["features_ready"]["outcome"] == "started"
    assert [a["outcome"] for a in result["alarms"]] == ["started", "pipeline_running", "pipeline_running"]
    assert result["retrain"] is True
    assert result["started_by"] == "telecom-ml-dev-retrain-drift-monthly_charges"
    started = result["alarms"][0]["execution_arn"]
    assert all(a["execution_arn"] == started for a in result["alarms"][1:])  # blocked by that very execution
    assert "execution is Executing" in result["alarms"][1]["reason"]
    assert len(result["pipeline_starts"]) == 2  # the run that trained the champion, then the retrain
    assert result["pipeline_starts"][1].startswith("Alarm telecom-ml-dev-retrain-drift-monthly_charges: Threshold")
    assert result["audit_records"] == 1 + len(ALARMS)
    assert result["reason"] == (
        "3 alarm(s): 1 started, 2 pipeline_running; telecom-ml-dev-retrain-drift-monthly_charges started the pipeline"
    )


def test_alarms_inside_the_cooldown_start_nothing() -> None:
    soon = datetime(2026, 1, 1, 3, tzinfo=UTC)  # the champion's run started at 01:00, cooldown 6 h
    result = decide_retraining("dev", RetrainingConfig(cooldown_hours=6), SNAPSHOT, ALARMS[:1], soon)
    assert [a["outcome"] for a in result["alarms"]] == ["cooldown"]
    assert result["retrain"] is False and result["started_by"] is None
    assert "cooldown until 2026-01-01T07:00:00+00:00" in result["alarms"][0]["reason"]


def test_daily_cap_is_honoured_once_the_execution_finished() -> None:
    # Same day as the champion's start, after the cooldown: the cap of 1 start that day is used up.
    later = datetime(2026, 1, 1, 20, tzinfo=UTC)
    result = decide_retraining("dev", RetrainingConfig(cooldown_hours=1, daily_cap=1), SNAPSHOT, ALARMS[:1], later)
    assert [a["outcome"] for a in result["alarms"]] == ["daily_cap"]


def test_no_alarm_no_decision() -> None:
    result = decide_retraining("dev", RetrainingConfig(), SNAPSHOT, [], WEEK_TWO)
    assert result["retrain"] is False and result["alarms"] == []
    assert result["reason"] == "no drift alarm fired: nothing to decide"


def test_alarm_events_are_what_the_lambda_parses_for_this_environment_only() -> None:
    event = alarm_event("dev", "contract", 0.16, 0.1, WEEK_TWO)
    trigger = parse_trigger(event, env_name="dev", today=WEEK_TWO.date())
    assert trigger.kind == "alarm" and trigger.origin.endswith(":alarm:telecom-ml-dev-retrain-drift-contract")
    assert alarm_name("dev", "contract").startswith("telecom-ml-dev-retrain-")
    with pytest.raises(ValueError, match=r"detail\.alarmName"):
        parse_trigger(event, env_name="prod", today=WEEK_TWO.date())


def test_settings_are_the_constructs() -> None:
    environ = trigger_environ("dev", RetrainingConfig(cooldown_hours=2, daily_cap=3))
    # The construct's constant, read from its source (importing the construct would start the CDK's node).
    source = ast.parse((ROOT / "infra" / "constructs" / "ml" / "training_trigger.py").read_text())
    assigned = next(
        n.value for n in source.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "START_LOCK_SECONDS"
    )
    assert environ["START_LOCK_SECONDS"] == str(eval(compile(ast.Expression(assigned), "constant", "eval")))
    assert environ["COOLDOWN_SECONDS"] == str(2 * 3600) and environ["DAILY_CAP"] == "3"
    assert timedelta(seconds=int(environ["MAX_RUN_SECONDS"])) == timedelta(hours=RetrainingConfig().max_run_hours)
