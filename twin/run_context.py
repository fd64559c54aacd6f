"""What every twin step shares: the run's settings, timing, console and the record of what ran.

Job steps go through `run_job`: it imports the entry-point module, sets the SM_* environment
around the call, calls `main(argv)` exactly as a SageMaker container would run the script, and
records the call (twin.step_record) whether it succeeds or not. A non-zero exit becomes a
JobError carrying the job's own one-line reason. What a step prints goes to <run>/logs/<step>.log
(twin.step_output), or to the console with --verbose.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dataset.schema import DatasetSchema
from training_jobs.errors import JobError
from twin.console import Console
from twin.run_dir import RunDir
from twin.step_output import captured, last_error_line
from twin.step_record import StepRecord

T = TypeVar("T")


@contextlib.contextmanager
def sm_env(env: dict[str, str]) -> Iterator[None]:
    """Set the SageMaker container variables for one call, then restore the previous values."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stage_channel(src: Path, dest: Path) -> Path:
    """Stage an input the way SageMaker does: a copy of the S3 prefix under /opt/ml/... ."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    return dest


@dataclass
class RunContext:
    args: argparse.Namespace
    run: RunDir
    schema: DatasetSchema
    console: Console
    records: list[StepRecord] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        """This run's own folder (the --out link points at it once the run has completed)."""
        return self.run.path

    def log_for(self, name: str) -> Path | None:
        return None if self.args.verbose else self.out / "logs" / f"{name}.log"

    def run_local(self, name: str, kind: str, entry_point: str, work: Callable[[], T],
                  describe: Callable[[T], str], container_paths: dict[str, Path] | None = None) -> T:
        """An in-process step (no job script): time it, print its line, record it."""
        t0 = time.perf_counter()
        log = self.log_for(name)
        try:
            with self.console.status(f"{name} …"), captured(log):
                result = work()
        except JobError as exc:
            self._failed(name, t0, str(exc))
            raise
        finally:
            self._record(StepRecord(name, kind, entry_point, container_paths=_strs(container_paths),
                                    seconds=time.perf_counter() - t0))
        self.console.step(name, self.timings[name], describe(result))
        return result

    def run_job(self, name: str, kind: str, entry_point: str, argv: list[str],
                container_paths: dict[str, Path], describe: Callable[[], str],
                environment: dict[str, str] | None = None) -> None:
        """Call `<entry_point>.main(argv)` with `environment` set, as the SageMaker job would."""
        main: Callable[[list[str]], int] = importlib.import_module(entry_point).main
        env = dict(environment or {})
        t0 = time.perf_counter()
        rc: int | None = None
        log = self.log_for(name)
        try:
            with self.console.status(f"{name} …"), captured(log), sm_env(env):
                rc = main(list(argv))
        finally:
            self._record(StepRecord(name, kind, entry_point, list(argv), env, _strs(container_paths), rc,
                                    time.perf_counter() - t0))
        if rc != 0:
            reason = last_error_line(log) or "see the output above"
            self._failed(name, t0, reason)
            raise JobError(f"step '{name}' failed with exit status {rc}: {reason}")
        self.console.step(name, self.timings[name], describe())

    def _failed(self, name: str, t0: float, reason: str) -> None:
        self.console.failed(name, time.perf_counter() - t0, reason)

    def _record(self, record: StepRecord) -> None:
        self.records.append(record)
        self.timings[record.name] = record.seconds


def _strs(paths: dict[str, Path] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (paths or {}).items()}


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
