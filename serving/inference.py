"""SageMaker inference handler (model_fn / input_fn / predict_fn / output_fn).

Ships as `code/inference.py` inside model.tar.gz together with `code/transform.py`; it needs
numpy and torch (PyTorch/Neuron containers) or xgboost (for an XGBoost champion), never this
repository, pandas or scikit-learn.

Request formats
  application/json  one object, a list of objects, or {"instances": [objects]}; each object has
                    exactly the schema's raw feature fields (transformer.json `input_fields`).
  text/csv          a header row naming exactly those fields, then one row per subscriber.
Validation (every record, before scoring; errors name the record index and the field):
  missing or unknown field; wrong type (numbers must be JSON numbers, not booleans or strings;
  categoricals strings; booleans true/false, 0/1 or the schema's tokens); non-finite numbers;
  null where the schema says not_null; empty payload; more than CHURN_MAX_RECORDS records
  (default 10,000) or CHURN_MAX_PAYLOAD_BYTES bytes (default 6 MiB); unsupported content type.
Device: CUDA when available (CHURN_DEVICE=auto|cpu|cuda overrides); Neuron-compiled models stay on
the Neuron runtime. CHURN_TORCH_THREADS (default 1) sets torch intra-op threads.
  An unknown category is an ERROR (the request names the allowed values): silently encoding it
  as "none of the known categories" would score a subscriber on information the model never saw.
  Offline batch scoring through `FeatureTransformer.transform` instead counts unknowns.
Response (application/json, default): {"predictions": [{"probability": p, "label": "<text>"}],
  "positive_label": ..., "threshold": ...}; text/csv: one "probability,label" line per record.
Torch models are traced for a fixed batch size: batches are padded and chunked to it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    from serving import transform as _transform
except ImportError:  # inside model.tar.gz: code/transform.py sits next to this file
    import transform as _transform  # type: ignore[no-redef]

FeatureTransformer = _transform.FeatureTransformer
TransformError = _transform.TransformError

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv",)
MAX_RECORDS = int(os.environ.get("CHURN_MAX_RECORDS", "10000"))
MAX_PAYLOAD_BYTES = int(os.environ.get("CHURN_MAX_PAYLOAD_BYTES", str(6 * 1024 * 1024)))
TORCH_THREADS = int(os.environ.get("CHURN_TORCH_THREADS", "1"))
DEVICE = os.environ.get("CHURN_DEVICE", "auto")  # auto | cpu | cuda
WARMUP_CALLS = 20


class ClientError(ValueError):
    """The request is malformed; maps to HTTP 4xx. The message names record and field."""

    status_code = 400

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


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
                chunk = x[start:start + b]
                m = len(chunk)
                if m < b:  # pad to the traced (static) batch shape
                    chunk = np.concatenate([chunk, np.zeros((b - m, x.shape[1]), dtype=np.float32)])
                t = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
                if self.device != "cpu":
                    t = t.to(self.device)
                out[start:start + m] = self.model(t)[:m].float().cpu().numpy()
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
        raise ClientError(f"content type must be one of {JSON_TYPES + CSV_TYPES}, got {content_type!r}", 415)
    return content_type.split(";", 1)[0].strip().lower()


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


def input_fn(request_body: Any, request_content_type: Any) -> ParsedRequest:
    media = _media_type(request_content_type)
    text = _text(request_body)
    if not text.strip():
        raise ClientError("payload is empty")
    if media in JSON_TYPES:
        try:
            # NaN/Infinity literals parse to floats; validation then names the record and field.
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ClientError(f"payload is not valid JSON: {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}") from None
        except RecursionError:
            raise ClientError("payload JSON is nested too deeply") from None
        if isinstance(doc, dict) and set(doc) == {"instances"}:
            doc = doc["instances"]
            if not isinstance(doc, list):
                raise ClientError(f"'instances' must be a list of objects, got {type(doc).__name__}")
        records = doc if isinstance(doc, list) else [doc]
        _check_count(len(records))
        for i, rec in enumerate(records):
            if not isinstance(rec, dict):
                raise ClientError(f"record {i}: must be a JSON object with the feature fields, "
                                  f"got {type(rec).__name__}")
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
    raise ClientError(f"unsupported content type {media!r}; use application/json or text/csv", 415)


# --------------------------------------------------------------------------- validation
def _first_bad(values: list[Any], ok: Any) -> int:
    for i, v in enumerate(values):
        if not ok(v):
            return i
    return -1


def _numeric(name: str, values: list[Any], nullable: bool, from_csv: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        if from_csv and isinstance(v, str):
            s = v.strip()
            if s == "":
                v = None
            else:
                try:
                    v = float(s)
                except ValueError:
                    raise ClientError(f"record {i}, field '{name}': expected a number, got {v!r}") from None
        if v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
            continue
        t = type(v)
        if t is not int and t is not float:
            raise ClientError(f"record {i}, field '{name}': expected a number, got "
                              f"{'boolean' if t is bool else t.__name__} {v!r:.40}")
        try:
            f = float(v)
        except OverflowError:
            raise ClientError(f"record {i}, field '{name}': number out of range") from None
        if not math.isfinite(f):
            raise ClientError(f"record {i}, field '{name}': must be a finite number, got {v!r}")
        out[i] = f
    return out


def _categorical(name: str, values: list[Any], allowed: set[str], nullable: bool, from_csv: bool
                 ) -> list[Any]:
    if from_csv:
        values = [None if v.strip() == "" else v for v in values]
    for i, v in enumerate(values):
        if v.__class__ is str and v in allowed:
            continue
        if v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            continue
        if not isinstance(v, str):
            raise ClientError(f"record {i}, field '{name}': expected a string category, got "
                              f"{type(v).__name__} {v!r:.40}")
        raise ClientError(f"record {i}, field '{name}': unknown category {v!r:.60}; "
                          f"allowed: {sorted(allowed)}")
    return values


def _boolean(name: str, values: list[Any], mapping: dict[str, float], nullable: bool, from_csv: bool
             ) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float32)
    for i, v in enumerate(values):
        t = type(v)
        if t is bool:
            out[i] = 1.0 if v else 0.0
        elif t is str:
            hit = mapping.get(v.strip().lower())
            if hit is None:
                if from_csv and v.strip() == "":
                    if not nullable:
                        raise ClientError(f"record {i}, field '{name}': must not be empty")
                    out[i] = np.nan
                    continue
                raise ClientError(f"record {i}, field '{name}': {v!r:.40} is not a boolean; use true/false "
                                  f"or one of {sorted(mapping)}")
            out[i] = hit
        elif t is int and v in (0, 1):
            out[i] = float(v)
        elif v is None:
            if not nullable:
                raise ClientError(f"record {i}, field '{name}': must not be null")
            out[i] = np.nan
        else:
            raise ClientError(f"record {i}, field '{name}': expected a boolean, got {t.__name__} {v!r:.40}")
    return out


def validate(request: ParsedRequest, transformer: Any) -> dict[str, Any]:
    """Check every record against the transformer's fields; return typed columns."""
    fields = transformer.input_fields
    field_set = set(fields)
    records = request.records
    for i, rec in enumerate(records):
        if rec.keys() != field_set:
            keys = set(rec)
            missing = [f for f in fields if f not in keys]
            if missing:
                raise ClientError(f"record {i}: missing field '{missing[0]}'"
                                  + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
            unknown = sorted(str(k) for k in keys - field_set)
            raise ClientError(f"record {i}: unknown field '{unknown[0]:.60}'; expected fields: {fields}")
    columns: dict[str, Any] = {}
    cats = {c["name"]: c for c in transformer.categorical}
    bools = {c["name"]: c for c in transformer.boolean}
    nums = {c["name"]: c for c in transformer.numeric}
    for name in fields:
        values = [r[name] for r in records]
        if name in nums:
            c = nums[name]
            nullable = bool(c.get("nullable", True)) or "null_fill" in c
            columns[name] = _numeric(name, values, nullable, request.from_csv)
        elif name in cats:
            c = cats[name]
            vals = _categorical(name, values, set(c["categories"]), bool(c.get("nullable", True)),
                                request.from_csv)
            columns[name] = np.array(vals, dtype=object)
        else:
            c = bools[name]
            mapping = {t: 1.0 for t in c["true_values"]} | {t: 0.0 for t in c["false_values"]}
            mapping |= {"true": 1.0, "false": 0.0}
            columns[name] = _boolean(name, values, mapping, bool(c.get("nullable", True)), request.from_csv)
    for c in transformer.numeric:
        rule = c.get("null_fill")
        if rule is None:
            continue
        col = columns[c["name"]]
        nulls = np.isnan(col)
        if not nulls.any():
            continue
        when = columns[rule["when_column"]]
        ok = np.ones(len(col), dtype=bool)
        if rule["when_min"] is not None:
            ok &= when >= rule["when_min"]
        if rule["when_max"] is not None:
            ok &= when <= rule["when_max"]
        bad = nulls & ~ok
        if bad.any() and not c.get("nullable", True):
            i = int(np.argmax(bad))
            raise ClientError(f"record {i}, field '{c['name']}': must not be null (null is accepted only "
                              f"when '{rule['when_column']}' is within [{rule['when_min']}, "
                              f"{rule['when_max']}])")
        col[nulls & ok] = rule["value"]
    return columns


# --------------------------------------------------------------------------- predict / output
def predict_fn(input_data: ParsedRequest, model: ServingModel) -> dict[str, Any]:
    if not isinstance(input_data, ParsedRequest):
        raise ClientError(f"predict_fn expects the output of input_fn, got {type(input_data).__name__}")
    columns = validate(input_data, model.transformer)
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
    threshold = float(model.metadata.get("decision_threshold", 0.5))
    labels = model.transformer.spec["labels"]
    return {"probabilities": proba, "positive": proba >= threshold, "threshold": threshold,
            "positive_label": labels["positive"], "negative_label": labels["negative"]}


def output_fn(prediction: dict[str, Any], accept: Any) -> str:
    media = "application/json" if not accept or accept == "*/*" else _media_type(accept)
    probs = prediction["probabilities"].tolist()
    pos, neg = prediction["positive_label"], prediction["negative_label"]
    labels = [pos if flag else neg for flag in prediction["positive"].tolist()]
    if media in JSON_TYPES:
        body = json.dumps({"predictions": [{"probability": p, "label": lbl} for p, lbl in zip(probs, labels,
                                                                                          strict=True)],
                           "positive_label": pos, "threshold": prediction["threshold"]})
        return body
    if media in CSV_TYPES:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for p, lbl in zip(probs, labels, strict=True):
            w.writerow([repr(p), lbl])
        return buf.getvalue()
    raise ClientError(f"unsupported accept type {media!r}; use application/json or text/csv", 406)
