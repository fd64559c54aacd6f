"""The Model Monitor record preprocessor, run as the analyzer runs it: the shipped file loaded on its own, fed
captured lines written by the twin's endpoint server, each line's return value serialised with json.dumps."""

from __future__ import annotations

import base64
import importlib.util
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from dataset.schema import load_schema
from infra.constructs.monitoring.record_preprocessor import feature_spec, render
from tests.unit.ml.conftest import SCHEMA
from training_jobs import baseline
from training_jobs.capture_records import decode_event
from training_jobs.drift_checks import boolean_token_mapper
from training_jobs.splits import read_split
from twin.capture import capture_record

SCRIPT = Path(__file__).resolve().parents[3] / "training_jobs" / "monitor_preprocessor.py"
WHEN = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


# The analyzer's record classes, as AWS documents them ("Preprocessing and Postprocessing": the structure of
# inference_record). The handler must only use what they offer.
class EventMetadata:
    def __init__(self, d: dict[str, Any]) -> None:
        self.event_id = d.get("eventId")
        self.event_time = d.get("inferenceTime")
        self.custom_attribute = d.get("customAttributes")


class EventData:
    def __init__(self, d: dict[str, Any]) -> None:
        self.encoding = d.get("encoding")
        self.data = d.get("data")
        self.observedContentType = d.get("observedContentType")
        self.mode = d.get("mode")


class CapturedData:
    def __init__(self, event_dict: dict[str, Any]) -> None:
        self.event_dict = event_dict
        self.event_metadata = EventMetadata(event_dict["eventMetadata"]) if "eventMetadata" in event_dict else None
        capture = event_dict.get("captureData", {})
        self.endpoint_input = EventData(capture["endpointInput"]) if "endpointInput" in capture else None
        self.endpoint_output = EventData(capture["endpointOutput"]) if "endpointOutput" in capture else None


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The file exactly as the monitoring stack ships it, imported as the analyzer imports it (by path)."""
    path = tmp_path_factory.mktemp("analyzer") / "preprocessor.py"
    path.write_text(render(load_schema(SCHEMA)))
    spec = importlib.util.spec_from_file_location("preprocessor", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def test_split(prep: Path, schema: Any) -> pd.DataFrame:
    frame, _ = read_split(prep / "test", schema)
    return frame


def analyse(script: ModuleType, lines: list[str], logger: logging.Logger) -> Iterator[Any]:
    """What the analyzer's wrapper prints for each captured line: json.dumps of the handler's return value."""
    for line in lines:
        yield json.loads(json.dumps(script.preprocess_handler(CapturedData(json.loads(line)), logger)))


def twin_line(body: bytes, content_type: str, response: dict[str, Any] | str, inference_id: str | None = None) -> str:
    answer = response.encode() if isinstance(response, str) else json.dumps(response).encode()
    answer_type = "text/csv" if isinstance(response, str) else "application/json"
    return json.dumps(capture_record(body, content_type, answer, answer_type, inference_id, WHEN))


def prediction(n: int = 1) -> dict[str, Any]:
    return {"predictions": [{"probability": 0.3, "label": "No"}] * n}


def test_the_shipped_file_is_the_render_of_the_shipped_schema() -> None:
    """What the repository holds is what an environment on the default schema ships, byte for byte."""
    assert SCRIPT.read_text() == render(load_schema(SCHEMA))


def test_the_script_imports_only_the_standard_library() -> None:
    import ast
    import sys

    tree = ast.parse(SCRIPT.read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_every_single_record_request_of_the_test_split_fits_the_baseline(
    script: ModuleType, schema: Any, prep: Path, test_split: pd.DataFrame, tmp_path: Path
) -> None:
    """Real rows, sent as the handler takes them, flattened into exactly the baseline's features and domains."""
    assert (
        baseline.main(["--input-data", str(prep / "train"), "--schema", str(SCHEMA), "--output-dir", str(tmp_path)])
        == 0
    )
    constraints = {c["name"]: c for c in json.loads((tmp_path / "constraints.json").read_text())["features"]}
    rows = test_split[schema.raw_feature_columns].head(200)
    lines = []
    for i, row in enumerate(rows.to_dict(orient="records")):
        body = [{"instances": [row]}, [row], row][i % 3]  # the three JSON shapes the handler accepts
        lines.append(twin_line(json.dumps(body).encode(), "application/json", prediction()))
    flat = list(analyse(script, lines, logging.getLogger("test")))
    assert len(flat) == len(rows)
    for record, row in zip(flat, rows.to_dict(orient="records"), strict=True):
        assert set(record) == set(constraints)
        for name, value in record.items():
            kind = constraints[name]["inferred_type"]
            if kind in ("Integral", "Fractional"):
                expected = float(row[name])
                assert value is None if expected != expected else value == pytest.approx(expected), name
            else:
                assert value in constraints[name]["string_constraints"]["domains"], (name, value)


