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


# --------------------------------------------------------------------- sum, difference, threshold
OPS_FRAME = pd.DataFrame(
    {
        "colour": ["red", "blue", "red", "blue"],
        "spend": [10.0, 20.0, np.nan, 40.0],
        "months": [1, 2, 4, 8],
        "vip": ["si", "no", "si", None],
    }
)


def _fit_with(features: list[dict]) -> FeatureTransformer:
    return FeatureTransformer.fit(OPS_FRAME, parse_schema({**SMALL, "engineered_features": features}, "tiny.yaml"))


def _raw(t: FeatureTransformer, name: str) -> list[float]:
    """An engineered feature's unstandardised values on OPS_FRAME, undone from the transform."""
    k = t.feature_names.index(name)
    entry = next(e for e in t.engineered if e["name"] == name)
    return (t.transform(OPS_FRAME)[:, k].astype(np.float64) * entry["std"] + entry["mean"]).round(5).tolist()


def test_sum_adds_imputed_numeric_and_boolean_inputs():
    t = _fit_with([{"name": "total", "op": "sum", "inputs": ["spend", "months", "vip"]}])
    # spend's missing value takes its training median (20); vip's missing its share of true (2/3)
    assert _raw(t, "total") == [12.0, 22.0, 25.0, round(48 + 2 / 3, 5)]


def test_difference_subtracts_the_second_input():
    t = _fit_with([{"name": "gap", "op": "difference", "inputs": ["spend", "months"]}])
    assert _raw(t, "gap") == [9.0, 18.0, 16.0, 32.0]


@pytest.mark.parametrize(
    "param, expected", [({"at_least": 20}, [0.0, 1.0, 1.0, 1.0]), ({"at_most": 10.0}, [1.0, 0.0, 0.0, 0.0])]
)
def test_threshold_indicator_at_least_and_at_most(param, expected):
    t = _fit_with([{"name": "big", "op": "threshold", "inputs": ["spend"], **param}])
    assert _raw(t, "big") == expected  # the imputed median (20) counts as 20
    entry = t.engineered[0]
    assert {k: entry[k] for k in ("at_least", "at_most")} == {"at_least": None, "at_most": None, **param}


def test_engineered_features_on_engineered_features_in_evaluation_order():
    # declared before its input: the schema orders them, the transformer computes in that order
    t = _fit_with(
        [
            {"name": "big_total", "op": "threshold", "inputs": ["log_total"], "at_least": 3.0},
            {"name": "log_total", "op": "log1p", "inputs": ["total"]},
            {"name": "total", "op": "sum", "inputs": ["spend", "months"]},
            {"name": "per_total", "op": "ratio", "inputs": ["spend", "total"]},
        ]
    )
    assert [e["name"] for e in t.engineered] == ["total", "log_total", "big_total", "per_total"]
    assert t.feature_names[-4:] == ["total", "log_total", "big_total", "per_total"]
    assert _raw(t, "total") == [11.0, 22.0, 24.0, 48.0]
    assert _raw(t, "log_total") == np.log1p([11.0, 22.0, 24.0, 48.0]).round(5).tolist()
    assert _raw(t, "big_total") == [0.0, 1.0, 1.0, 1.0]  # log1p(11) = 2.48, log1p(22) = 3.14
    assert _raw(t, "per_total") == np.round([10 / 11, 20 / 22, 20 / 24, 40 / 48], 5).tolist()


def test_engineered_outputs_feed_count_equal_as_numbers():
    t = _fit_with(
        [
            {"name": "long", "op": "threshold", "inputs": ["months"], "at_least": 4},
            {"name": "cheap", "op": "threshold", "inputs": ["spend"], "at_most": 20},
            {"name": "long_and_cheap", "op": "count_equal", "inputs": ["long", "cheap"], "value": 1},
        ]
    )
    assert _raw(t, "long_and_cheap") == [1.0, 1.0, 2.0, 1.0]


def test_spec_refuses_an_engineered_input_that_is_not_computed_before():
    t = _fit_with(
        [
            {"name": "total", "op": "sum", "inputs": ["spend", "months"]},
            {"name": "log_total", "op": "log1p", "inputs": ["total"]},
        ]
    )
    spec = json.loads(t.to_json())
    spec["engineered"].reverse()
    with pytest.raises(TransformError, match=r"'log_total' uses \['total'\], which are neither input fields"):
        FeatureTransformer(spec)
    spec["engineered"].reverse()
    spec["engineered"][0]["op"] = "mean"
    with pytest.raises(TransformError, match=r"engineered feature 'total': op 'mean' is not one of"):
        FeatureTransformer(spec)


# --------------------------------------------------------------------- learned vocabularies
LEARNED = {
    **SMALL,
    "columns": [
        *SMALL["columns"][:2],
        {"name": "colour", "type": "string", "role": "categorical", "checks": {"allowed": ["red", "blue"]}},
        {
            "name": "handset",
            "type": "string",
            "role": "categorical",
            "vocabulary": {"learn": True, "min_frequency": 2, "other_bucket": "__rare__"},
        },
        *SMALL["columns"][3:],
    ],
    "engineered_features": [],
}
HANDSETS = ["nokia", "apple", "apple", "moto", "nokia", "apple", None, "sony"]


