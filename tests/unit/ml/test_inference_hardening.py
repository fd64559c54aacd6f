"""Handler hardening: schema domains at the edge, huge integers, JSON lines, Accept before scoring,
open-vocabulary values marked in the response, never a non-finite probability."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from serving import record_validation
from tests.unit.ml.test_inference import GOOD, score

ROOT = Path(__file__).resolve().parents[3]


def error_of(served, body, content_type="application/json", accept="application/json"):
    handler, _ = served
    with pytest.raises(handler.ServingError) as exc:
        score(served, body, content_type, accept)
    return exc.value


# ----------------------------------------------------------------------------- numeric domains
def test_transformer_carries_the_schema_domains(served, schema):
    _, model = served
    domains = {c["name"]: c.get("domain") for c in model.transformer.numeric}
    for name in schema.numeric_columns:
        spec = schema.column(name)
        assert domains[name] == {"type": spec.type, "min": spec.min, "max": spec.max}
    assert domains["tenure"] == {"type": "integer", "min": 0, "max": 120}


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tenure", 150, "record 1, field 'tenure': value 150 above max 120; allowed range [0, 120]"),
        ("tenure", -1, "record 1, field 'tenure': value -1 below min 0; allowed range [0, 120]"),
        ("tenure", 3.5, "record 1, field 'tenure': 3.5 is not an integer"),
        ("monthly_charges", 1000.01, "record 1, field 'monthly_charges': value 1000.01 above max 1000;"),
        ("monthly_charges", -0.5, "record 1, field 'monthly_charges': value -0.5 below min 0;"),
        ("total_charges", 100000.5, "record 1, field 'total_charges': value 100000.5 above max 100000;"),
    ],
)
def test_out_of_domain_value_is_a_400_naming_record_field_and_range(served, field, value, message):
    err = error_of(served, json.dumps([GOOD, {**GOOD, field: value}]))
    assert message in str(err)
    assert err.status_code == 400


def test_domain_edges_are_accepted(served):
    body = json.dumps(
        [
            {**GOOD, "tenure": 0},
            {**GOOD, "tenure": 120, "monthly_charges": 1000},
            {**GOOD, "tenure": 7.0, "total_charges": 0},
        ]
    )
    assert len(json.loads(score(served, body))["predictions"]) == 3


@pytest.mark.parametrize(
    "tenure, message",
    [
        ("1e2", "cannot parse '1e2' as integer"),  # the gate's integer pattern has no exponent
        ("3.5", "cannot parse '3.5' as integer"),
        ("121", "value 121 above max 120"),
        ("3.00", None),  # as pandas writes integers: accepted, like the gate
    ],
)
def test_csv_integer_text_follows_the_gate_pattern(served, tenure, message):
    header = ",".join(GOOD)
    row = ",".join(tenure if k == "tenure" else str(v) for k, v in GOOD.items())
    body = f"{header}\n{row}\n"
    if message is None:
        assert len(json.loads(score(served, body, "text/csv"))["predictions"]) == 1
    else:
        assert f"record 0, field 'tenure': {message}" in str(error_of(served, body, "text/csv"))


def test_csv_double_text_follows_the_gate_pattern(served):
    header = ",".join(GOOD)
    row = ",".join("1_000" if k == "monthly_charges" else str(v) for k, v in GOOD.items())
    err = error_of(served, f"{header}\n{row}\n", "text/csv")
    assert "record 0, field 'monthly_charges': cannot parse '1_000' as double" in str(err)


def test_transformer_without_domains_still_serves(served):
    """transformer.json files written before `domain` existed load and score, without domain checks."""
    handler, model = served
    spec = copy.deepcopy(model.transformer.spec)
    for col in spec["numeric"]:
        col.pop("domain")
    old = copy.copy(model)
    old.transformer = handler.FeatureTransformer(spec)
    out = handler.predict_fn(handler.input_fn(json.dumps({**GOOD, "tenure": 150}), "application/json"), old)
    assert np.isfinite(out["probabilities"]).all()


# ----------------------------------------------------------------------------- huge integers
@pytest.mark.parametrize(
    "field, literal, message",
    [
        ("tenure", "1" + "0" * 30, "field 'tenure': integer 1000000000000000000000000000000 is beyond +-2^53"),
        ("tenure", "9" * 5000, "field 'tenure': integer 999999999999... (5000 digits) is beyond +-2^53"),
        ("monthly_charges", str(2**53 + 1), "field 'monthly_charges': integer 9007199254740993 is beyond"),
        ("contract", "-" + "7" * 40, "field 'contract': expected a string category, got integer"),
        ("partner", "1" + "0" * 400, "field 'partner': expected a boolean, got integer"),
    ],
)
def test_huge_json_integers_are_a_400(served, field, literal, message):
    body = json.dumps([GOOD, {**GOOD, field: 0}]).replace(f'"{field}": 0', f'"{field}": {literal}')
    err = error_of(served, body)
    assert f"record 1, {message}" in str(err)
    assert err.status_code == 400


def test_parse_int_keeps_safe_integers_exact():
    assert record_validation.parse_int(str(2**53)) == 2**53
    assert record_validation.parse_int("-12") == -12
    assert isinstance(record_validation.parse_int(str(-(2**53) - 1)), record_validation.HugeInteger)


# ----------------------------------------------------------------------------- JSON lines
def test_jsonlines_in_and_out_keep_order(served):
    records = [GOOD, {**GOOD, "tenure": 60, "contract": "Two year"}, {**GOOD, "internet_service": "DSL"}]
    as_json = json.loads(score(served, json.dumps(records)))["predictions"]
    body = "\n".join(json.dumps(r) for r in records) + "\n\n"
    out = score(served, body, "application/jsonlines", "application/jsonlines")
    lines = out.splitlines()
    assert out.endswith("\n") and len(lines) == 3
    assert [json.loads(line) for line in lines] == as_json


def test_jsonlines_errors_name_record_and_line(served):
    body = json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "tenure": 999}) + "\n"
    assert "record 1, field 'tenure': value 999 above max 120" in str(error_of(served, body, "application/jsonlines"))
    body = json.dumps(GOOD) + "\n[1, 2]\n"
    assert "record 1 (line 2): must be a JSON object" in str(error_of(served, body, "application/jsonlines"))
    body = json.dumps(GOOD) + "\n{oops\n"
    assert "record 1 (line 2) is not valid JSON" in str(error_of(served, body, "application/jsonlines"))


# ----------------------------------------------------------------------------- Accept
class FakeRequest:
    def __init__(self, headers):
        self.headers = headers

    def get_request_properties(self):
        return self.headers


class FakeContext:
    """The shape of the serving toolkit's request context (request_processor[0].get_request_properties())."""

    def __init__(self, headers):
        self.request_processor = [FakeRequest(headers)]


