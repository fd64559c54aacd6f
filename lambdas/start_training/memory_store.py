"""TriggerStore in memory, for the local twin and fast tests: the same rules as DynamoDB's conditional
writes, each operation atomic under one lock."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime

from .store import FREE, RUNNING, STARTING, FeatureSnapshot, LockAcquired, LockHeld, LockState


@dataclass
class _Lock:
    holder: str = ""
    state: LockState = FREE
    hold_until: datetime | None = None
    execution_arn: str | None = None
    last_started_at: datetime | None = None
    last_execution_arn: str | None = None


@dataclass
class InMemoryTriggerStore:
    audit: list[dict[str, str | int]] = field(default_factory=list)
    _lock: _Lock = field(default_factory=_Lock)
    _starts: dict[date, int] = field(default_factory=dict)
    _features: FeatureSnapshot | None = None
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def try_acquire(self, *, holder: str, now: datetime, hold_until: datetime) -> LockAcquired | LockHeld:
        with self._mutex:
            lock = self._lock
            if lock.state != FREE and lock.hold_until is not None and lock.hold_until >= now:
                return LockHeld(lock.holder, lock.state, lock.execution_arn, lock.hold_until)
            acquired = LockAcquired(lock.last_started_at, lock.last_execution_arn)
            lock.holder, lock.state, lock.hold_until, lock.execution_arn = holder, STARTING, hold_until, None
            return acquired

    def mark_running(self, *, holder: str, execution_arn: str, now: datetime, hold_until: datetime) -> bool:
        with self._mutex:
            lock = self._lock
            if lock.holder != holder:
                return False
            lock.state, lock.execution_arn, lock.hold_until = RUNNING, execution_arn, hold_until
            lock.last_started_at, lock.last_execution_arn = now, execution_arn
            return True

    def release(self, *, holder: str, only_if_state: LockState | None = None) -> bool:
        with self._mutex:
            lock = self._lock
            if lock.holder != holder or lock.state == FREE:
                return False
            if only_if_state is not None and lock.state != only_if_state:
                return False
            lock.state = FREE
            return True

    def reserve_daily_start(self, *, day: date, cap: int, expires: datetime) -> int | None:
        with self._mutex:
            if self._starts.get(day, 0) >= cap:
                return None
            self._starts[day] = self._starts.get(day, 0) + 1
            return self._starts[day]

    def unreserve_daily_start(self, *, day: date) -> None:
        with self._mutex:
            if self._starts.get(day, 0) > 0:
                self._starts[day] -= 1

    def remember_features(self, snapshot: FeatureSnapshot) -> bool:
        with self._mutex:
            if self._features is not None and self._features.snapshot_date > snapshot.snapshot_date:
                return False
            self._features = snapshot
            return True

    def latest_features(self) -> FeatureSnapshot | None:
        with self._mutex:
            return self._features

    def write_audit(self, record: dict[str, str | int]) -> None:
        with self._mutex:
            self.audit.append(dict(record))
