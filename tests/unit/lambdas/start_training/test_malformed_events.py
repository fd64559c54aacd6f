"""Malformed events: each is a typed error naming the field at fault, is audited, and starts nothing."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.start_training.events import MalformedEventError, WrongEnvironmentError, parse_trigger
from tests.unit.lambdas.start_training.conftest import Aws
from tests.unit.lambdas.start_training.mutations import alarm_mutations, features_ready_mutations
from tests.unit.lambdas.start_training.sample_events import drift_alarm, features_ready

MUTATIONS = [*features_ready_mutations(), *alarm_mutations()]
TODAY = date(2026, 11, 21)


def test_there_are_at_least_200_distinct_mutations() -> None:
    assert len(MUTATIONS) >= 200
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)


def test_the_unmutated_events_are_valid() -> None:
    assert parse_trigger(features_ready(), env_name="dev", today=TODAY).kind == "features_ready"
    assert parse_trigger(drift_alarm(), env_name="dev", today=TODAY).kind == "alarm"


def test_every_mutation_is_rejected_naming_its_field_and_nothing_starts(aws: Aws) -> None:
    service = aws.service()
    wrong: list[str] = []
    for number, mutation in enumerate(MUTATIONS):
        try:
            service.handle(mutation.event, request_id=f"mutation-{number}")
        except MalformedEventError as err:
            if err.field != mutation.field or len(str(err)) > 400:
                wrong.append(f"{mutation.name}: named {err.field!r} ({str(err)[:120]}), expected {mutation.field!r}")
        except Exception as err:
            wrong.append(f"{mutation.name}: raised {type(err).__name__}: {str(err)[:120]}")
        else:
            wrong.append(f"{mutation.name}: accepted")
    assert not wrong, "\n".join(wrong)

    assert aws.executions() == []
    assert aws.item("lock", "pipeline") == {} and aws.item("features", "latest") == {}
    audit = aws.audit()
    assert len(audit) == len(MUTATIONS)
    assert {r["outcome"] for r in audit} == {"rejected"}
    assert sorted(r["field"] for r in audit) == sorted(m.field for m in MUTATIONS)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (features_ready(env="prod"), "detail.environment"),
        (drift_alarm(name="telecom-ml-prod-retrain-tenure-drift"), "detail.alarmName"),
    ],
)
def test_an_event_for_another_environment_is_a_wrong_environment_error(event: dict[str, Any], field: str) -> None:
    with pytest.raises(WrongEnvironmentError) as caught:
        parse_trigger(event, env_name="dev", today=TODAY)
    assert caught.value.field == field


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
_detail_keys = st.sampled_from(["features_uri", "features_table", "raw_object", "execution", "environment", "x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(detail=st.dictionaries(_detail_keys, _json, max_size=6))
def test_arbitrary_details_are_rejected_with_a_typed_error(detail: dict[str, Any]) -> None:
    event = {**features_ready(), "detail": detail}
    with pytest.raises(MalformedEventError) as caught:
        parse_trigger(event, env_name="dev", today=TODAY)
    assert caught.value.field.startswith("detail")


@settings(max_examples=200, deadline=None)
@given(event=_json)
def test_arbitrary_json_is_rejected_with_a_typed_error(event: object) -> None:
    with pytest.raises(MalformedEventError):
        parse_trigger(event, env_name="dev", today=TODAY)
