"""SageMaker training-container conventions shared by train_xgboost and train_pytorch.

Paths default to the SM_* environment variables SageMaker sets, then to the standard
/opt/ml locations, so `main([...])` runs unchanged locally with explicit arguments.
Hyperparameters are CLI options; SageMaker passes them as `--name value`, and both
`--max-depth` and `--max_depth` spellings are accepted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dataset.schema import DatasetSchema
from serving.transform import FeatureTransformer, TransformError
from training_jobs.artifacts import METADATA_FILE, SCHEMA_COPY, TRANSFORMER_FILE, schema_and_transformer, write_json
from training_jobs.errors import JobError
from training_jobs.metrics import basic_metrics, best_f1_threshold
from training_jobs.splits import read_split


def env_default(name: str, fallback: str) -> str:
    return os.environ.get(name, fallback)


def base_parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--model-dir", "--model_dir", dest="model_dir",
                    default=env_default("SM_MODEL_DIR", "/opt/ml/model"))
    ap.add_argument("--train", default=env_default("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    ap.add_argument("--validation",
                    default=env_default("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    ap.add_argument("--transformer",
                    default=env_default("SM_CHANNEL_TRANSFORMER", "/opt/ml/input/data/transformer"),
                    help="channel holding transformer.json + schema.yaml from preprocess")
    ap.add_argument("--output-data-dir", "--output_data_dir", dest="output_data_dir",
                    default=env_default("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    ap.add_argument("--seed", type=int, default=42)
    hp(ap, "refit-on-validation", type=flag, default=True,
       help="after early stopping, retrain (same seed) on train+validation for the early-stopped number of "
            "rounds/epochs; validation metrics, threshold and champion choice stay those of the early-stopped "
            "model")
    return ap


def hp(ap: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """Add a hyperparameter accepting both --kebab-case and --snake_case."""
    ap.add_argument(f"--{name}", f"--{name.replace('-', '_')}", dest=name.replace("-", "_"), **kwargs)


def flag(value: str | bool) -> bool:
    """A boolean hyperparameter as SageMaker passes it ("true"/"false", "1"/"0", …)."""
    if isinstance(value, bool):
        return value
    v = value.strip().lower()
    if v in ("true", "1", "yes", "y", "on"):
        return True
    if v in ("false", "0", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def positive(ap: argparse.ArgumentParser, args: argparse.Namespace, names: list[str]) -> None:
    for n in names:
        v = getattr(args, n)
        if not (isinstance(v, int | float) and v > 0 and np.isfinite(v)):
            ap.error(f"--{n.replace('_', '-')} must be a positive number, got {v}")


@dataclass
class TrainingData:
    schema: DatasetSchema
    transformer: FeatureTransformer
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


def load_training_data(args: argparse.Namespace) -> TrainingData:
    for label, path in (("train", args.train), ("validation", args.validation),
                        ("transformer", args.transformer)):
        if not Path(path).exists():
            raise JobError(f"channel '{label}': {path} does not exist")
    schema, transformer = schema_and_transformer(Path(args.transformer))
    tr, y_tr = read_split(args.train, schema)
    va, y_va = read_split(args.validation, schema)
    for label, y in (("train", y_tr), ("validation", y_va)):
        if len(np.unique(y)) < 2:
            raise JobError(f"channel '{label}': needs both classes, got only {np.unique(y).tolist()}")
    try:
        x_tr, x_va = transformer.transform(tr), transformer.transform(va)
    except TransformError as exc:
        raise JobError(f"transforming training data: {exc}") from None
    return TrainingData(schema, transformer, x_tr, y_tr, x_va, y_va)


def train_plus_validation(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """Both channels stacked: the data a refit after early stopping trains on."""
    return np.concatenate([data.x_train, data.x_val]), np.concatenate([data.y_train, data.y_val])


def finish_artifact(args: argparse.Namespace, data: TrainingData, model_type: str,
                    p_train: np.ndarray, p_val: np.ndarray, extra: dict[str, Any]) -> dict[str, Any]:
    """Copy transformer + schema next to the model, write metadata.json and the metrics file."""
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(args.transformer) / TRANSFORMER_FILE, model_dir / TRANSFORMER_FILE)
    shutil.copyfile(Path(args.transformer) / SCHEMA_COPY, model_dir / SCHEMA_COPY)
    threshold = best_f1_threshold(data.y_val, p_val)
    train_m = basic_metrics(data.y_train, p_train, threshold)
    val_m = basic_metrics(data.y_val, p_val, threshold)
    metrics = {**{f"train_{k}": v for k, v in train_m.items()},
               **{f"validation_{k}": v for k, v in val_m.items()}}
    schema = data.schema
    meta = {
        "model_type": model_type,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
        "labels": data.transformer.spec["labels"],
        "decision_threshold": threshold,
        "threshold_rule": "maximises F1 on the validation channel",
        "metrics": metrics,
        "feature_names": data.transformer.feature_names,
        "input_fields": data.transformer.input_fields,
        "rows": {"train": len(data.y_train), "validation": len(data.y_val)},
        "seed": args.seed,
        "python": platform.python_version(),
        **extra,
    }
    write_json(model_dir / METADATA_FILE, meta)
    write_json(Path(args.output_data_dir) / "metrics.json", metrics)
    for k in ("validation_roc_auc", "validation_f1", "validation_top_decile_lift", "train_roc_auc"):
        print(f"{k.replace('_', ':', 1)}={metrics[k]:.6f}")
    return meta
