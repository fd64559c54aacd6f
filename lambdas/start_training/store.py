"""What the decision needs from its state store, as a protocol: DynamoDB in the cloud, memory in the twin.

Every operation that guards a start is one atomic conditional write on one item, so two deciders
can never both win; no decision reads state and then writes it in a separate step.

- the pipeline lock (one item): `try_acquire` succeeds only if the lock is free or its hold has
  expired, and returns the item as it was (last start time) in the same write;
- the daily start counter (one item per UTC day): incremented only while below the cap;
- the latest feature snapshot (one item): replaced only by a snapshot at least as recent;
- audit records: one new item per decision (never updated).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

LockState = str  # "starting" (a decider holds it and is starting), "running" (an execution holds it), "free"
STARTING, RUNNING, FREE = "starting", "running", "free"


@dataclass(frozen=True)
class LockAcquired:
    """The lock is now ours (state "starting"); what it held before, for the cooldown."""

    last_started_at: datetime | None
    last_execution_arn: str | None


@dataclass(frozen=True)
class LockHeld:
    """Someone else holds the lock until `hold_until`."""

    holder: str
    state: LockState
    execution_arn: str | None
    hold_until: datetime


@dataclass(frozen=True)
class FeatureSnapshot:
    snapshot_date: date
    features_uri: str
    features_table: str


class TriggerStore(Protocol):
    def try_acquire(self, *, holder: str, now: datetime, hold_until: datetime) -> LockAcquired | LockHeld:
        """Take the lock if it is free or its hold expired before `now`."""
        ...

    def mark_running(self, *, holder: str, execution_arn: str, now: datetime, hold_until: datetime) -> bool:
        """Our start succeeded: the lock now stands for `execution_arn`. False if we no longer held it."""
        ...

    def release(self, *, holder: str, only_if_state: LockState | None = None) -> bool:
        """Free the lock if `holder` (still) holds it (and it is in `only_if_state`). True if freed here."""
        ...

    def reserve_daily_start(self, *, day: date, cap: int, expires: datetime) -> int | None:
        """Count one start on `day`; the new count, or None when `cap` starts were already counted."""
        ...

    def unreserve_daily_start(self, *, day: date) -> None:
        """Give back a reservation whose start failed."""
        ...

    def remember_features(self, snapshot: FeatureSnapshot) -> bool:
        """Record the snapshot unless a later one is known. True if it is (one of) the latest."""
        ...

    def latest_features(self) -> FeatureSnapshot | None: ...

    def write_audit(self, record: dict[str, str | int]) -> None:
        """Store one audit record (its keys are chosen by the store)."""
        ...
