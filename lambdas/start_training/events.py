"""The events that may start training, parsed with the Powertools parser into typed triggers.

- FeaturesReady (source telecom-ml.data-lake): the lake built features from one raw snapshot.
- CloudWatch Alarm State Change (source aws.cloudwatch): a retraining alarm of this environment
  (named `telecom-ml-<env>-retrain-...`) went to ALARM (drift and quality alarms, monitoring issue).

Anything else, or either of them with a field out of contract, raises MalformedEventError naming
the field at fault (`detail.raw_object`, `source`, ...). Unknown extra fields are ignored, so the
producer may add fields without breaking this consumer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

FEATURES_READY_SOURCE = "telecom-ml.data-lake"
FEATURES_READY_DETAIL_TYPE = "FeaturesReady"
ALARM_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
KNOWN_DETAIL_TYPES = {FEATURES_READY_SOURCE: FEATURES_READY_DETAIL_TYPE, ALARM_SOURCE: ALARM_DETAIL_TYPE}

# The pipeline takes TriggerReason as a parameter of at most this many characters (the contract).
MAX_REASON_CHARS = 256
# A snapshot dated later than tomorrow (UTC) is a producer bug, not a time-zone difference.
FUTURE_TOLERANCE = timedelta(days=1)
OLDEST_SNAPSHOT = date(2000, 1, 1)

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_INGEST_DATE = re.compile(r"/ingest_date(?:=|%3D)(\d{4}-\d{2}-\d{2})/")


def retrain_alarm_prefix(env_name: str) -> str:
    """Alarms whose name starts with this may start training in `env_name`; no other alarm may."""
    return f"telecom-ml-{env_name}-retrain-"


class MalformedEventError(ValueError):
    """The event breaks the contract at `field`; nothing was started."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class WrongEnvironmentError(MalformedEventError):
    """A well-formed event meant for another environment (or an alarm that is not a retraining alarm)."""


_Text = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class _Detail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class FeaturesReadyDetail(_Detail):
    features_uri: Annotated[str, StringConstraints(max_length=1024, pattern=rf"^s3://{_BUCKET}/\S*$")]
    features_table: Annotated[str, StringConstraints(max_length=255, pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)?$")]
    raw_object: Annotated[str, StringConstraints(max_length=1024, pattern=rf"^s3://{_BUCKET}/\S+$")]
    execution: Annotated[
        str, StringConstraints(max_length=2048, pattern=r"^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:\S+$")
    ]
    environment: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,20}$")]


class AlarmState(_Detail):
    value: Literal["ALARM"]
    reason: Annotated[str, StringConstraints(max_length=4096)] = ""
    timestamp: Annotated[str, StringConstraints(min_length=10, max_length=64)]


class AlarmDetail(_Detail):
    alarm_name: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(alias="alarmName")
    state: AlarmState


class Envelope(EventBridgeModel):
    """EventBridge's envelope (Powertools model), with the ids this consumer relies on constrained."""

    id: _Text
    source: _Text
    account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    detail_type: _Text = Field(alias="detail-type")
    detail: dict[str, Any]


@dataclass(frozen=True)
class Trigger:
    """One validated reason to start the pipeline. `key` identifies the event across deliveries."""

    kind: Literal["features_ready", "alarm"]
    key: str
    event_id: str
    reason: str
    snapshot_date: date | None = None  # alarms train on the latest features the store knows
    features_uri: str | None = None
    features_table: str | None = None
    origin: str = ""  # the Step Functions execution or the alarm, for the audit record

    @property
    def request_token(self) -> str:
        """StartPipelineExecution's ClientRequestToken: 64 hex characters (the API takes 32 to 128)."""
        return hashlib.sha256(self.key.encode()).hexdigest()


