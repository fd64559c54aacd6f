"""parse -> idempotent decide -> audit: the whole trigger, importable and runnable without Lambda.

Idempotency (Powertools, DynamoDB persistence) is keyed on the trigger's key, so the same event
delivered twice is decided once: a second delivery after the first finished replays its decision
(outcome `duplicate`); one that arrives while the first is still deciding is recorded as
`duplicate_in_flight` and dropped, because that first invocation carries the same event to its own
retries and dead-letter queue. Distinct events meet at the pipeline lock (decision.py).
"""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from .audit import AuditTrail, Log
from .decision import Clock, Decider, Decision, Outcome, StartFailedError, utc_now
from .dynamodb_store import TTL_ATTRIBUTE, DynamoDBTriggerStore
from .events import MalformedEventError, Trigger, parse_trigger
from .pipeline import Pipeline, SageMakerPipeline
from .settings import TriggerSettings
from .store import TriggerStore

IDEMPOTENCY_PARTITION = "idempotency#start_training"


class TrainingTriggerService:
    def __init__(
        self,
        *,
        settings: TriggerSettings,
        store: TriggerStore,
        pipeline: Pipeline,
        clock: Clock = utc_now,
        log: Log | None = None,
        idempotency: BasePersistenceLayer | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._decider = Decider(settings, store, pipeline, clock)
        self._audit = AuditTrail(
            store,
            log or logging.getLogger("start_training"),
            env_name=settings.env_name,
            retention=settings.audit_retention,
        )
        self.idempotency_config = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=int(settings.duplicate_window.total_seconds()),
            response_hook=_mark_replay,
        )
        self._decide = (
            self._decide_once
            if idempotency is None
            else idempotent_function(
                data_keyword_argument="key", persistence_store=idempotency, config=self.idempotency_config
            )(self._decide_once)
        )

    def handle(self, event: object, *, request_id: str) -> Decision:
        """Decide on one event. Raises MalformedEventError (nothing started) or a start failure."""
        now = self._clock()
        try:
            trigger = parse_trigger(event, env_name=self._settings.env_name, today=now.date())
        except MalformedEventError as err:
            self._audit.rejected(err, event, request_id=request_id, at=now)
            raise
        try:
            result = self._decide(key={"key": trigger.key}, trigger=trigger)
        except IdempotencyAlreadyInProgressError:
            decision = Decision(
                Outcome.DUPLICATE_IN_FLIGHT, "the same event is being decided by another invocation", now.isoformat()
            )
        except StartFailedError as err:
            self._audit.decided(err.decision, trigger, request_id=request_id)
            raise
        else:
            decision = Decision.from_dict(result)
            if result.get("replayed"):
                decision = decision.as_replay(now)
        self._audit.decided(decision, trigger, request_id=request_id)
        return decision

    def _decide_once(self, *, key: dict[str, str], trigger: Trigger) -> dict[str, str | int]:
        return self._decider.decide(trigger).to_dict()


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools calls this only when it returns a stored result instead of running the function."""
    return {**response, "replayed": True} if isinstance(response, dict) else response


def build_service(
    settings: TriggerSettings, *, dynamodb: Any, sagemaker: Any, clock: Clock = utc_now, log: Log | None = None
) -> TrainingTriggerService:
    """The service on AWS clients: lock, counters, audit and idempotency records share one table."""
    idempotency = DynamoDBPersistenceLayer(
        table_name=settings.table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PARTITION,
        expiry_attr=TTL_ATTRIBUTE,
        boto3_client=dynamodb,
    )
    return TrainingTriggerService(
        settings=settings,
        store=DynamoDBTriggerStore(dynamodb, settings.table_name),
        pipeline=SageMakerPipeline(sagemaker, settings.pipeline_name),
        clock=clock,
        log=log,
        idempotency=idempotency,
    )
