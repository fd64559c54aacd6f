"""Model Monitor record preprocessor (RecordPreprocessorSourceUri): one captured request -> one flat record.

Runs inside the Model Monitor analyzer container (engine `model_monitor`), which imports this one file and
calls `preprocess_handler(inference_record, logger)` once per captured line: standard library only, no
import from this repository. `inference_record` is the analyzer's CapturedData: `endpoint_input` /
`endpoint_output` with `data`, `encoding` and `observedContentType`, `event_metadata.event_id`, and the
raw line as `event_dict`. What the handler may return (AWS, "Preprocessing and Postprocessing"): a flat
dictionary, the record the analyzer describes, or an empty list, which the analyzer skips (the documented
custom-sampling idiom). Returning several records for one captured line is not part of that contract.

The endpoint's requests (serving/inference.py): JSON `{"instances": [...]}`, a list of objects or one
object; `text/csv` with a header row; bodies as JSON/CSV text or BASE64. A request holding exactly one
record becomes `{feature: value}` over the dataset schema's raw features (FEATURES below), typed as the
baseline describes them (training_jobs/baseline.py): numeric features as numbers, booleans as the
schema's tokens, everything else as text; a feature absent from the request is None (Model Monitor counts
it missing), and so is NaN or an infinity (json.dumps would write them as bare NaN/Infinity, which is not
JSON); fields that are not features are left out.

Not analysed, and logged (warning, with the event id and the reason) rather than dropped silently:
  * a request with more than one record: Model Monitor sees one record per captured request, so only
    single-record requests reach the data-quality job; the drift_job engine reads every record. Clients
    scoring with an InferenceId already send one record per request (docs/serving.md);
  * a request that cannot be read (not JSON/CSV, undecodable BASE64, no record).
A numeric field that is not a number is passed on as text, so Model Monitor's data type check reports it.

FEATURES is the shipped schema's (dataset/schemas/ibm_telco_churn.yaml). The monitoring stack ships this
file with the environment's schema written into FEATURES (infra/constructs/monitoring/record_preprocessor.py);
a test keeps this copy equal to the shipped schema's.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from typing import Any

# FEATURES-BEGIN (rendered from the dataset schema; keep the markers)
FEATURES: dict[str, Any] = {
    "categorical": [
        "multiple_lines",
        "internet_service",
        "online_security",
        "online_backup",
        "device_protection",
        "tech_support",
        "streaming_tv",
        "streaming_movies",
        "contract",
        "payment_method",
    ],
    "numeric": [
        "tenure",
        "monthly_charges",
        "total_charges",
    ],
    "boolean": {
        "female": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
        "senior_citizen": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
        "partner": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
        "dependents": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
        "phone_service": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
        "paperless_billing": {"true": ["yes", "y", "true", "t", "1"], "false": ["no", "n", "false", "f", "0"]},
    },
}
# FEATURES-END

_BOOLEAN_LITERALS = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
SKIP: list[Any] = []  # what the analyzer takes as "no record from this line"


class UnreadableRequest(ValueError):
    """The captured request body cannot be read as the endpoint's formats; the message says why."""


def preprocess_handler(inference_record: Any, logger: Any) -> dict[str, Any] | list[Any]:
    """The flat record of a single-record request; [] (skipped, logged) otherwise."""
    event_id = _event_id(inference_record)
    try:
        records = request_records(inference_record.endpoint_input)
    except UnreadableRequest as exc:
        _log(logger, "warning", "event %s: request not analysed: %s", event_id, exc)
        return SKIP
    if len(records) != 1:
        _log(
            logger,
            "warning",
            "event %s: request not analysed: it holds %d records and Model Monitor takes one record per "
            "captured request (the drift_job engine reads them all)",
            event_id,
            len(records),
        )
        return SKIP
    return flat_record(records[0])


def flat_record(record: dict[str, Any]) -> dict[str, Any]:
    """{feature: value} over FEATURES, typed as the baseline describes them."""
    out: dict[str, Any] = {}
    for name in FEATURES["numeric"]:
        out[name] = _number(record.get(name))
    for name in FEATURES["categorical"]:
        out[name] = _text(record.get(name))
    for name, tokens in FEATURES["boolean"].items():
        out[name] = _boolean(record.get(name), tokens)
    return out


def request_records(endpoint_input: Any) -> list[dict[str, Any]]:
    """The records of a captured request body (the handler's formats); UnreadableRequest if none."""
    if endpoint_input is None:
        raise UnreadableRequest("no captureData.endpointInput")
    data, encoding = endpoint_input.data, endpoint_input.encoding
    content_type = (endpoint_input.observedContentType or "").split(";", 1)[0].strip().lower()
    if not isinstance(data, str):
        raise UnreadableRequest("endpointInput.data is not a string")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UnreadableRequest(f"endpointInput.data is not base64 of UTF-8 text ({exc})") from None
    elif encoding not in ("JSON", "CSV"):
        raise UnreadableRequest(f"endpointInput.encoding {encoding!r} is not JSON, CSV or BASE64")
    if encoding == "CSV" or content_type == "text/csv":
        return _csv_records(data)
    if content_type and content_type != "application/json":
        raise UnreadableRequest(f"observedContentType {content_type!r} is not application/json or text/csv")
    return _json_records(data)


def _csv_records(text: str) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise UnreadableRequest("CSV body has no record under its header")
    for row in rows:
        if None in row or None in row.values():
            raise UnreadableRequest("CSV body: a row's field count differs from the header's")
    return rows


def _json_records(text: str) -> list[dict[str, Any]]:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise UnreadableRequest(f"JSON body is not valid JSON ({exc})") from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    records = payload if isinstance(payload, list) else [payload]
    if not records or not all(isinstance(r, dict) for r in records):
        raise UnreadableRequest('JSON body is not an object, a list of objects or {"instances": [objects]}')
    return records


def _number(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return None if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return value if _finite(value) else None
    text = str(value).strip()
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text  # not a number: Model Monitor's data type check reports it
    if not _finite(number):
        return None
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def _finite(number: float) -> bool:
    """NaN and infinities are missing values: json.dumps would write them as NaN/Infinity, not JSON."""
    return number == number and number not in (float("inf"), float("-inf"))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value) if not isinstance(value, bool) else str(value).lower()
    return text if text.strip() != "" else None


def _boolean(value: Any, tokens: dict[str, list[str]]) -> str | None:
    """The baseline's token (the schema's first true/false value) for any boolean spelling, case-insensitive
    as the drift job maps them (training_jobs/drift_checks.boolean_token_mapper); anything else as text."""
    if value is None:
        return None
    key = str(value).strip()
    if key == "":
        return None
    folded = key.lower()
    if folded in tokens["true"] or _BOOLEAN_LITERALS.get(folded) is True:
        return tokens["true"][0]
    if folded in tokens["false"] or _BOOLEAN_LITERALS.get(folded) is False:
        return tokens["false"][0]
    return key


def _event_id(inference_record: Any) -> str:
    metadata = getattr(inference_record, "event_metadata", None)
    return str(getattr(metadata, "event_id", None) or "(no eventId)")


def _log(logger: Any, level: str, message: str, *args: Any) -> None:
    getattr(logger, level)(message, *args)
