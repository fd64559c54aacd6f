"""SageMaker inference handler (model_fn / input_fn / predict_fn / output_fn).

Ships as `code/inference.py` inside model.tar.gz together with the modules it imports
(`code/record_validation.py`, `code/transform.py`, `code/feature_values.py`); it needs numpy and
torch (PyTorch/Neuron containers) or xgboost (an XGBoost champion, served by the SageMaker
XGBoost image), never this repository, pandas or scikit-learn; nothing is pip-installed at start.

Request formats
  application/json       one object, a list of objects, or {"instances": [objects]}; each object has
                         exactly the schema's raw feature fields (transformer.json `input_fields`).
  application/jsonlines  one such object per line (blank lines skipped); what Batch Transform sends
                         with SplitType=Line, BatchStrategy=MultiRecord.
  text/csv               a header row naming exactly those fields, then one row per subscriber.
Validation (every record, before scoring; errors name the record index and the field):
  missing or unknown field; wrong type (numbers must be JSON numbers, not booleans or strings;
  categoricals strings; booleans true/false, 0/1 or the schema's tokens); non-finite numbers;
  JSON integers beyond +-2^53 (float64's exact range); the schema's numeric domains as the ETL
  data-quality gate enforces them (integer fields whole and 32-bit, values within checks.min/max:
  record_validation.py); null where the schema says not_null; empty payload; more than
  CHURN_MAX_RECORDS records (default 10,000) or CHURN_MAX_PAYLOAD_BYTES bytes (default 6 MiB);
  unsupported content type (415).
Accept is checked before any model work: input_fn(body, content_type, context) reads it from the
serving toolkit's request context (unsupported: 406); callers without a context call check_accept.
Device: CUDA when available (CHURN_DEVICE=auto|cpu|cuda overrides); Neuron-compiled models stay on
the Neuron runtime. CHURN_TORCH_THREADS (default 1) sets torch intra-op threads.
  An unknown category of a closed vocabulary (`checks.allowed`) is an ERROR (the request names the
  allowed values): silently encoding it as "none of the known categories" would score a subscriber
  on information the model never saw. A learned vocabulary is open by design: a value it did not
  learn is encoded as its other bucket, as in training. Offline batch scoring through
  `FeatureTransformer.transform` counts unknowns and other-bucket values.
Response (application/json, default): {"predictions": [{"probability": p, "label": "<text>"}],
  "positive_label": ..., "threshold": ...}; application/jsonlines: one {"probability", "label"} object
  per line, in request order (AssembleWith=Line); text/csv: one "probability,label" line per record.
  A prediction whose record held values of an open vocabulary that the model did not learn also
  carries "unknown_categories": {"<field>": "<value>"} (the values scored as the other bucket), so
  data capture records them for drift. A non-finite probability from the model is never returned:
  the request fails with ModelOutputError (500) naming the records.
Errors: ClientError (4xx) and ModelOutputError (500) are ServingErrors; inside the SageMaker serving
containers those subclass the inference toolkit's BaseInferenceToolkitError, which the toolkit answers
with their status code (record_validation.py).
Torch models are traced for a fixed batch size: batches are padded and chunked to it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    from serving import record_validation as _validation
    from serving import transform as _transform
except ImportError:  # inside model.tar.gz: code/transform.py etc. sit next to this file
    import record_validation as _validation  # type: ignore[no-redef]
    import transform as _transform  # type: ignore[no-redef]

FeatureTransformer = _transform.FeatureTransformer
TransformError = _transform.TransformError
ServingError = _validation.ServingError
ClientError = _validation.ClientError
validate = _validation.validate

JSON_TYPES = ("application/json",)
JSONLINES_TYPES = ("application/jsonlines", "application/x-jsonlines")
CSV_TYPES = ("text/csv",)
SUPPORTED_TYPES = JSON_TYPES + JSONLINES_TYPES + CSV_TYPES
MAX_RECORDS = int(os.environ.get("CHURN_MAX_RECORDS", "10000"))
MAX_PAYLOAD_BYTES = int(os.environ.get("CHURN_MAX_PAYLOAD_BYTES", str(6 * 1024 * 1024)))
TORCH_THREADS = int(os.environ.get("CHURN_TORCH_THREADS", "1"))
DEVICE = os.environ.get("CHURN_DEVICE", "auto")  # auto | cpu | cuda
WARMUP_CALLS = 20


class ModelOutputError(ServingError):
    """The model produced something no response may carry (a non-finite probability): HTTP 500."""

    status_code = 500


@dataclass
class ParsedRequest:
    """Output of input_fn: raw records, not yet checked against the model's fields."""

    records: list[dict[str, Any]]
    from_csv: bool


@dataclass
class ServingModel:
    kind: str
    transformer: Any
    metadata: dict[str, Any]
    model: Any
    batch_size: int
    device: str

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            return np.asarray(self.model.inplace_predict(x), dtype=np.float64)
        import torch

        n, b = len(x), self.batch_size
        out = np.empty(n, dtype=np.float64)
        with torch.no_grad():
            for start in range(0, n, b):
                chunk = x[start : start + b]
                m = len(chunk)
                if m < b:  # pad to the traced (static) batch shape
                    chunk = np.concatenate([chunk, np.zeros((b - m, x.shape[1]), dtype=np.float32)])
                t = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
                if self.device != "cpu":
                    t = t.to(self.device)
                out[start : start + m] = self.model(t)[:m].float().cpu().numpy()
        return out


