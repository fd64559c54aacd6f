"""The function's settings: set by the TrainingTrigger construct as environment variables, read once.

A missing or invalid variable raises SettingsError naming it, at cold start, before any event is
touched (the invocation fails and the event goes to the dead-letter queue, nothing is started).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

PIPELINE_NAME_PATTERN = re.compile(r"^telecom-ml-(?P<env>[a-z][a-z0-9-]{1,20})-churn$")
_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class SettingsError(ValueError):
    """An environment variable is missing or out of range. str(err) names it."""


@dataclass(frozen=True)
class TriggerSettings:
    env_name: str
    pipeline_name: str
    table_name: str
    cooldown: timedelta
    daily_cap: int
    max_run: timedelta
    start_lock: timedelta
    duplicate_window: timedelta
    audit_retention: timedelta

    def __post_init__(self) -> None:
        match = PIPELINE_NAME_PATTERN.fullmatch(self.pipeline_name)
        if not match:
            raise SettingsError(f"PIPELINE_NAME: '{self.pipeline_name}' is not 'telecom-ml-<env>-churn'")
        if match.group("env") != self.env_name:
            raise SettingsError(f"PIPELINE_NAME: '{self.pipeline_name}' is not the pipeline of '{self.env_name}'")
        if self.start_lock >= self.max_run:
            raise SettingsError("START_LOCK_SECONDS: must be shorter than MAX_RUN_SECONDS")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TriggerSettings:
        return cls(
            env_name=_text(environ, "ENVIRONMENT_NAME", _ENV_NAME),
            pipeline_name=_text(environ, "PIPELINE_NAME", None),
            table_name=_text(environ, "TABLE_NAME", _TABLE_NAME),
            cooldown=timedelta(seconds=_number(environ, "COOLDOWN_SECONDS", 0, 30 * 86400)),
            daily_cap=_number(environ, "DAILY_CAP", 1, 1000),
            max_run=timedelta(seconds=_number(environ, "MAX_RUN_SECONDS", 600, 30 * 86400)),
            start_lock=timedelta(seconds=_number(environ, "START_LOCK_SECONDS", 60, 3600)),
            duplicate_window=timedelta(seconds=_number(environ, "DUPLICATE_WINDOW_SECONDS", 3600, 30 * 86400)),
            audit_retention=timedelta(days=_number(environ, "AUDIT_RETENTION_DAYS", 1, 3653)),
        )


def _text(environ: Mapping[str, str], name: str, pattern: re.Pattern[str] | None) -> str:
    value = environ.get(name, "")
    if not value:
        raise SettingsError(f"{name}: environment variable is not set")
    if pattern is not None and not pattern.fullmatch(value):
        raise SettingsError(f"{name}: '{value[:80]}' does not match {pattern.pattern}")
    return value


def _number(environ: Mapping[str, str], name: str, low: int, high: int) -> int:
    raw = _text(environ, name, None)
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}: '{raw[:80]}' is not a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}: {value} is outside {low}..{high}")
    return value