def test_the_script_flattens_as_the_drift_job_reads(script: ModuleType, schema: Any, test_split: pd.DataFrame) -> None:
    """Both engines see the same values: booleans in any spelling map to the same token, CSV numbers parse."""
    row = test_split[schema.raw_feature_columns].iloc[0].to_dict()
    sent = {**row, **{c: ["Yes", "true", "1", True, "NO", 0][i % 6] for i, c in enumerate(schema.boolean_columns)}}
    header = ",".join(sent)
    csv_body = f"{header}\n{','.join(str(v) for v in sent.values())}\n".encode()
    for body, content_type in ((json.dumps(sent).encode(), "application/json"), (csv_body, "text/csv")):
        line = twin_line(body, content_type, "0.3,No\n")
        [flat] = analyse(script, [line], logging.getLogger("test"))
        [record], _, _ = decode_event(json.loads(line))
        for name in schema.boolean_columns:
            spec = schema.column(name)
            mapper = boolean_token_mapper(
                spec.true_values[0], spec.false_values[0], spec.true_values, spec.false_values
            )
            assert flat[name] == mapper(record[name]), (name, content_type)
        for name in schema.numeric_columns:
            assert flat[name] == pytest.approx(float(record[name]))
        for name in schema.categorical_columns:
            assert flat[name] == str(record[name])


def test_a_multi_record_request_is_not_analysed_and_says_so(
    script: ModuleType, schema: Any, test_split: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    rows = test_split[schema.raw_feature_columns].head(3).to_dict(orient="records")
    line = twin_line(json.dumps({"instances": rows}).encode(), "application/json", prediction(3))
    event_id = json.loads(line)["eventMetadata"]["eventId"]
    with caplog.at_level(logging.WARNING):
        assert list(analyse(script, [line], logging.getLogger("analyzer"))) == [[]]
    [warning] = caplog.records
    assert event_id in warning.getMessage() and "holds 3 records" in warning.getMessage()


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "reason"),
    [
        ("{not json", "application/json", "JSON", "JSON body is not valid JSON"),
        ("[]", "application/json", "JSON", "not an object, a list of objects"),
        ('"a string"', "application/json", "JSON", "not an object, a list of objects"),
        ("tenure,contract\n", "text/csv", "CSV", "CSV body has no record"),
        ("tenure\n1,2\n", "text/csv", "CSV", "field count differs"),
        ("%%%", "application/json", "BASE64", "not base64 of UTF-8 text"),
        ("{}", "application/x-npy", "JSON", "observedContentType 'application/x-npy'"),
        ("{}", "application/json", "GZIP", "encoding 'GZIP' is not JSON, CSV or BASE64"),
    ],
)
def test_an_unreadable_request_is_not_analysed_and_says_why(
    script: ModuleType, body: str, content_type: str, encoding: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    event = json.loads(twin_line(b"{}", "application/json", prediction()))
    event["captureData"]["endpointInput"].update(data=body, observedContentType=content_type, encoding=encoding)
    with caplog.at_level(logging.WARNING):
        assert list(analyse(script, [json.dumps(event)], logging.getLogger("analyzer"))) == [[]]
    [warning] = caplog.records
    assert event["eventMetadata"]["eventId"] in warning.getMessage() and reason in warning.getMessage()


def test_base64_bodies_missing_features_and_non_numbers(script: ModuleType, schema: Any) -> None:
    """A BASE64 body is decoded; an absent feature is None (Model Monitor counts it missing); a numeric field
    that is not a number stays text so Model Monitor's data type check reports it; other fields are dropped."""
    sent = {"tenure": "twelve", "contract": "Month-to-month", "subscriber_id": "a" * 64}
    event = json.loads(twin_line(b"{}", "application/json", prediction()))
    event["captureData"]["endpointInput"].update(
        data=base64.b64encode(json.dumps({"instances": [sent]}).encode()).decode(), encoding="BASE64"
    )
    [flat] = analyse(script, [json.dumps(event)], logging.getLogger("test"))
    assert set(flat) == set(schema.raw_feature_columns)
    assert flat["tenure"] == "twelve" and flat["contract"] == "Month-to-month"
    assert flat["monthly_charges"] is None and flat["female"] is None


def test_feature_spec_types_the_features_as_the_baseline_does(schema: Any) -> None:
    spec = feature_spec(schema)
    assert spec["numeric"] == list(schema.numeric_columns)
    assert set(spec["boolean"]) == set(schema.boolean_columns)
    assert spec["categorical"] == [
        c for c in schema.raw_feature_columns if c not in schema.numeric_columns and c not in schema.boolean_columns
    ]
    assert spec["boolean"]["female"]["true"][0] == schema.column("female").true_values[0]
