"""The serve step: the champion's model.tar.gz, extracted as the endpoint container would, scores
the held-out test split through code/inference.py (model_fn / input_fn / predict_fn / output_fn).
The served probabilities must equal what evaluate computed from the training artefact.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_jobs.splits import read_split

CONTAINER_MODEL_DIR = "/opt/ml/model"


def _load_handler(code_dir: Path) -> Any:
    """Import the packaged code/inference.py by path, with code/ first on sys.path."""
    sys.path.insert(0, str(code_dir))
    try:
        spec = importlib.util.spec_from_file_location("twin_served_inference", code_dir / "inference.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(code_dir))
    return module


def extract_package(tarball: Path, model_dir: Path) -> Path:
    """model.tar.gz extracted into a fresh `model_dir`, as SageMaker extracts it to /opt/ml/model."""
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(model_dir, filter="data")
    return model_dir


def load_served_model(model_dir: Path) -> tuple[Any, Any]:
    """(handler module, model_fn's model) of an extracted package: its code/inference.py, loaded
    the way the serving container loads it."""
    handler = _load_handler(model_dir / "code")
    return handler, handler.model_fn(str(model_dir))


def serve_package(tarball: Path, work: Path, test_dir: Path, schema: Any, eval_predictions: Path) -> dict[str, Any]:
    model_dir = extract_package(tarball, work / "model")
    handler, model = load_served_model(model_dir)
    frame, _ = read_split(test_dir, schema)
    fields = model.transformer.input_fields
    records = []
    for rec in frame[fields].to_dict(orient="records"):
        records.append({k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in rec.items()})
    body = json.dumps({"instances": records}).encode()
    t0 = time.perf_counter()
    response = handler.output_fn(
        handler.predict_fn(handler.input_fn(body, "application/json"), model), "application/json"
    )
    elapsed = time.perf_counter() - t0
    served = json.loads(response)["predictions"]
    probs = np.array([p["probability"] for p in served])
    evaluated = pd.read_csv(eval_predictions)["probability"].to_numpy()
    (work / "response.json").write_text(response)
    labels = pd.Series([p["label"] for p in served]).value_counts().to_dict()
    return {
        "rows": len(served),
        "content_type": "application/json",
        "model_kind": model.kind,
        "device": model.device,
        "max_abs_diff_vs_evaluate": float(np.max(np.abs(probs - evaluated))),
        "seconds": elapsed,
        "rows_per_s": len(served) / elapsed if elapsed > 0 else float("inf"),
        "label_counts": {str(k): int(v) for k, v in labels.items()},
    }