def _learned() -> FeatureTransformer:
    schema = parse_schema(LEARNED, "tiny.yaml")
    frame = pd.DataFrame(
        {
            "colour": ["red", "blue"] * 4,
            "handset": HANDSETS,
            "spend": np.arange(8.0),
            "months": np.arange(8),
            "vip": ["si", "no"] * 4,
        }
    )
    return FeatureTransformer.fit(frame, schema)


def _rows(handsets: list) -> dict:
    n = len(handsets)
    return {"colour": ["red"] * n, "handset": handsets, "spend": [1.0] * n, "months": [1] * n, "vip": ["si"] * n}


def test_learned_vocabulary_keeps_frequent_categories_and_an_other_bucket():
    t = _learned()
    col = next(c for c in t.categorical if c["name"] == "handset")
    # seen >= 2 times, most frequent first; moto and sony (once each) fold into the bucket
    assert col["categories"] == ["apple", "nokia", "__rare__"]
    assert col["other_bucket"] == "__rare__"
    assert col["vocabulary"] == {"min_frequency": 2, "distinct_seen": 4, "values_in_other_bucket": 2}
    assert t.feature_names[:5] == ["colour=red", "colour=blue", "handset=apple", "handset=nokia", "handset=__rare__"]
    assert t.open_vocabulary("handset") and not t.open_vocabulary("colour")


def test_learned_vocabulary_maps_rare_unseen_and_bucket_named_values_to_the_other_bucket():
    t = _learned()
    stats = TransformStats()
    x = t.transform(_rows(["apple", "sony", "huawei", "__rare__", None, "nokia"]), stats)
    assert x[:, 2:5].tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert stats.other_bucket == {"handset": 3}
    assert stats.missing_values == {"handset": 1}
    assert stats.unknown_categories == {}
    # the closed vocabulary next to it still encodes an unknown value as all zeros, counted as unknown
    stats = TransformStats()
    x = t.transform({**_rows(["apple"]), "colour": ["green"]}, stats)
    assert x[0, :2].tolist() == [0, 0] and stats.unknown_categories == {"colour": 1}


def test_learned_vocabulary_never_has_zero_categories():
    spec = {**LEARNED, "columns": [dict(c) for c in LEARNED["columns"]]}
    spec["columns"][3]["vocabulary"] = {"learn": True, "min_frequency": 100}
    t = FeatureTransformer.fit(
        pd.DataFrame(
            {
                "colour": ["red"] * 3,
                "handset": ["a", "b", "c"],
                "spend": [1.0] * 3,
                "months": [1] * 3,
                "vip": ["si"] * 3,
            }
        ),
        parse_schema(spec, "tiny.yaml"),
    )
    col = next(c for c in t.categorical if c["name"] == "handset")
    assert col["categories"] == ["__other__"]  # everything is rare: one category, all rows in it
    assert t.transform(_rows(["a", "zzz"]))[:, 2].tolist() == [1, 1]
    # a spec whose categorical lists no category (what a vocabulary column used to get) is refused
    broken = json.loads(t.to_json())
    broken["categorical"][1]["categories"] = []
    with pytest.raises(TransformError, match=r"categorical 'handset' needs a non-empty list"):
        FeatureTransformer(broken)
    broken["categorical"][1]["categories"] = ["a", "__other__", "b"]
    with pytest.raises(TransformError, match=r"the other bucket '__other__' must be its last category"):
        FeatureTransformer(broken)


def test_other_bucket_equal_to_a_real_category_is_refused_at_fit():
    schema = parse_schema(LEARNED, "tiny.yaml")
    frame = pd.DataFrame(
        {
            "colour": ["red"] * 3,
            "handset": ["apple", "__rare__", "apple"],
            "spend": [1.0] * 3,
            "months": [1] * 3,
            "vip": ["si"] * 3,
        }
    )
    with pytest.raises(
        TransformError,
        match=r"column 'handset': the training data holds the value '__rare__' "
        r"1 time\(s\), which is the vocabulary's other_bucket",
    ):
        FeatureTransformer.fit(frame, schema)


def test_learned_vocabulary_round_trips_through_transformer_json(tmp_path):
    t = _learned()
    path = t.save(tmp_path / "transformer.json")
    spec = json.loads(path.read_text())
    assert spec["format_version"] == 2
    assert spec["categorical"][1]["categories"] == ["apple", "nokia", "__rare__"]
    loaded = FeatureTransformer.load(path)
    rows = _rows(["apple", "moto", "nokia", "never-seen", None])
    assert loaded.feature_names == t.feature_names
    assert np.array_equal(loaded.transform(rows), t.transform(rows))
    # serving uses exactly the stored vocabulary, whatever data it sees
    assert loaded.transform(_rows(["moto"] * 5))[:, 4].tolist() == [1] * 5


