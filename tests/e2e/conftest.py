"""Twin runs shared by every end-to-end test: each runs once per test session, on one xdist worker.

  passing_run    the synthetic schema (CDR usage section, own labels) with CDRs; the gate passes
  rejected_run   IBM Telco from the schema's own source (no --data), a gate it cannot pass (exit 1)

Both run through `twin.cli.main` as a person would, console on, and keep what the twin printed.
Every e2e test is in the xdist group "twin" (tests/conftest.py), so a session runs each twin once,
on one worker, which then also holds the only Spark session they need.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures import synthetic_churn
from tests.fixtures.environments import write_environment
from twin import cli


@dataclass(frozen=True)
class TwinRun:
    out: Path  # the --out link
    exit_code: int
    console: str  # what the twin printed on standard output
    errors: str  # what it printed on standard error


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def run_cli(argv: list[str], log_dir: Path) -> TwinRun:
    """`python -m twin run ...` in this process, with its standard output and error kept."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (open(log_dir / "console.txt", "w+", encoding="utf-8") as out,
          open(log_dir / "errors.txt", "w+", encoding="utf-8") as err,
          contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)):
        rc = cli.main(["run", *argv])
    out_arg = Path(argv[argv.index("--out") + 1])
    return TwinRun(out_arg, rc, (log_dir / "console.txt").read_text(encoding="utf-8"),
                   (log_dir / "errors.txt").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def synthetic_inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from etl.cdr_generator import generate

    root = tmp_path_factory.mktemp("synthetic")
    raw = synthetic_churn.write_csv(root / "subscribers.csv", n=2000, seed=7)
    cdr = root / "cdr"
    ids = pd.read_csv(raw, dtype=str)["msisdn_ref"].tolist()
    generate(ids, 12000, 30, date(2025, 12, 31), 7, str(cdr), 0)
    return raw, cdr


def synthetic_argv(raw: Path, cdr: Path, out: Path, config: Path, *extra: str) -> list[str]:
    return ["--schema", str(synthetic_churn.SCHEMA_PATH), "--data", str(raw), "--cdr", str(cdr),
            "--config", str(config), "--out", str(out), "--profile", "quick", *extra]


@pytest.fixture(scope="session")
def passing_twin(synthetic_inputs: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> TwinRun:
    raw, cdr = synthetic_inputs
    root = tmp_path_factory.mktemp("twin")
    run = run_cli(synthetic_argv(raw, cdr, root / "out", synthetic_churn.GATE_CONFIG), root)
    assert run.exit_code == 0, run.errors
    return run


@pytest.fixture(scope="session")
def passing_run(passing_twin: TwinRun) -> Path:
    return passing_twin.out


@pytest.fixture(scope="session")
def rejected_run(tmp_path_factory: pytest.TempPathFactory) -> TwinRun:
    root = tmp_path_factory.mktemp("ibm")
    strict = write_environment(root / "strict.yaml", min_roc_auc=0.99, min_top_decile_lift=2.0)
    return run_cli(["--config", str(strict), "--out", str(root / "out"), "--profile", "quick"], root)
