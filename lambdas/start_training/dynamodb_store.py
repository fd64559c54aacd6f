"""TriggerStore on one DynamoDB table (partition key `pk`, sort key `sk`, TTL attribute `expiration`).

Items: the lock (`lock`/`pipeline`), daily counters (`starts`/<YYYY-MM-DD>), the latest feature
snapshot (`features`/`latest`), audit records (`audit#<YYYY-MM-DD>`/<decided_at>#<request id>)
and Powertools' idempotency records (`idempotency#start_training`/<hash>). Only counters, audit
and idempotency records expire; the lock and the latest snapshot are permanent.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from .store import FREE, RUNNING, STARTING, FeatureSnapshot, LockAcquired, LockHeld, LockState

TTL_ATTRIBUTE = "expiration"
LOCK_KEY = {"pk": {"S": "lock"}, "sk": {"S": "pipeline"}}
FEATURES_KEY = {"pk": {"S": "features"}, "sk": {"S": "latest"}}
# Attribute names go through placeholders: several (state, count, ...) are DynamoDB reserved words.
_NAMES = {
    "#state": "state",
    "#holder": "holder",
    "#until": "hold_until",
    "#acquired": "acquired_at",
    "#arn": "execution_arn",
    "#last_start": "last_started_at",
    "#last_arn": "last_execution_arn",
}


def _epoch(moment: datetime) -> dict[str, str]:
    return {"N": str(int(moment.timestamp()))}


def _moment(attribute: dict[str, str] | None) -> datetime | None:
    return None if attribute is None else datetime.fromtimestamp(int(attribute["N"]), tz=UTC)


class DynamoDBTriggerStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._failed = client.exceptions.ConditionalCheckFailedException

    def try_acquire(self, *, holder: str, now: datetime, hold_until: datetime) -> LockAcquired | LockHeld:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=LOCK_KEY,
                UpdateExpression="SET #holder = :holder, #state = :starting, #acquired = :now, #until = :until "
                "REMOVE #arn",
                ConditionExpression="attribute_not_exists(pk) OR #state = :free OR #until < :now",
                ExpressionAttributeNames={k: _NAMES[k] for k in ("#holder", "#state", "#acquired", "#until", "#arn")},
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":starting": {"S": STARTING},
                    ":free": {"S": FREE},
                    ":now": _epoch(now),
                    ":until": _epoch(hold_until),
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self._failed as err:
            item = err.response.get("Item") or self._get(LOCK_KEY)
            return LockHeld(
                holder=item.get("holder", {}).get("S", "unknown"),
                state=item.get("state", {}).get("S", STARTING),
                execution_arn=item.get("execution_arn", {}).get("S"),
                hold_until=_moment(item.get("hold_until")) or now,
            )
        old = response.get("Attributes", {})
        return LockAcquired(
            last_started_at=_moment(old.get("last_started_at")),
            last_execution_arn=old.get("last_execution_arn", {}).get("S"),
        )

    def mark_running(self, *, holder: str, execution_arn: str, now: datetime, hold_until: datetime) -> bool:
        return self._conditional_update(
            update="SET #state = :running, #arn = :arn, #until = :until, #last_start = :now, #last_arn = :arn",
            condition="#holder = :holder",
            names=("#state", "#arn", "#until", "#last_start", "#last_arn", "#holder"),
            values={
                ":running": {"S": RUNNING},
                ":arn": {"S": execution_arn},
                ":until": _epoch(hold_until),
                ":now": _epoch(now),
                ":holder": {"S": holder},
            },
        )

    def release(self, *, holder: str, only_if_state: LockState | None = None) -> bool:
        condition = "#holder = :holder AND #state <> :free"
        values = {":holder": {"S": holder}, ":free": {"S": FREE}}
        if only_if_state is not None:
            condition += " AND #state = :expected"
            values[":expected"] = {"S": only_if_state}
        return self._conditional_update(
            update="SET #state = :free", condition=condition, names=("#state", "#holder"), values=values
        )

    def reserve_daily_start(self, *, day: date, cap: int, expires: datetime) -> int | None:
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=self._day_key(day),
                UpdateExpression="ADD #count :one SET #expiration = :expires",
                ConditionExpression="attribute_not_exists(#count) OR #count < :cap",
                ExpressionAttributeNames={"#count": "starts", "#expiration": TTL_ATTRIBUTE},
                ExpressionAttributeValues={":one": {"N": "1"}, ":cap": {"N": str(cap)}, ":expires": _epoch(expires)},
                ReturnValues="UPDATED_NEW",
            )
        except self._failed:
            return None
        return int(response["Attributes"]["starts"]["N"])

    def unreserve_daily_start(self, *, day: date) -> None:
        self._client.update_item(
            TableName=self._table,
            Key=self._day_key(day),
            UpdateExpression="ADD #count :minus_one",
            ConditionExpression="#count > :zero",
            ExpressionAttributeNames={"#count": "starts"},
            ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
        )

    def remember_features(self, snapshot: FeatureSnapshot) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **FEATURES_KEY,
                    "snapshot_date": {"S": snapshot.snapshot_date.isoformat()},
                    "features_uri": {"S": snapshot.features_uri},
                    "features_table": {"S": snapshot.features_table},
                },
                # ISO dates order as strings do.
                ConditionExpression="attribute_not_exists(pk) OR snapshot_date <= :date",
                ExpressionAttributeValues={":date": {"S": snapshot.snapshot_date.isoformat()}},
            )
        except self._failed:
            return False
        return True

    def latest_features(self) -> FeatureSnapshot | None:
        item = self._get(FEATURES_KEY)
        if not item:
            return None
        return FeatureSnapshot(
            snapshot_date=date.fromisoformat(item["snapshot_date"]["S"]),
            features_uri=item["features_uri"]["S"],
            features_table=item["features_table"]["S"],
        )

    def write_audit(self, record: dict[str, str | int]) -> None:
        decided_at = str(record["decided_at"])
        item: dict[str, dict[str, str]] = {
            "pk": {"S": f"audit#{decided_at[:10]}"},
            "sk": {"S": f"{decided_at}#{record['request_id']}"},
        }
        for name, value in record.items():
            if name == "expires_at":
                item[TTL_ATTRIBUTE] = {"N": str(value)}
            elif isinstance(value, int):
                item[name] = {"N": str(value)}
            elif value != "":
                item[name] = {"S": value}
        self._client.put_item(TableName=self._table, Item=item)

    def _conditional_update(
        self, *, update: str, condition: str, names: tuple[str, ...], values: dict[str, dict[str, str]]
    ) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key=LOCK_KEY,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: _NAMES[k] for k in names},
                ExpressionAttributeValues=values,
            )
        except self._failed:
            return False
        return True

    def _get(self, key: dict[str, dict[str, str]]) -> dict[str, Any]:
        item: dict[str, Any] = self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True).get(
            "Item", {}
        )
        return item

    @staticmethod
    def _day_key(day: date) -> dict[str, dict[str, str]]:
        return {"pk": {"S": "starts"}, "sk": {"S": day.isoformat()}}