def test_engineered_ops_round_trip_through_transformer_json(tmp_path):
    t = _fit_with(
        [
            {"name": "total", "op": "sum", "inputs": ["spend", "months"]},
            {"name": "gap", "op": "difference", "inputs": ["total", "months"]},
            {"name": "low", "op": "threshold", "inputs": ["gap"], "at_most": 15},
        ]
    )
    loaded = FeatureTransformer.load(t.save(tmp_path / "t.json"))
    assert np.array_equal(loaded.transform(OPS_FRAME), t.transform(OPS_FRAME))
    assert _raw(loaded, "low") == [1.0, 0.0, 0.0, 0.0]


def test_version_1_transformer_files_still_load(tiny, tmp_path):
    schema, frame = tiny
    t = FeatureTransformer.fit(frame, schema)
    spec = json.loads(t.to_json())
    spec["format_version"] = 1
    for e in spec["engineered"]:
        del e["at_least"], e["at_most"]
    assert np.array_equal(FeatureTransformer(spec).transform(frame), t.transform(frame))


def test_handler_validation_accepts_any_value_of_a_learned_vocabulary_only():
    from serving.record_validation import ClientError, validate

    t = _learned()
    record = {"colour": "red", "handset": "never-seen", "spend": 1.0, "months": 1, "vip": True}
    columns = validate([record, {**record, "handset": None}], False, t)
    assert columns["handset"].tolist() == ["never-seen", None]
    with pytest.raises(ClientError, match=r"record 0, field 'colour': unknown category 'green'"):
        validate([{**record, "colour": "green"}], False, t)  # the closed vocabulary still rejects
    with pytest.raises(ClientError, match=r"record 0, field 'handset': expected a string category, got int"):
        validate([{**record, "handset": 7}], False, t)


def test_learned_vocabulary_and_new_ops_through_training_packaging_and_the_handler(tmp_path):
    """preprocess fits the vocabulary on the training split; the packaged endpoint encodes with the stored one."""
    import tarfile

    import yaml

    from serving import inference
    from tests.fixtures import synthetic_churn
    from training_jobs import compile_model, preprocess, train_pytorch

    doc = yaml.safe_load(synthetic_churn.SCHEMA_PATH.read_text())
    doc.pop("usage")
    tier = next(c for c in doc["columns"] if c["name"] == "handset_tier")
    tier.pop("checks")
    tier["vocabulary"] = {"learn": True, "min_frequency": 300}
    doc["engineered_features"] += [
        {"name": "heavy", "op": "threshold", "inputs": ["fee_gap"], "at_least": 0},
        {"name": "fee_gap", "op": "difference", "inputs": ["fee_and_tickets", "months_active"]},
        {"name": "fee_and_tickets", "op": "sum", "inputs": ["monthly_fee", "support_tickets"]},
    ]
    schema_file = tmp_path / "schema.yaml"
    schema_file.write_text(yaml.safe_dump(doc))
    raw = synthetic_churn.write_csv(tmp_path / "raw.csv")
    prep = tmp_path / "prep"
    assert preprocess.main(["--input-data", str(raw), "--schema", str(schema_file), "--output-dir", str(prep)]) == 0
    spec = json.loads((prep / "transformer" / "transformer.json").read_text())
    learned = next(c for c in spec["categorical"] if c["name"] == "handset_tier")
    # ~1,400 training rows: budget (p=0.4) and mid (0.35) pass 300, flagship (0.2) does not
    assert learned["categories"] == ["budget", "mid", "__other__"]
    assert [e["name"] for e in spec["engineered"]][-3:] == ["fee_and_tickets", "fee_gap", "heavy"]

    model_dir = tmp_path / "model"
    argv = ["--train", str(prep / "train"), "--validation", str(prep / "validation")]
    argv += ["--transformer", str(prep / "transformer"), "--model-dir", str(model_dir)]
    argv += ["--output-data-dir", str(tmp_path / "out"), "--epochs", "3", "--members", "2"]
    assert train_pytorch.main(argv) == 0
    pkg = tmp_path / "pkg"
    assert compile_model.main(["--model-dir", str(model_dir), "--output-dir", str(pkg), "--batch-size", "8"]) == 0
    served = tmp_path / "served"
    with tarfile.open(pkg / "model.tar.gz") as tar:
        tar.extractall(served, filter="data")
    assert json.loads((served / "transformer.json").read_text()) == spec
    model = inference.model_fn(str(served))
    record = {
        "plan": "prepaid",
        "handset_tier": "flagship",
        "region": "north",
        "months_active": 3,
        "monthly_fee": 40.0,
        "data_gb": 2.5,
        "support_tickets": 1,
        "roaming_enabled": "on",
        "has_family_bundle": "N",
    }
    rows = [record, {**record, "handset_tier": "satellite"}, {**record, "handset_tier": "mid"}]
    out = inference.predict_fn(inference.input_fn(json.dumps(rows), "application/json"), model)
    p = out["probabilities"]
    assert p[0] == p[1] != p[2]  # rare at fit and never seen: both the other bucket
    with pytest.raises(inference.ClientError, match=r"record 0, field 'plan': unknown category 'family plus'"):
        inference.predict_fn(
            inference.input_fn(json.dumps({**record, "plan": "family plus"}), "application/json"), model
        )
