"""Engineered features: every op's parsed form, and every parse-time rejection with its message."""

from __future__ import annotations

import pytest

from dataset.schema import ENGINEERED_OPS, EngineeredFeature, load_schema
from tests.unit.dataset.conftest import document, parse, rejection, with_features


def test_every_op_is_known() -> None:
    assert ENGINEERED_OPS == ("ratio", "log1p", "count_equal", "product", "sum", "difference", "threshold")


def test_sum_of_n_columns() -> None:
    schema = parse(with_features({"name": "total", "op": "sum", "inputs": ["spend", "fees", "usage_minutes"]}))
    assert schema.engineered == (EngineeredFeature("total", "sum", ("spend", "fees", "usage_minutes")),)
    assert schema.engineered[0].params == {}


def test_difference_a_minus_b() -> None:
    (feat,) = parse(with_features({"name": "net", "op": "difference", "inputs": ["spend", "fees"]})).engineered
    assert (feat.op, feat.inputs, feat.params) == ("difference", ("spend", "fees"), {})


@pytest.mark.parametrize(("key", "given", "parsed"), [("at_least", 12, 12.0), ("at_most", 2.5, 2.5)])
def test_threshold_indicator(key: str, given: float, parsed: float) -> None:
    (feat,) = parse(with_features({"name": "loyal", "op": "threshold", "inputs": ["tenure"], key: given})).engineered
    assert feat.params == {key: parsed}
    assert (feat.at_least if key == "at_least" else feat.at_most) == parsed
    assert (feat.at_most if key == "at_least" else feat.at_least) is None


def test_threshold_on_a_boolean_and_a_usage_feature() -> None:
    schema = parse(with_features(
        {"name": "roams", "op": "threshold", "inputs": ["roaming"], "at_least": 1},
        {"name": "quiet", "op": "threshold", "inputs": ["usage_calls"], "at_most": 0},
    ))
    assert [f.name for f in schema.engineered] == ["roams", "quiet"]


def test_features_on_engineered_features_come_in_evaluation_order() -> None:
    schema = parse(with_features(
        {"name": "high_spender", "op": "threshold", "inputs": ["spend_per_month"], "at_least": 80},
        {"name": "log_total", "op": "log1p", "inputs": ["total"]},
        {"name": "spend_per_month", "op": "ratio", "inputs": ["total", "tenure"]},
        {"name": "total", "op": "sum", "inputs": ["spend", "fees"]},
    ))
    order = [f.name for f in schema.engineered]
    assert order == ["total", "log_total", "spend_per_month", "high_spender"]
    for i, feat in enumerate(schema.engineered):
        assert all(x not in order[i:] for x in feat.inputs)


def test_existing_ops_and_the_reference_schema_still_parse() -> None:
    schema = parse(with_features(
        {"name": "ratio_f", "op": "ratio", "inputs": ["spend", "tenure"]},
        {"name": "log_f", "op": "log1p", "inputs": ["spend"]},
        {"name": "count_f", "op": "count_equal", "inputs": ["plan"], "value": "pre"},
        {"name": "prod_f", "op": "product", "inputs": ["plan", "spend"], "value": "post"},
        {"name": "prod_g", "op": "product", "inputs": ["roaming", "spend"]},
        {"name": "roam_count", "op": "count_equal", "inputs": ["roaming"], "value": "ON"},
        {"name": "zero_count", "op": "count_equal", "inputs": ["tenure", "usage_calls"], "value": 0},
    ))
    assert [f.name for f in schema.engineered][:3] == ["ratio_f", "log_f", "count_f"]
    assert schema.engineered[2].params == {"value": "pre"}
    assert [f.op for f in load_schema("dataset/schemas/ibm_telco_churn.yaml").engineered] == \
        ["ratio", "log1p", "log1p", "count_equal"]


F = "tiny.yaml: engineered_features[0]"