# --------------------------------------------------------------------------- model_fn
def model_fn(model_dir: str) -> ServingModel:
    root = Path(model_dir)
    meta = json.loads((root / "metadata.json").read_text())
    transformer = FeatureTransformer.load(root / "transformer.json")
    if (root / "model.pt").exists():
        import torch

        with contextlib.suppress(ImportError):  # registers the Neuron ops when running on Inferentia
            import torch_neuronx  # noqa: F401
        neuron = bool(meta.get("compiled", {}).get("neuron"))
        if DEVICE == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("CHURN_DEVICE=cuda but torch.cuda.is_available() is False")
        want_cuda = DEVICE == "cuda" or (DEVICE == "auto" and torch.cuda.is_available())
        device = "cuda" if want_cuda and not neuron else "cpu"
        # A small MLP is fastest single-threaded; intra-op threads only contend with the server.
        torch.set_num_threads(TORCH_THREADS)
        with warnings.catch_warnings():  # TorchScript is the Neuron format; torch >= 2.10 flags torch.jit
            warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
            module = torch.jit.load(str(root / "model.pt"), map_location="cpu")
        module.eval()
        if device == "cuda":
            module = module.to(device)
        batch = int(meta.get("compiled", {}).get("batch_size", 1))
        served = ServingModel("pytorch", transformer, meta, module, batch, device)
        # TorchScript optimises on the first calls; do them here, not on the first requests.
        warm = np.zeros((batch, transformer.n_features), dtype=np.float32)
        for _ in range(WARMUP_CALLS):
            served.predict_matrix(warm)
        return served
    if (root / "model.json").exists():
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(root / "model.json"))
        return ServingModel("xgboost", transformer, meta, booster, 0, "cpu")
    raise FileNotFoundError(f"{root}: neither model.pt (TorchScript) nor model.json (XGBoost) found")


# --------------------------------------------------------------------------- input_fn
def _media_type(content_type: Any) -> str:
    if not isinstance(content_type, str) or not content_type.strip():
        raise ClientError(f"content type must be one of {SUPPORTED_TYPES}, got {content_type!r}", 415)
    return content_type.split(";", 1)[0].strip().lower()


def check_accept(accept: Any) -> str:
    """The response media type for an Accept header; 406 when it names none this handler writes.

    Empty or */* means application/json; in a list ("text/csv, application/json;q=0.5") the first
    supported entry wins."""
    if accept is None or (isinstance(accept, str) and not accept.strip()):
        return JSON_TYPES[0]
    if not isinstance(accept, str):
        raise ClientError(f"accept must be text, got {type(accept).__name__}", 406)
    for entry in accept.split(","):
        media = entry.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*"):
            return JSON_TYPES[0]
        if media in SUPPORTED_TYPES:
            return media
    raise ClientError(f"unsupported accept type {accept.strip()!r:.80}; use one of {list(SUPPORTED_TYPES)}", 406)


def _context_accept(context: Any) -> Any:
    """The Accept header from the serving toolkit's request context (sagemaker-inference passes
    the context to handler functions that take one more argument)."""
    try:
        props = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, TypeError):
        return None
    return props.get("Accept") or props.get("accept")


def _text(body: Any) -> str:
    if isinstance(body, bytes | bytearray | memoryview):
        raw = bytes(body)
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise ClientError(f"payload is {len(raw)} bytes; the limit is {MAX_PAYLOAD_BYTES}", 413)
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ClientError(f"payload is not valid UTF-8 (byte {exc.start})") from None
    if isinstance(body, str):
        if len(body) > MAX_PAYLOAD_BYTES:
            raise ClientError(f"payload is {len(body)} characters; the limit is {MAX_PAYLOAD_BYTES}", 413)
        return body
    raise ClientError(f"payload must be bytes or text, got {type(body).__name__}")


def _check_count(n: int) -> None:
    if n == 0:
        raise ClientError("payload holds no records")
    if n > MAX_RECORDS:
        raise ClientError(f"payload holds {n} records; the limit is {MAX_RECORDS} per request", 413)


