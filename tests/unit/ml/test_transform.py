from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dataset.schema import parse_schema
from serving.transform import FeatureTransformer, TransformError, TransformStats
from training_jobs.splits import read_split

SMALL = {
    "name": "tiny",
    "version": "1",
    "target": {"column": "y", "positive": "gone"},
    "columns": [
        {"name": "id", "type": "string", "role": "id"},
        {"name": "y", "type": "string", "role": "target", "checks": {"allowed": ["gone", "stayed"]}},
        {"name": "colour", "type": "string", "role": "categorical", "checks": {"allowed": ["red", "blue"]}},
        {"name": "spend", "type": "double", "role": "numeric"},
        {"name": "months", "type": "integer", "role": "numeric"},
        {"name": "vip", "type": "boolean", "role": "boolean", "true_values": ["si"], "false_values": ["no"]},
    ],
    "engineered_features": [
        {"name": "per_month", "op": "ratio", "inputs": ["spend", "months"]},
        {"name": "log_spend", "op": "log1p", "inputs": ["spend"]},
        {"name": "reds", "op": "count_equal", "inputs": ["colour"], "value": "red"},
    ],
}


@pytest.fixture
def tiny():
    schema = parse_schema(SMALL, "tiny.yaml")
    frame = pd.DataFrame(
        {
            "colour": ["red", "blue", "red", None],
            "spend": [10.0, 20.0, np.nan, 40.0],
            "months": [0, 2, 4, 8],
            "vip": ["si", "no", "NO", None],
        }
    )
    return schema, frame


def test_fit_transform_shapes_and_encoding(tiny):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    assert t.feature_names == [
        "colour=red",
        "colour=blue",
        "vip",
        "spend",
        "months",
        "per_month",
        "log_spend",
        "reds",
    ]
    stats = TransformStats()
    x = t.transform(frame, stats)
    assert x.dtype == np.float32 and x.shape == (4, 8)
    assert x[:, :2].tolist() == [[1, 0], [0, 1], [1, 0], [0, 0]]
    assert x[:3, 2].tolist() == [1, 0, 0]
    assert stats.missing_values == {"colour": 1, "vip": 1, "spend": 1}
    # standardised numeric columns have mean ~0 on the fitting data
    assert np.allclose(x[:, 3:].mean(axis=0), 0, atol=1e-5)


def test_ratio_is_zero_when_denominator_is_zero(tiny):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    raw = t._engineer(
        t.engineered[0],
        {c: np.asarray(frame[c]) for c in t.input_fields},
        {"spend": np.array([10.0, 20.0, 20.0, 40.0]), "months": np.array([0.0, 2, 4, 8])},
    )
    assert raw.tolist() == [0.0, 10.0, 5.0, 5.0]


def test_unknown_category_is_all_zeros_and_counted(tiny):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    stats = TransformStats()
    x = t.transform({"colour": ["green"], "spend": [1.0], "months": [1], "vip": [True]}, stats)
    assert x[0, :2].tolist() == [0, 0]
    assert stats.unknown_categories == {"colour": 1}


def test_json_round_trip_gives_identical_output(tiny, tmp_path):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    t.save(tmp_path / "t.json")
    t2 = FeatureTransformer.load(tmp_path / "t.json")
    assert np.array_equal(t.transform(frame), t2.transform(frame))
    json.loads((tmp_path / "t.json").read_text())  # plain JSON


def test_bad_boolean_token_names_column_and_row(tiny):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    with pytest.raises(TransformError, match=r"column 'vip', row 1: 'maybe'"):
        t.transform({"colour": ["red", "red"], "spend": [1.0, 2.0], "months": [1, 1], "vip": ["si", "maybe"]})


def test_bad_number_and_missing_field(tiny):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    with pytest.raises(TransformError, match=r"column 'spend', row 0: expected a number"):
        t.transform({"colour": ["red"], "spend": ["ten"], "months": [1], "vip": ["si"]})
    with pytest.raises(TransformError, match=r"lacks fields \['months'\]"):
        t.transform({"colour": ["red"], "spend": [1.0], "vip": ["si"]})


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(TransformError, match="not found"):
        FeatureTransformer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(TransformError, match="not valid JSON"):
        FeatureTransformer.load(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text('{"format_version": 99}')
    with pytest.raises(TransformError, match="format_version"):
        FeatureTransformer.load(tmp_path / "old.json")


def test_real_data_transform_is_fast_and_finite(prep, schema):
    t = FeatureTransformer.load(prep / "transformer" / "transformer.json")
    frame, _ = read_split(prep / "train", schema)
    x = t.transform(frame)
    assert np.isfinite(x).all()
    # one-hot blocks: exactly one category per row for not-null categoricals
    j = 0
    for col in t.categorical:
        k = len(col["categories"])
        assert (x[:, j : j + k].sum(axis=1) == 1).all(), col["name"]
        j += k
    assert t.n_features == len(t.feature_names) == x.shape[1]
    assert "average_monthly_spend" in t.feature_names  # engineered features from the schema


def test_product_multiplies_values_and_category_indicators():
    spec = {
        **SMALL,
        "engineered_features": [
            {"name": "red_spend", "op": "product", "inputs": ["spend", "colour"], "value": "red"},
            {"name": "vip_months", "op": "product", "inputs": ["vip", "months"]},
        ],
    }
    schema = parse_schema(spec, "tiny.yaml")
    frame = pd.DataFrame(
        {
            "colour": ["red", "blue", "red", "red"],
            "spend": [10.0, 20.0, 30.0, 40.0],
            "months": [1, 2, 4, 8],
            "vip": ["si", "si", "no", None],
        }
    )
    t = FeatureTransformer.fit(frame, schema)
    cols = {c: np.asarray(frame[c]) for c in t.input_fields}
    nums = {"spend": frame["spend"].to_numpy(float), "months": frame["months"].to_numpy(float)}
    assert t._engineer(t.engineered[0], cols, nums).tolist() == [10.0, 0.0, 30.0, 40.0]
    # a missing boolean takes the training share of true (2 of 3)
    assert np.allclose(t._engineer(t.engineered[1], cols, nums), [1.0, 2.0, 0.0, 8 * 2 / 3])
    assert np.isfinite(t.transform(frame)).all()


@pytest.mark.parametrize(
    "feature, message",
    [
        ({"name": "p", "op": "product", "inputs": ["spend"]}, "at least 2 inputs"),
        ({"name": "p", "op": "product", "inputs": ["spend", "colour"]}, "needs a 'value'"),
    ],
)
def test_product_schema_errors(feature, message):
    from dataset.schema import SchemaError

    with pytest.raises(SchemaError, match=message):
        parse_schema({**SMALL, "engineered_features": [feature]}, "tiny.yaml")
