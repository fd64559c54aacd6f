"""Model artefacts: the files a training job leaves in its model directory and how to load them.

A model directory holds metadata.json, transformer.json, the schema copy and the model itself
(model.json for XGBoost, model_state.pt for PyTorch); SageMaker hands it over as model.tar.gz.
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

from dataset.schema import DatasetSchema, SchemaError, load_schema
from serving.transform import FeatureTransformer
from training_jobs.errors import JobError

SCHEMA_COPY = "schema.yaml"
TRANSFORMER_FILE = "transformer.json"
METADATA_FILE = "metadata.json"


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
