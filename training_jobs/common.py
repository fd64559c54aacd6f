"""Helpers shared by the preprocessing, training, evaluation and compile scripts.

Split files (train/validation/test) are CSV with a header: the id column, the schema's raw
feature columns and the target as 0/1. Booleans are written as the schema's first true/false
token so that any schema round-trips through CSV unchanged.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_jobs.schema import DatasetSchema, SchemaError, load_schema
from training_jobs.transform import FeatureTransformer, TransformError

SCHEMA_COPY = "schema.yaml"
TRANSFORMER_FILE = "transformer.json"
METADATA_FILE = "metadata.json"
SPLIT_FILE = "data.csv"


class JobError(RuntimeError):
    """A job cannot run with the given inputs; the message says what and where."""


# --------------------------------------------------------------------------- tables
def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet dir/file or a CSV dir/file (all text columns kept as written)."""
    path = Path(path)
    if not path.exists():
        raise JobError(f"{path}: input data not found")
    if path.is_dir():
        parquet = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        csvs = sorted(p for p in path.rglob("*.csv") if p.is_file())
        if parquet:
            return pd.read_parquet(path if any(path.iterdir()) else parquet[0])
        if csvs:
            return pd.concat([_read_csv(p) for p in csvs], ignore_index=True)
        raise JobError(f"{path}: directory holds no .parquet or .csv files")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    raise JobError(f"{path}: unsupported input format '{path.suffix}' (expected .parquet or .csv)")


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise JobError(f"{path}: cannot parse CSV ({exc})") from None


def target_vector(frame: pd.DataFrame, schema: DatasetSchema, where: str) -> np.ndarray:
    """Target as int 0/1: accepts 0/1 (feature table) or the schema's label text (raw snapshot)."""
    col = schema.target_column
    if col not in frame:
        raise JobError(f"{where}: target column '{col}' missing")
    values = frame[col]
    as_text = values.astype(str).str.strip()
    if as_text.isin(["0", "1", "0.0", "1.0", "True", "False"]).all():
        return as_text.isin(["1", "1.0", "True"]).to_numpy(dtype=np.int64)
    spec = schema.column(col)
    allowed = set(spec.allowed) if spec.allowed else None
    bad = as_text[~as_text.isin(allowed)] if allowed else as_text[as_text.isin(["", "nan", "None"])]
    if len(bad):
        i = int(bad.index[0])
        raise JobError(f"{where}: row {i}: target '{col}' value {bad.iloc[0]!r} is not one of "
                       f"{sorted(allowed) if allowed else 'a non-empty label'}")
    return (as_text == schema.positive_label).to_numpy(dtype=np.int64)


def normalise_features(frame: pd.DataFrame, schema: DatasetSchema, where: str) -> pd.DataFrame:
    """Typed copy of the id + feature columns: categorical str/None, numeric float, bool tokens."""
    missing = [c for c in [schema.id_column, *schema.raw_feature_columns] if c not in frame]
    if missing:
        raise JobError(f"{where}: missing columns {missing} required by schema '{schema.name}' "
                       f"({schema.path})")
    out = pd.DataFrame(index=frame.index)
    out[schema.id_column] = frame[schema.id_column].astype(str)
    for c in schema.categorical_columns:
        col = frame[c].astype(object)
        out[c] = col.where(~col.isna() & (col.astype(str) != ""), None).astype(object)
    for c in schema.numeric_columns:
        raw = frame[c]
        if not pd.api.types.is_numeric_dtype(raw):
            raw = raw.astype(object).where(raw.astype(str).str.strip() != "", None)
        num = pd.to_numeric(raw, errors="coerce")
        bad = num.isna() & raw.notna()
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise JobError(f"{where}: row {i}: column '{c}' value {raw.iloc[i]!r} is not a number")
        out[c] = num.astype(np.float64)
    for c in schema.boolean_columns:
        spec = schema.column(c)
        try:
            col = frame[c].astype(object)
            col = col.where(col.astype(str) != "", None)
            vals = FeatureTransformer._bool_values(np.asarray(col, dtype=object), c,
                                                   spec.true_values, spec.false_values)
        except TransformError as exc:
            raise JobError(f"{where}: {exc}") from None
        tokens = np.where(vals == 1.0, spec.true_values[0], spec.false_values[0]).astype(object)
        tokens[np.isnan(vals)] = None
        out[c] = tokens
    return out