REJECTIONS = [
    # unknown op / inputs
    ({"name": "x", "op": "mean", "inputs": ["spend"]},
     f"{F} (x).op 'mean' is not one of {list(ENGINEERED_OPS)}"),
    ({"name": "x", "op": "sum", "inputs": ["spend", "nope"]},
     f"{F} (x): input 'nope' is not a declared column, usage feature or engineered feature"),
    ({"name": "x", "op": "sum", "inputs": "spend"},
     f"{F} (x).inputs must be a non-empty list of names, got 'spend'"),
    ({"name": "x", "op": "sum", "inputs": ["spend", "spend"]}, f"{F} (x).inputs repeat ['spend']"),
    # id / target / passthrough / event_time / PII misuse
    ({"name": "x", "op": "count_equal", "inputs": ["account"], "value": "1"},
     f"{F} (x): input 'account' has role 'id'; inputs must be categorical, numeric or boolean columns, "
     "usage features or engineered features"),
    ({"name": "x", "op": "count_equal", "inputs": ["churned"], "value": "yes"},
     f"{F} (x): input 'churned' has role 'target'; inputs must be categorical, numeric or boolean columns, "
     "usage features or engineered features"),
    ({"name": "x", "op": "threshold", "inputs": ["seen_at"], "at_least": 1},
     f"{F} (x): input 'seen_at' has role 'event_time'; inputs must be categorical, numeric or boolean "
     "columns, usage features or engineered features"),
    ({"name": "x", "op": "count_equal", "inputs": ["phone"], "value": "1"},
     f"{F} (x): input 'phone' is PII (pii: true) and never used as a feature"),
    # categorical into a numeric op
    ({"name": "x", "op": "sum", "inputs": ["spend", "plan"]},
     f"{F} (x): op 'sum' needs numeric or boolean inputs; 'plan' is categorical"),
    ({"name": "x", "op": "difference", "inputs": ["plan", "spend"]},
     f"{F} (x): op 'difference' needs numeric or boolean inputs; 'plan' is categorical"),
    # arity
    ({"name": "x", "op": "sum", "inputs": ["spend"]}, f"{F} (x): op 'sum' takes at least 2 inputs, got 1"),
    ({"name": "x", "op": "difference", "inputs": ["spend", "fees", "tenure"]},
     f"{F} (x): op 'difference' takes 2 input(s), got 3"),
    ({"name": "x", "op": "threshold", "inputs": ["spend", "fees"], "at_least": 1},
     f"{F} (x): op 'threshold' takes 1 input(s), got 2"),
    ({"name": "x", "op": "ratio", "inputs": ["spend"]}, f"{F} (x): op 'ratio' takes 2 input(s), got 1"),
    ({"name": "x", "op": "product", "inputs": ["spend"]}, f"{F} (x): op 'product' takes at least 2 inputs, got 1"),
    # missing / extra / wrong parameters
    ({"name": "x", "op": "threshold", "inputs": ["tenure"]},
     f"{F} (x): op 'threshold' needs exactly one of ['at_least', 'at_most']"),
    ({"name": "x", "op": "threshold", "inputs": ["tenure"], "at_least": 1, "at_most": 5},
     f"{F} (x): op 'threshold' needs exactly one of ['at_least', 'at_most']"),
    ({"name": "x", "op": "threshold", "inputs": ["tenure"], "at_least": "12"},
     f"{F} (x).at_least must be a number, got '12'"),
    ({"name": "x", "op": "threshold", "inputs": ["tenure"], "at_least": 1, "value": 3},
     f"{F} (x): op 'threshold' does not take ['value'] (it takes ['at_least', 'at_most'])"),
    ({"name": "x", "op": "sum", "inputs": ["spend", "fees"], "at_most": 3},
     f"{F} (x): op 'sum' does not take ['at_most'] (it takes no parameters)"),
    ({"name": "x", "op": "ratio", "inputs": ["spend", "fees"], "value": 0},
     f"{F} (x): op 'ratio' does not take ['value'] (it takes no parameters)"),
    ({"name": "x", "op": "count_equal", "inputs": ["plan"]}, f"{F} (x): op 'count_equal' needs a 'value'"),
    ({"name": "x", "op": "sum", "inputs": ["spend", "fees"], "weights": [1, 2]},
     "tiny.yaml: unknown key(s) ['engineered_features[0] (x).weights']; allowed: "
     "['at_least', 'at_most', 'inputs', 'name', 'op', 'value']"),
    ({"name": "x", "op": "product", "inputs": ["plan", "spend"]},
     f"{F} (x): op 'product' with a categorical input needs a 'value' (the category whose indicator "
     "enters the product)"),
    ({"name": "x", "op": "product", "inputs": ["tenure", "spend"], "value": 2},
     f"{F} (x): op 'product' takes a 'value' only with a categorical input"),
    # a value that can never match
    ({"name": "x", "op": "count_equal", "inputs": ["plan"], "value": "family"},
     f"{F} (x): value 'family' can never equal input 'plan' (categories ['pre', 'post'])"),
    ({"name": "x", "op": "count_equal", "inputs": ["roaming"], "value": "yes"},
     f"{F} (x): value 'yes' can never equal input 'roaming' (true/false or a boolean token ['on', 'off'])"),
    ({"name": "x", "op": "count_equal", "inputs": ["tenure"], "value": "0"},
     f"{F} (x): value '0' can never equal input 'tenure' (numeric input: the value must be a number)"),
    # names
    ({"name": "spend", "op": "log1p", "inputs": ["fees"]},
     "tiny.yaml: engineered_features[0].name 'spend' must be a new lower_snake_case name (it is already a "
     "column, usage or engineered feature)"),
    ({"name": "Bad-Name", "op": "log1p", "inputs": ["fees"]},
     "tiny.yaml: engineered_features[0].name 'Bad-Name' must be a new lower_snake_case name"),
]


@pytest.mark.parametrize(("feature", "message"), REJECTIONS, ids=[m.split(": ", 2)[-1][:40] for _, m in REJECTIONS])
def test_rejected_at_parse_time_with_one_line(feature: dict, message: str) -> None:
    assert rejection(with_features(feature)) == message


def test_self_reference_is_a_cycle() -> None:
    message = rejection(with_features({"name": "loop", "op": "sum", "inputs": ["spend", "loop"]}))
    assert message == "tiny.yaml: engineered_features[0] (loop): inputs form a cycle loop -> loop"


def test_cycle_between_engineered_features_names_the_path() -> None:
    message = rejection(with_features(
        {"name": "ok", "op": "log1p", "inputs": ["spend"]},
        {"name": "a", "op": "sum", "inputs": ["ok", "b"]},
        {"name": "b", "op": "difference", "inputs": ["c", "spend"]},
        {"name": "c", "op": "ratio", "inputs": ["a", "tenure"]},
        {"name": "downstream", "op": "log1p", "inputs": ["a"]},
    ))
    assert message == "tiny.yaml: engineered_features[1] (a): inputs form a cycle a -> b -> c -> a"


def test_duplicate_engineered_names() -> None:
    message = rejection(with_features(
        {"name": "twice", "op": "log1p", "inputs": ["spend"]},
        {"name": "twice", "op": "log1p", "inputs": ["fees"]},
    ))
    assert message == ("tiny.yaml: engineered_features[1].name 'twice' must be a new lower_snake_case name "
                       "(it is already a column, usage or engineered feature)")


def test_engineered_features_must_be_a_list() -> None:
    assert rejection(document(engineered_features={"name": "x"})) == "tiny.yaml: engineered_features must be a list"
