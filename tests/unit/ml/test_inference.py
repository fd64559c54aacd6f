"""Inference handler: good payloads, and malformed ones (hypothesis) always give a ClientError."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_jobs.artifacts import load_model
from training_jobs.splits import read_split

GOOD = {
    "multiple_lines": "No",
    "internet_service": "Fiber optic",
    "online_security": "No",
    "online_backup": "Yes",
    "device_protection": "No",
    "tech_support": "No",
    "streaming_tv": "Yes",
    "streaming_movies": "No",
    "contract": "Month-to-month",
    "payment_method": "Electronic check",
    "tenure": 3,
    "monthly_charges": 89.5,
    "total_charges": 270.2,
    "female": True,
    "senior_citizen": 0,
    "partner": "No",
    "dependents": False,
    "phone_service": "yes",
    "paperless_billing": 1,
}


def score(served, body, content_type="application/json", accept="application/json"):
    handler, model = served
    return handler.output_fn(handler.predict_fn(handler.input_fn(body, content_type), model), accept)


def probabilities(served, body, content_type="application/json"):
    return [p["probability"] for p in json.loads(score(served, body, content_type))["predictions"]]


# ----------------------------------------------------------------------------- good payloads
def test_single_object(served):
    out = json.loads(score(served, json.dumps(GOOD)))
    assert len(out["predictions"]) == 1
    pred = out["predictions"][0]
    assert 0 <= pred["probability"] <= 1
    assert pred["label"] in ("Yes", "No")
    assert out["positive_label"] == "Yes"
    assert pred["label"] == ("Yes" if pred["probability"] >= out["threshold"] else "No")


def test_list_instances_and_csv_agree(served):
    records = [GOOD, {**GOOD, "tenure": 60, "contract": "Two year"}, {**GOOD, "internet_service": "DSL"}]
    as_list = probabilities(served, json.dumps(records))
    as_instances = probabilities(served, json.dumps({"instances": records}).encode())
    csv_body = pd.DataFrame(records).to_csv(index=False)
    as_csv = probabilities(served, csv_body, "text/csv; charset=utf-8")
    assert as_list == as_instances
    assert np.allclose(as_list, as_csv, atol=1e-7)
    assert as_list[1] < as_list[0]  # long tenure on a two-year contract: lower risk


def test_csv_response(served):
    body = score(served, json.dumps([GOOD, GOOD]), accept="text/csv")
    lines = body.strip().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1]
    p, label = lines[0].split(",")
    assert 0 <= float(p) <= 1 and label in ("Yes", "No")


def test_padding_and_chunking_match_eager_model(served, pt_model, prep, schema):
    """37 records through a handler traced for batch 16 (3 chunks, last one padded)."""
    _, model = served
    assert model.batch_size == 16
    frame, _ = read_split(prep / "test", schema)
    frame = frame.iloc[:37]
    records = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame[model.transformer.input_fields].to_dict(orient="records")
    ]
    served_p = np.array(probabilities(served, json.dumps(records)))
    eager_p = load_model(pt_model).predict_proba(frame)
    assert np.max(np.abs(served_p - eager_p)) <= 1e-5
    one_by_one = [probabilities(served, json.dumps(r))[0] for r in records[:5]]
    assert np.allclose(one_by_one, served_p[:5], atol=1e-7)


def test_schema_null_fill_rule_is_honoured(served):
    """total_charges may be null only in the first month (schema null_fill rule)."""
    handler, _ = served
    ok = probabilities(served, json.dumps({**GOOD, "tenure": 0, "total_charges": None}))
    assert 0 <= ok[0] <= 1
    with pytest.raises(handler.ClientError, match=r"record 0, field 'total_charges': must not be null"):
        score(served, json.dumps({**GOOD, "tenure": 5, "total_charges": None}))


# ----------------------------------------------------------------------------- explicit errors
@pytest.mark.parametrize(
    "body, content_type, message",
    [
        ("", "application/json", "payload is empty"),
        ("[]", "application/json", "payload holds no records"),
        ('{"instances": 3}', "application/json", "'instances' must be a list"),
        ("[1]", "application/json", "record 0: must be a JSON object"),
        ("{", "application/json", "not valid JSON"),
        (
            json.dumps({k: v for k, v in GOOD.items() if k != "tenure"}),
            "application/json",
            "record 0: missing field 'tenure'",
        ),
        (json.dumps({**GOOD, "imei": "x"}), "application/json", "record 0: unknown field 'imei'"),
        (
            json.dumps([GOOD, {**GOOD, "tenure": "3"}]),
            "application/json",
            "record 1, field 'tenure': expected a number, got str",
        ),
        (json.dumps({**GOOD, "tenure": True}), "application/json", "field 'tenure': expected a number, got boolean"),
        (
            json.dumps({**GOOD, "contract": "Three year"}),
            "application/json",
            "record 0, field 'contract': unknown category 'Three year'; allowed:",
        ),
        (json.dumps({**GOOD, "contract": None}), "application/json", "field 'contract': must not be null"),
        (json.dumps({**GOOD, "partner": "maybe"}), "application/json", "field 'partner': 'maybe' is not a boolean"),
        (
            json.dumps(GOOD).replace('"monthly_charges": 89.5', '"monthly_charges": 1e999'),
            "application/json",
            "record 0, field 'monthly_charges': must be a finite number",
        ),
        (
            json.dumps([GOOD, {**GOOD, "tenure": float("nan")}]),
            "application/json",
            "record 1, field 'tenure': must be a finite number, got nan",
        ),
        (json.dumps(GOOD), "application/xml", "unsupported content type 'application/xml'"),
        (json.dumps(GOOD), None, "content type must be one of"),
        ("tenure,contract\n1,Two year\n", "text/csv", "record 0: missing field"),
        ("tenure,tenure\n1,1\n", "text/csv", "duplicate field(s) ['tenure']"),
        (
            ",".join(GOOD) + "\n" + ",".join(str(v) for v in GOOD.values()) + ",extra\n",
            "text/csv",
            "record 0: has 20 values, the header names 19 fields",
        ),
        (
            ",".join(GOOD) + "\n" + ",".join("abc" if k == "tenure" else str(v) for k, v in GOOD.items()) + "\n",
            "text/csv",
            "record 0, field 'tenure': cannot parse 'abc' as integer",
        ),
        (b"\xff\xfe\x00", "application/json", "not valid UTF-8"),
        ("[" * 100000 + "]" * 100000, "application/json", "nested too deeply"),
    ],
)
def test_malformed_payloads_name_record_and_field(served, body, content_type, message):
    handler, _ = served
    with pytest.raises(handler.ClientError) as exc:
        score(served, body, content_type)
    assert message in str(exc.value)
    assert 400 <= exc.value.status_code < 500


def test_batch_too_large(served, monkeypatch):
    handler, _ = served
    monkeypatch.setattr(handler, "MAX_RECORDS", 5)
    with pytest.raises(handler.ClientError, match="payload holds 6 records; the limit is 5") as exc:
        score(served, json.dumps([GOOD] * 6))
    assert exc.value.status_code == 413


def test_unsupported_accept(served):
    handler, _ = served
    with pytest.raises(handler.ClientError, match="unsupported accept type") as exc:
        score(served, json.dumps(GOOD), accept="application/x-protobuf")
    assert exc.value.status_code == 406


# ----------------------------------------------------------------------------- property-based
FIELDS = list(GOOD)
NUMERIC = ["tenure", "monthly_charges", "total_charges"]
BOOLEAN = ["female", "senior_citizen", "partner", "dependents", "phone_service", "paperless_billing"]
CATEGORICAL = [f for f in FIELDS if f not in NUMERIC + BOOLEAN]
JUNK = st.one_of(
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def malformed_records(draw):
    rec = dict(GOOD)
    kind = draw(st.sampled_from(["drop", "extra", "numeric", "categorical", "boolean", "null"]))
    field = draw(st.sampled_from(FIELDS))
    if kind == "drop":
        del rec[field]
    elif kind == "extra":
        rec[draw(st.text(min_size=1, max_size=12).filter(lambda s: s not in GOOD))] = draw(st.integers())
    elif kind == "numeric":
        rec[draw(st.sampled_from(NUMERIC))] = draw(st.one_of(st.text(max_size=8), st.booleans(), JUNK))
    elif kind == "categorical":
        allowed_any = {
            "Yes",
            "No",
            "No phone service",
            "Fiber optic",
            "DSL",
            "No internet service",
            "Month-to-month",
            "One year",
            "Two year",
            "Electronic check",
            "Mailed check",
            "Bank transfer (automatic)",
            "Credit card (automatic)",
        }
        rec[draw(st.sampled_from(CATEGORICAL))] = draw(
            st.one_of(
                st.text(max_size=10).filter(lambda s: s not in allowed_any),
                st.integers(),
                st.floats(),
                st.booleans(),
                JUNK,
            )
        )
    elif kind == "boolean":
        tokens = {"yes", "y", "true", "t", "1", "no", "n", "false", "f", "0"}
        rec[draw(st.sampled_from(BOOLEAN))] = draw(
            st.one_of(
                st.text(max_size=6).filter(lambda s: s.strip().lower() not in tokens),
                st.integers().filter(lambda i: i not in (0, 1)),
                st.floats(),
                JUNK,
            )
        )
    else:
        rec[draw(st.sampled_from([f for f in FIELDS if f != "total_charges"]))] = None
    return rec


@st.composite
def malformed_payloads(draw):
    shape = draw(st.sampled_from(["single", "list", "instances"]))
    bad = draw(malformed_records())
    good_before = draw(st.integers(0, 3))
    records = [GOOD] * good_before + [bad]
    doc = bad if shape == "single" else records if shape == "list" else {"instances": records}
    return json.dumps(doc, allow_nan=True), (0 if shape == "single" else good_before)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_payloads())
def test_hypothesis_malformed_json_records(served, payload):
    handler, _ = served
    body, index = payload
    with pytest.raises(handler.ClientError) as exc:
        score(served, body)
    assert f"record {index}" in str(exc.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.binary(max_size=64), st.text(max_size=64)),
    st.sampled_from(["application/json", "text/csv", "text/plain", "", "application/json; charset=utf-8"]),
)
def test_hypothesis_garbage_bodies(served, body, content_type):
    handler, _ = served
    with pytest.raises(handler.ClientError):
        score(served, body, content_type)


@st.composite
def csv_payloads(draw):
    header = list(GOOD)
    values = [str(v) for v in GOOD.values()]
    i = draw(st.integers(0, len(header) - 1))
    kind = draw(st.sampled_from(["value", "drop_column", "rename"]))
    if kind == "value":
        name = header[i]
        if name in NUMERIC:
            values[i] = draw(st.text(alphabet="abcxyz-+ ", min_size=1, max_size=5).filter(lambda s: s.strip()))
        elif name in BOOLEAN:
            values[i] = draw(st.sampled_from(["maybe", "2", "-1", "yess", "on"]))
        else:
            values[i] = draw(st.sampled_from(["", "Unknown", "yes", "NO", "x"]))
    elif kind == "drop_column":
        del header[i], values[i]
    else:
        header[i] = header[i] + "_x"
    line = ",".join(f'"{v}"' for v in values)
    return ",".join(header) + "\n" + line + "\n"


@settings(max_examples=60, deadline=None)
@given(csv_payloads())
def test_hypothesis_malformed_csv(served, body):
    handler, _ = served
    with pytest.raises(handler.ClientError, match="record 0"):
        score(served, body, "text/csv")


@settings(max_examples=40, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "tenure": st.integers(0, 120),
            "monthly_charges": st.floats(0, 200, allow_nan=False),
            "contract": st.sampled_from(["Month-to-month", "One year", "Two year"]),
            "partner": st.sampled_from([True, False, "Yes", "no", 1, 0]),
        }
    )
)
def test_hypothesis_valid_records_score(served, change):
    probs = probabilities(served, json.dumps({**GOOD, **change}))
    assert 0.0 <= probs[0] <= 1.0