def write_split(frame: pd.DataFrame, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / SPLIT_FILE
    frame.to_csv(path, index=False)
    return path


def read_split(path: str | Path, schema: DatasetSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a split written by preprocess (dir or file) -> (features frame, target 0/1)."""
    path = Path(path)
    frame = read_table(path)
    where = str(path)
    y = target_vector(frame, schema, where)
    return normalise_features(frame, schema, where), y


# --------------------------------------------------------------------------- metrics
def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC with tie correction (numpy only)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(p), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Probability threshold that maximises F1 on (validation) data."""
    order = np.argsort(-p, kind="mergesort")
    ys, ps = np.asarray(y)[order], np.asarray(p)[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    total = ys.sum()
    if total == 0:
        return 0.5
    f1 = 2 * tp / (k + total)
    # Only cut between distinct scores.
    distinct = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(distinct, f1, -1)
    best = int(np.argmax(f1))
    nxt = ps[best + 1] if best + 1 < len(ps) else ps[best] - 1e-6
    return float((ps[best] + nxt) / 2.0)


def top_decile(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    n = len(y)
    k = max(1, int(np.ceil(n * 0.1)))
    top = np.argsort(-p, kind="mergesort")[:k]
    base = float(np.mean(y)) if n else 0.0
    rate = float(np.mean(y[top]))
    total = float(np.sum(y))
    return {"top_decile_lift": rate / base if base > 0 else float("nan"),
            "top_decile_capture_rate": float(np.sum(y[top])) / total if total > 0 else float("nan"),
            "top_decile_churn_rate": rate, "base_churn_rate": base}


def basic_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    yb = np.asarray(y).astype(bool)
    tp = int((pred & yb).sum())
    fp = int((pred & ~yb).sum())
    fn = int((~pred & yb).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"roc_auc": roc_auc(y, p), "f1": f1, "precision": prec, "recall": rec,
            "brier": float(np.mean((p - y) ** 2)), **top_decile(y, p)}


# --------------------------------------------------------------------------- artefacts
def schema_and_transformer(transformer_dir: Path) -> tuple[DatasetSchema, FeatureTransformer]:
    """Load the schema copy and transformer.json written by preprocess (or an artefact dir)."""
    schema_path = transformer_dir / SCHEMA_COPY
    try:
        schema = load_schema(schema_path)
    except SchemaError as exc:
        raise JobError(str(exc)) from None
    transformer = FeatureTransformer.load(transformer_dir / TRANSFORMER_FILE)
    if transformer.spec["schema"]["fingerprint"] != schema.fingerprint:
        raise JobError(f"{transformer_dir}: transformer.json was fitted for schema fingerprint "
                       f"{transformer.spec['schema']['fingerprint']}, schema.yaml has {schema.fingerprint}")
    return schema, transformer


def copy_schema(schema: DatasetSchema, dest_dir: Path) -> None:
    dest_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(schema.path, dest_dir / SCHEMA_COPY)


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default))
    return path


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_metadata(model_dir: Path) -> dict[str, Any]:
    path = model_dir / METADATA_FILE
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise JobError(f"{path}: model metadata not found (is {model_dir} a model artefact?)") from None
    except json.JSONDecodeError as exc:
        raise JobError(f"{path}: not valid JSON ({exc})") from None
    return meta


def resolve_model_dir(path: str | Path, scratch: Path) -> Path:
    """A model artefact dir, or a model.tar.gz (SageMaker hands models over as tarballs)."""
    path = Path(path)
    if path.is_dir():
        tars = list(path.glob("model.tar.gz"))
        if (path / METADATA_FILE).exists() or not tars:
            return path
        path = tars[0]
    if path.name.endswith(".tar.gz") and path.is_file():
        scratch.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path) as tar:
            tar.extractall(scratch, filter="data")
        return scratch
    raise JobError(f"{path}: not a model directory or model.tar.gz")


@dataclass
class LoadedModel:
    """A trained artefact ready to score raw feature frames (used by evaluate and the twin)."""

    kind: str
    metadata: dict[str, Any]
    transformer: FeatureTransformer
    schema: DatasetSchema
    model: Any

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "xgboost":
            return np.asarray(self.model.inplace_predict(x), dtype=np.float64)
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return out.numpy().astype(np.float64)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.transformer.transform(frame))


def load_model(model_dir: Path) -> LoadedModel:
    meta = read_metadata(model_dir)
    schema, transformer = schema_and_transformer(model_dir)
    kind = meta.get("model_type")
    if kind == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(model_dir / "model.json"))
        return LoadedModel(kind, meta, transformer, schema, booster)
    if kind == "pytorch":
        import torch

        from training_jobs.nets import ChurnProbability, build_net

        net = build_net(meta["architecture"])
        state = torch.load(model_dir / "model_state.pt", map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        net.eval()
        return LoadedModel(kind, meta, transformer, schema, ChurnProbability(net).eval())
    raise JobError(f"{model_dir / METADATA_FILE}: unknown model_type {kind!r} (expected xgboost or pytorch)")
