"""The approval event is validated field by field: ≥ 200 mutations of a valid event each fail with a typed
error naming the field, and nothing is written or deployed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdas.deployer.errors import InvalidEventError
from lambdas.deployer.events import parse_approval_event
from lambdas.deployer.settings import DeployerSettings
from tests.unit.lambdas.deployer.conftest import ACCOUNT, GROUP, REGION, Cloud, approval_event, settings_document
from tests.unit.lambdas.deployer.flow import receive

SETTINGS = DeployerSettings.model_validate(settings_document())
ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/3"
VALID = approval_event(ARN)
# (path, field named in the error): every field the deployer relies on
REQUIRED = [
    (("source",), "source"),
    (("detail-type",), "detail-type"),
    (("account",), "account"),
    (("region",), "region"),
    (("detail",), "detail"),
    (("detail", "ModelPackageArn"), "detail.ModelPackageArn"),
    (("detail", "ModelPackageGroupName"), "detail.ModelPackageGroupName"),
    (("detail", "ModelPackageVersion"), "detail.ModelPackageVersion"),
    (("detail", "ModelApprovalStatus"), "detail.ModelApprovalStatus"),
]
BAD_VALUES: list[Any] = [
    None, 0, -1, 1.5, True, False, "", " ", "x" * 3000, [], {}, ["Approved"], {"a": 1}, "null", "None", "true",
    10**30, -(10**30), float("inf"), [None], {"": ""}, "\u0000", "\U0001f642", "Approved\n", b"bytes".decode(),
]
WRONG_STRINGS = {
    ("source",): ["aws.s3", "aws.sagemaker ", "AWS.SAGEMAKER", "custom.sagemaker"],
    ("detail-type",): ["SageMaker Endpoint State Change", "sagemaker model package state change"],
    ("account",): ["111111111111", "12345678901", "1234567890123", "abcdefghijkl"],
    ("region",): ["us-east-1", "eu-west", "mars-1"],
    ("detail", "ModelPackageArn"): [
        ARN[:-1] + "4", ARN.replace(GROUP, "other-group"), ARN.replace(ACCOUNT, "111111111111"),
        ARN.replace(REGION, "us-east-1"), ARN.replace("model-package/", "model/"), ARN.rsplit("/", 1)[0],
        ARN + "/extra", ARN.replace("arn:aws:", "arn:xyz:"), "not-an-arn", ARN.upper(),
    ],
    ("detail", "ModelPackageGroupName"): ["telecom-ml-prod-churn", "telecom-ml-dev-churn-", "-x", "a b"],
    ("detail", "ModelPackageVersion"): [0, -3, 4, "3", 3.0],
    ("detail", "ModelApprovalStatus"): ["approved", "APPROVED", "Approve", "Deleted"],
}


def mutated(path: tuple[str, ...], value: Any = ..., delete: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(VALID)
    node = event
    for part in path[:-1]:
        node = node[part]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return event


def _cases() -> list[tuple[str, dict[str, Any], str]]:
    cases = [(f"drop {'.'.join(p)}", mutated(p, delete=True), f) for p, f in REQUIRED]
    for path, field in REQUIRED:
        for i, value in enumerate(BAD_VALUES):
            if path == ("detail",) and isinstance(value, dict):
                continue  # an empty/odd detail is covered by its own fields
            if _valid_value(path) == value and type(_valid_value(path)) is type(value):
                continue
            cases.append((f"{'.'.join(path)} bad {i}", mutated(path, value), field))
    for path, values in WRONG_STRINGS.items():
        field = dict(REQUIRED)[path]
        for i, value in enumerate(values):
            cases.append((f"{'.'.join(path)} wrong {i}", mutated(path, value), field))
    cases.append(("resources other", mutated(("resources",), ["arn:aws:sagemaker:x"]), "resources"))
    return cases


def _valid_value(path: tuple[str, ...]) -> Any:
    node: Any = VALID
    for part in path:
        node = node[part]
    return node


CASES = _cases()
AGREEING = {"detail.ModelPackageArn": ("resources",), "detail.ModelPackageVersion": ("detail.ModelPackageArn",)}


def test_the_valid_event_parses() -> None:
    assert parse_approval_event(VALID, SETTINGS).detail.ModelPackageVersion == 3


def test_there_are_at_least_200_mutations() -> None:
    assert len(CASES) >= 200, len(CASES)


@pytest.mark.parametrize(("name", "event", "field"), CASES, ids=[c[0] for c in CASES])
def test_each_mutation_fails_naming_its_field(name: str, event: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidEventError) as err:
        parse_approval_event(event, SETTINGS)
    named = err.value.field
    # ARN, version and resources must agree: a disagreement is reported on the ARN (what would be deployed).
    assert named == field or named.startswith(f"{field}.") or named in AGREEING.get(field, ()), (named, str(err.value))


def test_non_object_events_are_refused() -> None:
    for event in (None, "text", 3, []):
        with pytest.raises(InvalidEventError, match=r"\(event\)"):
            parse_approval_event(event, SETTINGS)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)
@given(path=st.sampled_from([p for p, _ in REQUIRED]), value=_json)
def test_random_values_in_required_fields_fail_or_are_the_valid_value(path: tuple[str, ...], value: Any) -> None:
    event = mutated(path, value)
    node: Any = VALID
    for part in path:
        node = node[part]
    if value == node and type(value) is type(node):
        return
    with pytest.raises(InvalidEventError) as err:
        parse_approval_event(event, SETTINGS)
    assert err.value.field != "(event)"


def test_a_malformed_event_writes_and_deploys_nothing(cloud: Cloud) -> None:
    for _, event, _ in CASES:
        with pytest.raises(InvalidEventError):
            receive(cloud, event)
    assert cloud.ctx.ledger.lock() == {}
    assert cloud.ctx.ledger.table.scan()["Items"] == []
    assert [op for op in cloud.operations()[1:] if not op.startswith(("Describe", "List"))] == []