def _json(text: str, where: str = "payload") -> Any:
    try:
        # NaN/Infinity literals parse to floats and huge integers to HugeInteger; validation then
        # names the record and field.
        return json.loads(text, parse_int=_validation.parse_int)
    except json.JSONDecodeError as exc:
        raise ClientError(f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ClientError(f"{where}: JSON is nested too deeply") from None


def _jsonlines(text: str) -> list[Any]:
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    _check_count(len(lines))
    records = []
    for i, (n, line) in enumerate(lines):
        rec = _json(line, f"record {i} (line {n})")
        if not isinstance(rec, dict):
            raise ClientError(
                f"record {i} (line {n}): must be a JSON object with the feature fields, got {type(rec).__name__}"
            )
        records.append(rec)
    return records


def input_fn(request_body: Any, request_content_type: Any, context: Any = None) -> ParsedRequest:
    """Parse the payload. With the serving toolkit's `context`, the Accept header is checked first."""
    if context is not None:
        check_accept(_context_accept(context))
    media = _media_type(request_content_type)
    text = _text(request_body)
    if not text.strip():
        raise ClientError("payload is empty")
    if media in JSONLINES_TYPES:
        return ParsedRequest(_jsonlines(text), from_csv=False)
    if media in JSON_TYPES:
        doc = _json(text)
        if isinstance(doc, dict) and set(doc) == {"instances"}:
            doc = doc["instances"]
            if not isinstance(doc, list):
                raise ClientError(f"'instances' must be a list of objects, got {type(doc).__name__}")
        records = doc if isinstance(doc, list) else [doc]
        _check_count(len(records))
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise ClientError(
                    f"record {i}: must be a JSON object with the feature fields, got {type(rec).__name__}"
                )
        return ParsedRequest(records, from_csv=False)
    if media in CSV_TYPES:
        try:
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
        except csv.Error as exc:
            raise ClientError(f"payload is not valid CSV: {exc}") from None
        rows = [r for r in rows if r]  # blank lines carry no record
        if not rows:
            raise ClientError("payload is empty")
        header = [h.strip() for h in rows[0]]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise ClientError(f"CSV header: duplicate field(s) {dupes}")
        _check_count(len(rows) - 1)
        records = []
        for i, row in enumerate(rows[1:]):
            if len(row) != len(header):
                raise ClientError(f"record {i}: has {len(row)} values, the header names {len(header)} fields")
            records.append(dict(zip(header, row, strict=True)))
        return ParsedRequest(records, from_csv=True)
    raise ClientError(f"unsupported content type {media!r}; use one of {list(SUPPORTED_TYPES)}", 415)


# --------------------------------------------------------------------------- predict / output
def predict_fn(input_data: ParsedRequest, model: ServingModel) -> dict[str, Any]:
    if not isinstance(input_data, ParsedRequest):
        raise ClientError(f"predict_fn expects the output of input_fn, got {type(input_data).__name__}")
    columns = validate(input_data.records, input_data.from_csv, model.transformer)
    # Booleans arrive already encoded 0/1 (NaN = null): hand them over as objects the transformer maps.
    for c in model.transformer.boolean:
        b = columns[c["name"]]
        nulls = np.isnan(b)
        if nulls.any():
            obj = (b == 1.0).astype(object)
            obj[nulls] = None
            columns[c["name"]] = obj
        else:
            columns[c["name"]] = b == 1.0
    try:
        x = model.transformer.transform(columns)
    except TransformError as exc:  # validation should have caught it; still a client error
        raise ClientError(str(exc)) from None
    proba = model.predict_matrix(x)
    bad = np.flatnonzero(~np.isfinite(proba))
    if bad.size:
        raise ModelOutputError(
            f"the model produced a non-finite probability for {bad.size} record(s), "
            f"first: record {int(bad[0])} ({proba[bad[0]]!r}); nothing is returned"
        )
    threshold = float(model.metadata.get("decision_threshold", 0.5))
    labels = model.transformer.spec["labels"]
    return {
        "probabilities": proba,
        "positive": proba >= threshold,
        "threshold": threshold,
        "positive_label": labels["positive"],
        "negative_label": labels["negative"],
        "unknown_categories": unknown_categories(columns, model.transformer),
    }


def unknown_categories(columns: dict[str, Any], transformer: Any) -> dict[int, dict[str, str]]:
    """Record index -> {field: value} for values of open vocabularies that the model did not learn
    (scored as the other bucket); only records that hold one."""
    out: dict[int, dict[str, str]] = {}
    for col in transformer.categorical:
        if col.get("other_bucket") is None:
            continue
        learned = set(col["categories"][:-1])  # the last category is the bucket itself
        for i, v in enumerate(columns[col["name"]]):
            if isinstance(v, str) and v not in learned:
                out.setdefault(i, {})[col["name"]] = v
    return out


def output_fn(prediction: dict[str, Any], accept: Any) -> str:
    media = check_accept(accept)
    probs = prediction["probabilities"].tolist()
    pos, neg = prediction["positive_label"], prediction["negative_label"]
    labels = [pos if flag else neg for flag in prediction["positive"].tolist()]
    if media in CSV_TYPES:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for p, lbl in zip(probs, labels, strict=True):
            w.writerow([repr(p), lbl])
        return buf.getvalue()
    preds: list[dict[str, Any]] = [{"probability": p, "label": lbl} for p, lbl in zip(probs, labels, strict=True)]
    for i, unknown in prediction.get("unknown_categories", {}).items():
        preds[i]["unknown_categories"] = unknown
    if media in JSONLINES_TYPES:
        return "".join(json.dumps(p, allow_nan=False) + "\n" for p in preds)
    return json.dumps(
        {"predictions": preds, "positive_label": pos, "threshold": prediction["threshold"]}, allow_nan=False
    )
