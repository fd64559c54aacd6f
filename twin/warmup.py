"""Python start-up work done while Spark's JVM runs the conform step.

During conform the twin's main thread only waits on the JVM, so a second core is idle. This thread
uses it for what later steps would otherwise do first: importing torch, xgboost, matplotlib and
MLflow (seconds each) and opening the MLflow store (creating it runs MLflow's schema migrations).
It changes no result: the steps import the same modules, and the register step uses the store it
would have opened itself. The main thread joins it before the next step starts, so nothing else
runs beside it; if it fails, the steps do the same work themselves and report any error then.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from twin.tracking import Tracker

MODULES = ("torch", "xgboost", "matplotlib.pyplot", "mlflow", "mlflow.pytorch", "mlflow.xgboost")


class Warmup:
    def __init__(self, store: Path, experiment: str):
        self._store, self._experiment = store, experiment
        self._tracker: Tracker | None = None
        self._thread = threading.Thread(target=self._run, name="twin-warmup", daemon=True)

    def __enter__(self) -> Warmup:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def _run(self) -> None:
        import importlib

        with contextlib.suppress(Exception):
            for name in MODULES:
                if name.startswith("matplotlib"):
                    import matplotlib

                    matplotlib.use("Agg")
                importlib.import_module(name)
            self._tracker = Tracker(self._store, self._experiment)

    def tracker(self) -> Tracker:
        """The store opened in the background, or a freshly opened one."""
        self._thread.join()
        return self._tracker or Tracker(self._store, self._experiment)
