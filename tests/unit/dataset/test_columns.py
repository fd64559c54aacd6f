"""Column options: learned vocabularies, the id length cap, and source.rename."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dataset.schema import DEFAULT_ID_MAX_LENGTH, Vocabulary, rename_columns
from tests.unit.dataset.conftest import BASE, document, parse, rejection


def _with_column(index: int, **changes: Any) -> dict[str, Any]:
    columns = copy.deepcopy(BASE["columns"])
    columns[index] = {**columns[index], **changes}
    return document(columns=columns)


PLAN = 4  # index of the categorical column in BASE
LEARNED = {"checks": {}, "vocabulary": {"learn": True, "min_frequency": 10, "other_bucket": "__rare__"}}


def test_learned_vocabulary_with_an_other_bucket() -> None:
    schema = parse(_with_column(PLAN, **LEARNED))
    plan = schema.column("plan")
    assert plan.vocabulary == Vocabulary(min_frequency=10, other_bucket="__rare__")
    assert plan.allowed is None
    assert schema.learned_vocabulary_columns == ["plan"]
    assert "plan" in schema.categorical_columns


def test_learned_vocabulary_defaults() -> None:
    plan = parse(_with_column(PLAN, checks={"not_null": True}, vocabulary={"learn": True})).column("plan")
    assert plan.vocabulary == Vocabulary(min_frequency=1, other_bucket="__other__")
    assert plan.not_null and plan.allowed is None


def test_fixed_categories_have_no_vocabulary() -> None:
    schema = parse(document())
    assert schema.column("plan").vocabulary is None and schema.learned_vocabulary_columns == []


C = "tiny.yaml: columns[4] (plan)"

VOCABULARY_REJECTIONS = [
    ({"vocabulary": {"learn": True}},
     f"{C}: declare either checks.allowed (fixed categories) or vocabulary (learned at fit time), not both"),
    ({"checks": {}},
     f"{C}: a categorical column needs checks.allowed (its categories) or vocabulary: {{learn: true}} "
     "(categories learned at fit time)"),
    ({"checks": {}, "vocabulary": {"learn": False}},
     f"{C}.vocabulary.learn must be true (for fixed categories use checks.allowed), got False"),
    ({"checks": {}, "vocabulary": {"min_frequency": 3}},
     f"{C}.vocabulary.learn must be true (for fixed categories use checks.allowed), got None"),
    ({"checks": {}, "vocabulary": {"learn": True, "min_frequency": 0}},
     f"{C}.vocabulary.min_frequency must be a positive integer, got 0"),
    ({"checks": {}, "vocabulary": {"learn": True, "other_bucket": ""}},
     f"{C}.vocabulary.other_bucket must be a non-empty string, got ''"),
    ({"checks": {}, "vocabulary": {"learn": True, "max_size": 5}},
     f"tiny.yaml: unknown key(s) ['{C.removeprefix('tiny.yaml: ')}.vocabulary.max_size']; allowed: "
     "['learn', 'min_frequency', 'other_bucket']"),
]


@pytest.mark.parametrize(("changes", "message"), VOCABULARY_REJECTIONS)
def test_vocabulary_rejections(changes: dict[str, Any], message: str) -> None:
    assert rejection(_with_column(PLAN, **changes)) == message


def test_vocabulary_only_on_categoricals() -> None:
    message = rejection(_with_column(6, vocabulary={"learn": True}))
    assert message == "tiny.yaml: columns[6] (spend): vocabulary applies to role 'categorical', not 'numeric'"


def test_id_length_cap_default_and_declared() -> None:
    schema = parse(document())
    assert schema.column("account").max_length == DEFAULT_ID_MAX_LENGTH == 128
    assert schema.column("phone").max_length is None  # only ids get the default
    schema = parse(_with_column(0, checks={"max_length": 16}))
    assert schema.column("account").max_length == 16
    assert parse(_with_column(2, checks={"max_length": 20})).column("phone").max_length == 20


@pytest.mark.parametrize(("index", "checks", "message"), [
    (0, {"max_length": 0}, "tiny.yaml: columns[0] (account).checks.max_length must be a positive integer, got 0"),
    (0, {"max_length": "64"},
     "tiny.yaml: columns[0] (account).checks.max_length must be a positive integer, got '64'"),
    (5, {"max_length": 3}, "tiny.yaml: columns[5] (tenure).checks.max_length applies to string columns, not integer"),
])
def test_length_cap_rejections(index: int, checks: dict[str, Any], message: str) -> None:
    assert rejection(_with_column(index, checks=checks)) == message


def test_rename_columns_applies_source_rename() -> None:
    schema = parse(document())
    assert schema.source_rename == {"rownames": "account"}
    assert rename_columns(schema, ["rownames", "churned", "extra"]) == ["account", "churned", "extra"]
    assert rename_columns(schema, ("account", "churned")) == ["account", "churned"]
    assert rename_columns(parse(document(source={})), ["rownames"]) == ["rownames"]


@pytest.mark.parametrize(("rename", "message"), [
    ({"rownames": "nope"}, "tiny.yaml: source.rename targets ['nope'] are not declared columns"),
    ({"a": "account", "b": "account"}, "tiny.yaml: source.rename maps several raw names onto ['account']"),
    ({"plan": "account"}, "tiny.yaml: source.rename renames declared column(s) ['plan'] away"),
    (["rownames"], "tiny.yaml: source.rename must map raw header names to column names, got ['rownames']"),
])
def test_rename_rejections(rename: Any, message: str) -> None:
    assert rejection(document(source={"rename": rename})) == message
