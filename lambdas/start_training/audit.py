"""One audit record per decision: a structured log line first, then an item in the store.

Fields: decided_at, request_id, environment, outcome, reason, trigger (kind, key, event id, origin),
snapshot_date, features_uri, execution_arn, daily_count, replay_of; for a rejected event the field
at fault and the event's source/detail-type/id as received (clipped). Items expire after the
configured retention (DynamoDB TTL); the log group keeps its own retention.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from .decision import Decision, Outcome
from .events import MalformedEventError, Trigger
from .store import TriggerStore

_CLIP = 256


class Log(Protocol):
    def info(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> Any: ...


class AuditTrail:
    def __init__(self, store: TriggerStore, log: Log, *, env_name: str, retention: timedelta) -> None:
        self._store = store
        self._log = log
        self._env_name = env_name
        self._retention = retention

    def decided(self, decision: Decision, trigger: Trigger, *, request_id: str) -> dict[str, str | int]:
        record = self._base(decision, request_id)
        record.update(
            trigger_kind=trigger.kind,
            trigger_key=_clip(trigger.key),
            event_id=_clip(trigger.event_id),
            origin=_clip(trigger.origin),
        )
        return self._write(record)

    def rejected(
        self, error: MalformedEventError, event: object, *, request_id: str, at: datetime
    ) -> dict[str, str | int]:
        decision = Decision(Outcome.REJECTED, _clip(str(error)), at.isoformat())
        record = self._base(decision, request_id)
        record["field"] = _clip(error.field)
        if isinstance(event, Mapping):
            for name in ("source", "detail-type", "id"):
                record[f"event_{name.replace('-', '_')}"] = _clip(str(event.get(name, "")))
        return self._write(record)

    def _base(self, decision: Decision, request_id: str) -> dict[str, str | int]:
        decided_at = datetime.fromisoformat(decision.decided_at)
        record: dict[str, str | int] = {
            **decision.to_dict(),
            "request_id": request_id,
            "environment": self._env_name,
            "expires_at": int((decided_at + self._retention).timestamp()),
        }
        return record

    def _write(self, record: dict[str, str | int]) -> dict[str, str | int]:
        # The log line comes first: if the store is unreachable the decision is still on record.
        message = "training not started" if record["outcome"] != "started" else "training started"
        self._log.info(message, extra={"audit": record})
        self._store.write_audit(record)
        return record


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 3] + "..."
