"""MLflow tracking + model registry for the twin: local SQLite store, no server, no network.

The store (<out>-runs/mlflow/) is shared by the runs of one --out, as a registry is: versions
accumulate and the database is created (MLflow's schema migrations) only once.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

# Offline by construction: no telemetry, no requirement inference against an index.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


class Tracker:
    def __init__(self, store_dir: Path, experiment: str):
        with warnings.catch_warnings():
            # MLflow's own ORM models use SQLAlchemy's deprecated `noload` loader; SQLAlchemy warns once,
            # when MLflow imports its SQL store. It is MLflow's to fix, not something the twin calls.
            warnings.filterwarnings("ignore", message=r"The ``noload`` loader strategy", category=DeprecationWarning)
            import mlflow
            import mlflow.store.tracking.sqlalchemy_store

        logging.getLogger("mlflow").setLevel(logging.ERROR)
        store_dir.mkdir(parents=True, exist_ok=True)
        self.mlflow = mlflow
        self.db_path = (store_dir / "mlflow.db").resolve()
        self.uri = f"sqlite:///{self.db_path}"
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        artifacts = (store_dir / "mlartifacts").resolve()
        client = mlflow.MlflowClient(self.uri, self.uri)
        exp = client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(experiment, artifacts.as_uri())
        mlflow.set_experiment(experiment_id=exp_id)
        self.client = client

    def start(self, name: str, nested: bool = False) -> Any:
        return self.mlflow.start_run(run_name=name, nested=nested)

    def log_params(self, params: dict[str, Any]) -> None:
        self.mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, metrics: dict[str, float]) -> None:
        clean = {k: float(v) for k, v in metrics.items()
                 if isinstance(v, int | float) and not isinstance(v, bool) and v == v}
        self.mlflow.log_metrics(clean)

    def log_artifact(self, path: Path, subdir: str | None = None) -> None:
        self.mlflow.log_artifact(str(path), artifact_path=subdir)

    def log_xgboost(self, model_dir: Path) -> Any:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(model_dir / "model.json"))
        return self.mlflow.xgboost.log_model(booster, name="model", model_format="json",
                                             pip_requirements=[f"xgboost=={xgb.__version__}"])

    def log_pytorch(self, module: Any, code_dir: Path) -> Any:
        """The eager module, pickled; `code_dir` (the package defining its classes) travels with it.

        Not TorchScript (torch.jit is deprecated) and not torch.export's pt2 (it costs seconds of
        graph capture for a copy nobody serves): the endpoint's TorchScript comes from compile.
        """
        import torch

        return self.mlflow.pytorch.log_model(module, name="model", serialization_format="pickle",
                                             code_paths=[str(code_dir)],
                                             pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def register(self, model_uri: str, name: str, approved: bool, tags: dict[str, str]) -> dict[str, Any]:
        version = self.mlflow.register_model(model_uri, name)
        status = "Approved" if approved else "Rejected"
        self.client.set_model_version_tag(name, version.version, "approval_status", status)
        for k, v in tags.items():
            self.client.set_model_version_tag(name, version.version, k, v)
        if approved:
            self.client.set_registered_model_alias(name, "champion", version.version)
        return {"registered_model": name, "version": int(version.version), "approval_status": status,
                "champion_alias": approved}
