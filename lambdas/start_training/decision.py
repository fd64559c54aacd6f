"""Whether a trigger starts the pipeline: the rules, in order, with an outcome and a reason for each.

1. A FeaturesReady older than the latest snapshot already seen is stale; an alarm needs a snapshot.
2. Take the pipeline lock (one conditional write). Held by a running execution: skip, unless
   DescribePipelineExecution says it finished, then free it and try once more. Held by another
   trigger that is starting: skip. Held by an earlier attempt of this same trigger: fail, so the
   attempt is retried once its short start hold has expired (nothing lost).
3. Holding the lock, no other trigger can start; the checks below are therefore race-free:
   cooldown since the last start (read atomically with the lock); no execution started outside
   the lock (a manual start, or one that outlived its hold) still runs; the daily cap (an atomic
   counter, given back if the start fails).
4. Start with a ClientRequestToken derived from the trigger; the lock then stands for the
   execution for at most `max_run`. Any failure before that frees the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from .events import Trigger
from .pipeline import FINISHED_STATUSES, Pipeline, StartRequest
from .settings import TriggerSettings
from .store import RUNNING, STARTING, FeatureSnapshot, LockAcquired, LockHeld, TriggerStore

Clock = Callable[[], datetime]
# How far back an execution started outside the lock is looked for (ListPipelineExecutions).
RUNNING_LOOKBACK = timedelta(days=7)
# Daily counters outlive their day long enough to be read in an investigation, then expire.
COUNTER_RETENTION = timedelta(days=35)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"  # the same event was decided before: that decision is replayed
    DUPLICATE_IN_FLIGHT = "duplicate_in_flight"  # the same event is being decided right now
    PIPELINE_RUNNING = "pipeline_running"  # the lock stands for an execution that still runs
    START_IN_PROGRESS = "start_in_progress"  # another trigger holds the lock and is starting
    RUNNING_OUTSIDE_LOCK = "running_outside_lock"  # e.g. a manual start that still runs
    COOLDOWN = "cooldown"
    DAILY_CAP = "daily_cap"
    STALE_SNAPSHOT = "stale_snapshot"
    NO_FEATURES = "no_features"
    REJECTED = "rejected"  # malformed event or one for another environment
    START_FAILED = "start_failed"


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str
    decided_at: str  # ISO 8601, UTC
    execution_arn: str = ""  # the execution started, or the one that blocked the start
    snapshot_date: str = ""
    features_uri: str = ""
    daily_count: int = 0
    replay_of: str = ""  # for a duplicate: when the original decision was taken

    @property
    def started(self) -> bool:
        return self.outcome is Outcome.STARTED

    def to_dict(self) -> dict[str, str | int]:
        return {**asdict(self), "outcome": self.outcome.value}

    @classmethod
    def from_dict(cls, data: dict[str, str | int]) -> Decision:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "outcome": Outcome(str(data["outcome"]))})  # type: ignore[arg-type]

    def as_replay(self, now: datetime) -> Decision:
        return replace(
            self,
            outcome=Outcome.DUPLICATE,
            reason=f"same event already decided at {self.decided_at}: {self.outcome.value} ({self.reason})",
            decided_at=now.isoformat(),
            replay_of=self.decided_at,
        )


class LockHeldByEarlierAttempt(RuntimeError):
    """An earlier attempt of this trigger still holds the start lock (it may have crashed): retry later."""


class StartFailedError(RuntimeError):
    def __init__(self, decision: Decision) -> None:
        super().__init__(decision.reason)
        self.decision = decision


class Decider:
    def __init__(self, settings: TriggerSettings, store: TriggerStore, pipeline: Pipeline, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._pipeline = pipeline
        self._clock = clock

    def decide(self, trigger: Trigger) -> Decision:
        now = self._clock()
        snapshot = self._snapshot_for(trigger)
        if isinstance(snapshot, Decision):
            return snapshot
        skip = self._skip_factory(now, snapshot)
        claim: LockAcquired | LockHeld | None = None
        for _attempt in range(2):
            claim = self._store.try_acquire(
                holder=trigger.request_token, now=now, hold_until=now + self._settings.start_lock
            )
            if isinstance(claim, LockAcquired):
                break
            blocked = self._blocked_by(claim, trigger, skip)
            if blocked is not None:
                return blocked
        if not isinstance(claim, LockAcquired):
            return skip(Outcome.START_IN_PROGRESS, "the lock was taken again as soon as it was freed")
        try:
            return self._under_lock(trigger, snapshot, claim, now, skip)
        except BaseException:
            self._store.release(holder=trigger.request_token, only_if_state=STARTING)
            raise

    def _snapshot_for(self, trigger: Trigger) -> FeatureSnapshot | Decision:
        now = self._clock()
        if trigger.snapshot_date is not None and trigger.features_uri and trigger.features_table:
            snapshot = FeatureSnapshot(trigger.snapshot_date, trigger.features_uri, trigger.features_table)
            if self._store.remember_features(snapshot):
                return snapshot
            latest = self._store.latest_features()
            newer = latest.snapshot_date.isoformat() if latest else "?"
            return self._skip_factory(now, snapshot)(
                Outcome.STALE_SNAPSHOT, f"snapshot {snapshot.snapshot_date} is older than the latest known ({newer})"
            )
        latest = self._store.latest_features()
        if latest is None:
            return Decision(Outcome.NO_FEATURES, "no FeaturesReady seen yet: nothing to train on", now.isoformat())
        return latest

    def _blocked_by(self, held: LockHeld, trigger: Trigger, skip: _Skip) -> Decision | None:
        """The decision when the lock is held, or None once a finished execution's lock was freed."""
        until = held.hold_until.isoformat()
        if held.state == RUNNING and held.execution_arn:
            status = self._pipeline.status(held.execution_arn)
            if status in FINISHED_STATUSES:
                self._store.release(holder=held.holder, only_if_state=RUNNING)
                return None
            reason = f"execution is {status} (lock held until {until})"
            return skip(Outcome.PIPELINE_RUNNING, reason, held.execution_arn)
        if held.holder == trigger.request_token:
            raise LockHeldByEarlierAttempt(f"an earlier attempt of this trigger holds the start lock until {until}")
        return skip(Outcome.START_IN_PROGRESS, f"another trigger is starting an execution (lock held until {until})")

    def _under_lock(
        self, trigger: Trigger, snapshot: FeatureSnapshot, claim: LockAcquired, now: datetime, skip: _Skip
    ) -> Decision:
        settings, token = self._settings, trigger.request_token
        if claim.last_started_at is not None and now < claim.last_started_at + settings.cooldown:
            self._store.release(holder=token)
            allowed = (claim.last_started_at + settings.cooldown).isoformat()
            reason = f"last start {claim.last_started_at.isoformat()}; cooldown until {allowed}"
            return skip(Outcome.COOLDOWN, reason, claim.last_execution_arn or "")
        running = self._pipeline.running_executions(created_after=now - RUNNING_LOOKBACK)
        if running:
            self._store.release(holder=token)
            reason = "an execution started outside this trigger still runs"
            return skip(Outcome.RUNNING_OUTSIDE_LOCK, reason, running[0])
        count = self._store.reserve_daily_start(day=now.date(), cap=settings.daily_cap, expires=now + COUNTER_RETENTION)
        if count is None:
            self._store.release(holder=token)
            return skip(Outcome.DAILY_CAP, f"{settings.daily_cap} starts already on {now.date()} (UTC)")
        request = StartRequest(
            snapshot_date=snapshot.snapshot_date,
            features_uri=snapshot.features_uri,
            reason=trigger.reason,
            token=token,
            description=f"{trigger.reason} | trigger {trigger.kind} event {trigger.event_id} | {trigger.origin}",
        )
        try:
            execution_arn = self._pipeline.start(request)
        except Exception as err:
            self._store.unreserve_daily_start(day=now.date())
            raise StartFailedError(skip(Outcome.START_FAILED, f"StartPipelineExecution failed: {err}")) from err
        held = self._store.mark_running(
            holder=token, execution_arn=execution_arn, now=now, hold_until=now + settings.max_run
        )
        reason = f"started for snapshot {snapshot.snapshot_date} ({trigger.kind})"
        if not held:
            reason += "; the start lock had expired before the start was recorded"
        return replace(skip(Outcome.STARTED, reason, execution_arn), daily_count=count)

    @staticmethod
    def _skip_factory(now: datetime, snapshot: FeatureSnapshot) -> _Skip:
        def make(outcome: Outcome, reason: str, execution_arn: str = "") -> Decision:
            return Decision(
                outcome=outcome,
                reason=reason,
                decided_at=now.isoformat(),
                execution_arn=execution_arn,
                snapshot_date=snapshot.snapshot_date.isoformat(),
                features_uri=snapshot.features_uri,
            )

        return make


_Skip = Callable[..., Decision]