def parse_trigger(event: object, *, env_name: str, today: date) -> Trigger:
    """The trigger in `event`, or MalformedEventError naming the first field at fault."""
    if not isinstance(event, dict):
        raise MalformedEventError("(event)", f"expected a JSON object, got {type(event).__name__}")
    envelope = _validated(event, Envelope, prefix="")
    expected_detail_type = KNOWN_DETAIL_TYPES.get(envelope.source)
    if expected_detail_type is None:
        raise MalformedEventError("source", f"{_shown(envelope.source)} is not one of {sorted(KNOWN_DETAIL_TYPES)}")
    if envelope.detail_type != expected_detail_type:
        raise MalformedEventError("detail-type", f"{_shown(envelope.detail_type)} is not '{expected_detail_type}'")
    if envelope.source == FEATURES_READY_SOURCE:
        return _features_ready(envelope, env_name, today)
    return _alarm(envelope, env_name)


def _features_ready(envelope: Envelope, env_name: str, today: date) -> Trigger:
    detail = _validated(envelope.detail, FeaturesReadyDetail, prefix="detail.")
    if detail.environment != env_name:
        raise WrongEnvironmentError("detail.environment", f"event for '{detail.environment}', this is '{env_name}'")
    snapshot = _snapshot_date(detail.raw_object, today)
    execution_name = detail.execution.rsplit(":", 1)[-1]
    return Trigger(
        kind="features_ready",
        key=f"features_ready|{detail.execution}|{detail.raw_object}",
        event_id=envelope.id,
        reason=_clip(f"FeaturesReady: snapshot {snapshot.isoformat()} (lake execution {execution_name})"),
        snapshot_date=snapshot,
        # The event names the table's root; the pipeline trains on this snapshot's partition only.
        features_uri=f"{detail.features_uri.rstrip('/')}/snapshot_date={snapshot.isoformat()}/",
        features_table=detail.features_table,
        origin=detail.execution,
    )


def _alarm(envelope: Envelope, env_name: str) -> Trigger:
    detail = _validated(envelope.detail, AlarmDetail, prefix="detail.")
    if not detail.alarm_name.startswith(retrain_alarm_prefix(env_name)):
        raise WrongEnvironmentError(
            "detail.alarmName",
            f"{_shown(detail.alarm_name)} is not a retraining alarm of '{env_name}' "
            f"(names start with '{retrain_alarm_prefix(env_name)}')",
        )
    return Trigger(
        kind="alarm",
        key=f"alarm|{detail.alarm_name}|{detail.state.timestamp}",
        event_id=envelope.id,
        reason=_clip(f"Alarm {detail.alarm_name}: {detail.state.reason}"),
        origin=envelope.resources[0] if envelope.resources else detail.alarm_name,
    )


def _snapshot_date(raw_object: str, today: date) -> date:
    match = _INGEST_DATE.search(raw_object)
    if not match:
        raise MalformedEventError("detail.raw_object", "has no '/ingest_date=YYYY-MM-DD/' segment")
    try:
        snapshot = date.fromisoformat(match.group(1))
    except ValueError:
        raise MalformedEventError("detail.raw_object", f"ingest_date '{match.group(1)}' is not a date") from None
    if not OLDEST_SNAPSHOT <= snapshot <= today + FUTURE_TOLERANCE:
        raise MalformedEventError("detail.raw_object", f"ingest_date {snapshot} is outside {OLDEST_SNAPSHOT}..{today}")
    return snapshot


_Model = TypeVar("_Model", bound=BaseModel)


def _validated(data: dict[str, Any], model: type[_Model], *, prefix: str) -> _Model:
    try:
        return parse(event=data, model=model)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = prefix + ".".join(str(part) for part in error["loc"]) if error["loc"] else prefix.rstrip(".")
        raise MalformedEventError(field or "(event)", _problem(error)) from None


def _problem(error: Any) -> str:
    """pydantic's message without echoing a value that may be huge or hostile."""
    if error["type"] == "missing":
        return "required field is missing"
    return f"{error['msg']} (got {_shown(error.get('input'))})"


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."
