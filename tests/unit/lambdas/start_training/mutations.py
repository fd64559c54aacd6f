"""A systematic generator of malformed events: each mutation breaks ONE field of a valid event and
names the field the error must name."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready

HUGE = "s" * 100_000
WRONG_TYPES: dict[str, Any] = {
    "null": None,
    "int": 7,
    "negative": -1,
    "float": 1.5,
    "true": True,
    "false": False,
    "empty-list": [],
    "list": ["x"],
    "empty-object": {},
    "object": {"a": 1},
}
ENVELOPE = ("version", "id", "source", "account", "time", "region", "resources", "detail-type", "detail")
# Values of another JSON type that are still valid for a field (pydantic's lax mode: a number is a
# timestamp; no resources is a valid list; an empty detail fails on its first field instead).
STILL_VALID = {
    ("time", "int"),
    ("time", "negative"),
    ("time", "float"),
    ("resources", "empty-list"),
    ("resources", "list"),
}
FIRST_FIELD_OF_EMPTY_DETAIL = "detail.features_uri"


@dataclass(frozen=True)
class Mutation:
    name: str
    event: object
    field: str


def features_ready_mutations() -> Iterator[Mutation]:
    valid = features_ready()
    for name, event in (("list", [valid]), ("string", "{}"), ("null", None), ("number", 42)):
        yield Mutation(f"event-is-{name}", event, "(event)")
    yield from _envelope_mutations(valid)
    yield from _value_mutations(valid)
    for field in valid["detail"]:
        yield Mutation(f"drop-detail.{field}", _without(valid, "detail", field), f"detail.{field}")
        for label, bad in [*WRONG_TYPES.items(), ("empty-string", ""), ("huge", HUGE)]:
            yield Mutation(f"detail.{field}-{label}", _with(valid, ("detail", field), bad), f"detail.{field}")


def alarm_mutations() -> Iterator[Mutation]:
    valid = drift_alarm()
    yield Mutation("alarm-detail-type", _with(valid, ("detail-type",), "FeaturesReady"), "detail-type")
    yield Mutation("drop-alarmName", _without(valid, "detail", "alarmName"), "detail.alarmName")
    yield Mutation("drop-state", _without(valid, "detail", "state"), "detail.state")
    for label, bad in [*WRONG_TYPES.items(), ("empty-string", ""), ("huge", HUGE)]:
        yield Mutation(f"alarmName-{label}", _with(valid, ("detail", "alarmName"), bad), "detail.alarmName")
    for name in ("telecom-ml-prod-retrain-tenure-drift", "telecom-ml-dev-ops-dlq-depth", "retrain-dev"):
        yield Mutation(f"alarmName-{name}", _with(valid, ("detail", "alarmName"), name), "detail.alarmName")
    for value in ("OK", "INSUFFICIENT_DATA", "alarm", None, 1):
        yield Mutation(f"state-{value}", _with(valid, ("detail", "state", "value"), value), "detail.state.value")
    for label, bad in (("drop", ...), ("short", "2026"), ("huge", HUGE), ("int", 5)):
        yield Mutation(
            f"timestamp-{label}", _with(valid, ("detail", "state", "timestamp"), bad), "detail.state.timestamp"
        )


def _envelope_mutations(valid: dict[str, Any]) -> Iterator[Mutation]:
    for field in ENVELOPE:
        expected = field
        yield Mutation(f"drop-{field}", _without(valid, field), expected)
        for label, bad in WRONG_TYPES.items():
            if (field, label) in STILL_VALID:
                continue
            # An object without the detail fields is a detail: its first missing field is named.
            got = FIRST_FIELD_OF_EMPTY_DETAIL if field == "detail" and isinstance(bad, dict) else expected
            yield Mutation(f"{field}-{label}", _with(valid, (field,), bad), got)


def _value_mutations(valid: dict[str, Any]) -> Iterator[Mutation]:
    cases: list[tuple[tuple[str, ...], Any, str]] = [
        *[(("source",), v, "source") for v in ("aws.s3", "", "telecom-ml.data-lake ", "TELECOM-ML.DATA-LAKE", HUGE)],
        (("source",), "aws.cloudwatch", "detail-type"),  # a known source with the other source's detail-type
        *[(("detail-type",), v, "detail-type") for v in ("featuresready", "FeaturesReady ", "Object Created", "")],
        (("detail-type",), HUGE, "detail-type"),
        *[(("account",), v, "account") for v in ("12345", "abcdefghijkl", "", "1234567890123")],
        *[(("id",), v, "id") for v in ("", HUGE)],
        *[(("time",), v, "time") for v in ("yesterday", "2026-13-01T00:00:00Z", "")],
        (("resources",), [1], "resources.0"),
    ]
    raw = "s3://telecom-ml-dev-raw-a1b2c3/subscribers/"
    for value in (
        f"{raw}subscribers.csv",  # no ingest_date segment
        f"{raw}ingest_date=2026-02-30/subscribers.csv",
        f"{raw}ingest_date=2026-13-01/subscribers.csv",
        f"{raw}ingest_date=20261120/subscribers.csv",
        f"{raw}ingest_date=26-11-20/subscribers.csv",
        f"{raw}ingest_date=/subscribers.csv",
        f"{raw}ingest_date=2999-01-01/subscribers.csv",  # in the future
        f"{raw}ingest_date=1999-12-31/subscribers.csv",  # before any plausible snapshot
        f"{raw}ingest_date=2026-11-20",  # no object after the partition
        "http://telecom-ml-dev-raw-a1b2c3/subscribers/ingest_date=2026-11-20/x.csv",
        "s3://Bad_Bucket/subscribers/ingest_date=2026-11-20/x.csv",
        "subscribers/ingest_date=2026-11-20/x.csv",
    ):
        cases.append((("detail", "raw_object"), value, "detail.raw_object"))
    for value in ("http://bucket/features/", "s3://UPPER/features/", "s3://b/", "s3:/bucket/x", "s3://bucket /x"):
        cases.append((("detail", "features_uri"), value, "detail.features_uri"))
    for value in ("db.table.extra", "db table", "db;drop"):
        cases.append((("detail", "features_table"), value, "detail.features_table"))
    for value in (
        "run-1",
        "arn:aws:lambda:eu-west-1:123456789012:function:x",
        "arn:aws:states:eu-west-1:1:execution:a:b",
    ):
        cases.append((("detail", "execution"), value, "detail.execution"))
    for value in ("prod", "staging", "dev-eu", "DEV", "dev ", "d"):
        cases.append((("detail", "environment"), value, "detail.environment"))
    for number, (path, value, field) in enumerate(cases):
        yield Mutation(f"{'.'.join(path)}#{number}={str(value)[-40:]!r}", _with(valid, path, value), field)


def _with(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A deep copy of `event` with `path` set to `value` (Ellipsis removes it)."""
    mutated = copy.deepcopy(event)
    node = mutated
    for part in path[:-1]:
        node = node[part]
    if value is ...:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return mutated


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    return _with(event, path, ...)