@pytest.mark.parametrize(
    "accept, media",
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("text/csv", "text/csv"),
        ("application/xml, application/jsonlines;q=0.9", "application/jsonlines"),
    ],
)
def test_check_accept(served, accept, media):
    handler, _ = served
    assert handler.check_accept(accept) == media


def test_unsupported_accept_is_refused_before_any_model_work(served, monkeypatch):
    handler, model = served
    calls = []
    monkeypatch.setattr(type(model), "predict_matrix", lambda self, x: calls.append(x))
    with pytest.raises(handler.ClientError, match="unsupported accept type 'application/xml'") as exc:
        handler.input_fn(json.dumps(GOOD), "application/json", FakeContext({"Accept": "application/xml"}))
    assert exc.value.status_code == 406
    # Even a malformed body is answered 406, not 400: the Accept check comes first.
    with pytest.raises(handler.ClientError) as exc:
        handler.input_fn(b"{", "application/json", FakeContext({"accept": "image/png"}))
    assert exc.value.status_code == 406
    assert calls == []
    parsed = handler.input_fn(json.dumps(GOOD), "application/json", FakeContext({"Accept": "text/csv"}))
    assert len(parsed.records) == 1


# ----------------------------------------------------------------------------- open vocabularies
class ConstantBooster:
    """Stands in for a model: the probability is the first feature column squashed into (0, 1)."""

    def __init__(self, value=None):
        self.value = value

    def inplace_predict(self, x):
        if self.value is not None:
            return np.full(len(x), self.value)
        return 1.0 / (1.0 + np.exp(-x[:, 0]))


