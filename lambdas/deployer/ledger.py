"""The deployment ledger (one DynamoDB table): dedupe, the endpoint lock with its queue, and what exists.

Items (partition key `pk`):
- `package#<arn>`: one per approved package: status received | queued | deploying | deployed | failed
  | withdrawn. Created with a conditional write, so the same approval delivered twice deploys once.
- `lock`: `holder` (package being deployed), `execution`, `expires_at` (a lease, so an aborted execution
  cannot block the endpoint for ever) and `queue` (approvals that arrived while it was held, in order).
  Acquire-or-enqueue and release-or-hand-over are single-item conditional updates: an approval that
  arrives during a deployment is either the next holder or in the queue, never lost between the two.
- `resources`: string sets of every model and endpoint configuration the deployer created (teardown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from .errors import LedgerContentionError

LOCK_KEY = "lock"
RESOURCES_KEY = "resources"
# A claim in one of these states makes a new approval of the same package a duplicate. A package that was
# withdrawn (no longer Approved when its turn came) may be approved again and deployed then.
ACTIVE_STATES = ("received", "queued", "deploying", "deployed", "failed")
_ATTEMPTS = 5


def package_key(package_arn: str) -> dict[str, str]:
    return {"pk": f"package#{package_arn}"}


def _conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Ledger:
    table: Any  # boto3 DynamoDB Table resource

    def claim(self, package_arn: str, version: int, execution: str, now: int) -> bool:
        """True if this approval is new; False if the same approval was already received."""
        try:
            self.table.put_item(
                Item={**package_key(package_arn), "status": "received", "version": version,
                      "execution": execution, "updated_at": now},
                ConditionExpression="attribute_not_exists(pk) OR NOT #s IN (" + _states() + ")",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={f":s{i}": s for i, s in enumerate(ACTIVE_STATES)},
            )
        except ClientError as error:
            if _conditional_failure(error):
                return False
            raise
        return True

    def set_status(self, package_arn: str, status: str, now: int, reason: str = "") -> None:
        self.table.update_item(
            Key=package_key(package_arn),
            UpdateExpression="SET #s = :s, updated_at = :t, reason = :r",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status, ":t": now, ":r": reason},
        )

    def status(self, package_arn: str) -> str | None:
        item = self.table.get_item(Key=package_key(package_arn), ConsistentRead=True).get("Item")
        return None if item is None else str(item["status"])

    def acquire_or_enqueue(
        self, package_arn: str, execution: str, now: int, lease_seconds: int
    ) -> Literal["acquired", "queued"]:
        for _ in range(_ATTEMPTS):
            try:
                self.table.update_item(
                    Key={"pk": LOCK_KEY},
                    UpdateExpression="SET holder = :p, execution = :e, expires_at = :x",
                    ConditionExpression="attribute_not_exists(holder) OR expires_at < :now",
                    ExpressionAttributeValues={":p": package_arn, ":e": execution, ":x": now + lease_seconds,
                                               ":now": now},
                )
                return "acquired"
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
            try:
                self.table.update_item(
                    Key={"pk": LOCK_KEY},
                    UpdateExpression="SET #q = list_append(if_not_exists(#q, :empty), :p)",
                    ConditionExpression="attribute_exists(holder) AND expires_at >= :now",
                    ExpressionAttributeNames={"#q": "queue"},
                    ExpressionAttributeValues={":p": [package_arn], ":empty": [], ":now": now},
                )
                return "queued"
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
        raise LedgerContentionError("the endpoint lock changed on every attempt")

    def release_or_hand_over(self, holder: str, execution: str, now: int, lease_seconds: int) -> str | None:
        """Hand the lock to the first queued package (returned), or release it when the queue is empty."""
        for _ in range(_ATTEMPTS):
            item = self.table.get_item(Key={"pk": LOCK_KEY}, ConsistentRead=True).get("Item") or {}
            if item.get("holder") != holder:
                return None  # the lease expired and someone else holds it: nothing of ours to release
            queue = list(item.get("queue") or [])
            try:
                if queue:
                    self.table.update_item(
                        Key={"pk": LOCK_KEY},
                        UpdateExpression="SET holder = :next, execution = :e, expires_at = :x REMOVE #q[0]",
                        ConditionExpression="holder = :me AND #q[0] = :next",
                        ExpressionAttributeNames={"#q": "queue"},
                        ExpressionAttributeValues={":next": queue[0], ":me": holder, ":e": execution,
                                                   ":x": now + lease_seconds},
                    )
                    return str(queue[0])
                self.table.update_item(
                    Key={"pk": LOCK_KEY},
                    UpdateExpression="REMOVE holder, execution, expires_at",
                    ConditionExpression="holder = :me AND (attribute_not_exists(#q) OR size(#q) = :zero)",
                    ExpressionAttributeNames={"#q": "queue"},
                    ExpressionAttributeValues={":me": holder, ":zero": 0},
                )
                return None
            except ClientError as error:
                if not _conditional_failure(error):
                    raise
        raise LedgerContentionError("the endpoint queue changed on every attempt")

    def lock(self) -> dict[str, Any]:
        item: dict[str, Any] = self.table.get_item(Key={"pk": LOCK_KEY}, ConsistentRead=True).get("Item") or {}
        return item

    def record_resource(self, kind: Literal["models", "endpoint_configs"], name: str) -> None:
        self.table.update_item(
            Key={"pk": RESOURCES_KEY},
            UpdateExpression="ADD #k :n",
            ExpressionAttributeNames={"#k": kind},
            ExpressionAttributeValues={":n": {name}},
        )

    def resources(self) -> dict[str, set[str]]:
        item = self.table.get_item(Key={"pk": RESOURCES_KEY}, ConsistentRead=True).get("Item") or {}
        return {kind: set(item.get(kind) or ()) for kind in ("models", "endpoint_configs")}

    def forget_resource(self, kind: Literal["models", "endpoint_configs"], name: str) -> None:
        self.table.update_item(
            Key={"pk": RESOURCES_KEY},
            UpdateExpression="DELETE #k :n",
            ExpressionAttributeNames={"#k": kind},
            ExpressionAttributeValues={":n": {name}},
        )


def _states() -> str:
    return ", ".join(f":s{i}" for i in range(len(ACTIVE_STATES)))
