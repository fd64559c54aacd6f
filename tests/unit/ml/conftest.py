"""Shared, session-scoped artefacts for the ML tests: real IBM Telco data, quick hyperparameters."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataset.schema import load_schema
from dataset.sources import export_snapshot
from training_jobs import compile_model, preprocess, train_pytorch, train_xgboost

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml"
QUICK_XGB = ["--num-round", "200", "--eta", "0.1", "--early-stopping-rounds", "30", "--nthread", "1"]
QUICK_PT = ["--epochs", "12", "--patience", "4"]


def channels(prep: Path) -> list[str]:
    return [
        "--train",
        str(prep / "train"),
        "--validation",
        str(prep / "validation"),
        "--transformer",
        str(prep / "transformer"),
    ]


@pytest.fixture(scope="session")
def schema():
    return load_schema(SCHEMA)


@pytest.fixture(scope="session")
def raw_csv(tmp_path_factory, schema) -> Path:
    return export_snapshot(schema, tmp_path_factory.mktemp("raw") / "snapshot.csv")


@pytest.fixture(scope="session")
def prep(tmp_path_factory, raw_csv) -> Path:
    out = tmp_path_factory.mktemp("prep")
    assert preprocess.main(["--input-data", str(raw_csv), "--schema", str(SCHEMA), "--output-dir", str(out)]) == 0
    return out


def _train(job, out: Path, prep: Path, quick: list[str]) -> Path:
    rc = job.main([*channels(prep), "--model-dir", str(out / "model"), "--output-data-dir", str(out / "data"), *quick])
    assert rc == 0
    return out / "model"


@pytest.fixture(scope="session")
def xgb_model(tmp_path_factory, prep) -> Path:
    return _train(train_xgboost, tmp_path_factory.mktemp("xgb"), prep, QUICK_XGB)


@pytest.fixture(scope="session")
def pt_model(tmp_path_factory, prep) -> Path:
    return _train(train_pytorch, tmp_path_factory.mktemp("pt"), prep, QUICK_PT)


@pytest.fixture(scope="session")
def pt_package(tmp_path_factory, pt_model) -> Path:
    out = tmp_path_factory.mktemp("pkg")
    assert compile_model.main(["--model-dir", str(pt_model), "--output-dir", str(out), "--batch-size", "16"]) == 0
    return out / "model.tar.gz"


@pytest.fixture(scope="session")
def served(tmp_path_factory, pt_package):
    """(handler module, loaded model) from the extracted package, as the container sees it."""
    import tarfile

    from serving import inference

    root = tmp_path_factory.mktemp("served")
    with tarfile.open(pt_package) as tar:
        tar.extractall(root, filter="data")
    return inference, inference.model_fn(str(root))