def stub_model(served, vocabulary_field=None, value=None):
    """The served transformer (optionally with `vocabulary_field` turned into a learned vocabulary)
    in front of a stub booster: no training needed."""
    handler, model = served
    spec = copy.deepcopy(model.transformer.spec)
    if vocabulary_field:
        col = next(c for c in spec["categorical"] if c["name"] == vocabulary_field)
        col["categories"] = [*col["categories"], "__other__"]
        col["other_bucket"] = "__other__"
    return handler.ServingModel(
        "xgboost", handler.FeatureTransformer(spec), model.metadata, ConstantBooster(value), 0, "cpu"
    )


def test_open_vocabulary_values_are_scored_as_other_and_marked(served):
    handler, _ = served
    model = stub_model(served, "contract")
    records = [GOOD, {**GOOD, "contract": "Three year"}, {**GOOD, "contract": "__other__"}]
    pred = handler.predict_fn(handler.input_fn(json.dumps(records), "application/json"), model)
    as_json = json.loads(handler.output_fn(pred, "application/json"))["predictions"]
    assert "unknown_categories" not in as_json[0]
    assert as_json[1]["unknown_categories"] == {"contract": "Three year"}
    assert as_json[2]["unknown_categories"] == {"contract": "__other__"}
    lines = handler.output_fn(pred, "application/jsonlines").splitlines()
    assert json.loads(lines[1])["unknown_categories"] == {"contract": "Three year"}


def test_closed_vocabulary_still_rejects_with_a_stub_model(served):
    handler, _ = served
    model = stub_model(served, "contract")
    with pytest.raises(handler.ClientError, match=r"record 0, field 'payment_method': unknown category 'Cash'"):
        handler.predict_fn(handler.input_fn(json.dumps({**GOOD, "payment_method": "Cash"}), "application/json"), model)


# ----------------------------------------------------------------------------- non-finite probabilities
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_probability_is_a_500_never_a_response(served, value):
    handler, _ = served
    model = stub_model(served, value=value)
    with pytest.raises(handler.ModelOutputError) as exc:
        handler.predict_fn(handler.input_fn(json.dumps([GOOD, GOOD]), "application/json"), model)
    assert exc.value.status_code == 500
    assert "non-finite probability for 2 record(s), first: record 0" in str(exc.value)
    assert not isinstance(exc.value, handler.ClientError)


# ----------------------------------------------------------------------------- in the serving container
def test_errors_are_toolkit_errors_when_the_toolkit_is_present(monkeypatch):
    """In the SageMaker containers the toolkit maps BaseInferenceToolkitError to its status code and any
    other exception to 500: the handler's errors must be of that class there."""

    class BaseInferenceToolkitError(Exception):
        def __init__(self, status_code, message, phrase):
            self.status_code, self.message, self.phrase = status_code, message, phrase

    errors = types.ModuleType("sagemaker_inference.errors")
    errors.BaseInferenceToolkitError = BaseInferenceToolkitError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sagemaker_inference", types.ModuleType("sagemaker_inference"))
    monkeypatch.setitem(sys.modules, "sagemaker_inference.errors", errors)
    spec = importlib.util.spec_from_file_location(
        "container_record_validation", ROOT / "serving" / "record_validation.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    err = module.ClientError("record 3, field 'tenure': value 150 above max 120;\nallowed range [0, 120]")
    assert isinstance(err, BaseInferenceToolkitError) and isinstance(err, ValueError)
    assert err.status_code == 400
    assert err.message.startswith("record 3, field 'tenure'")
    assert "\n" not in err.phrase
    assert str(err) == err.message
