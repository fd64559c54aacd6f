"""The e2e twin run, once per session, shared by every e2e test module.

synthetic_inputs, run_twin and passing_run are test_twin.py's fixtures, session-scoped here so that
test_pipeline_parity.py compares the pipeline with the very run test_twin.py checks. Until test_twin.py
drops its own module-scoped copies (they take precedence there), a full e2e session runs the twin twice.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures import synthetic_churn
from twin import cli


@pytest.fixture(scope="session")
def synthetic_inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    raw = synthetic_churn.write_csv(root / "subscribers.csv", n=2000, seed=7)
    cdr = root / "cdr"
    from etl.cdr_generator import generate

    ids = pd.read_csv(raw, dtype=str)["msisdn_ref"].tolist()
    generate(ids, 12000, 30, date(2025, 12, 31), 7, str(cdr), 0)
    return raw, cdr


def run_twin(raw: Path, cdr: Path, out: Path, config: Path, *extra: str) -> int:
    return cli.main(
        [
            "run",
            "--schema",
            str(synthetic_churn.SCHEMA_PATH),
            "--data",
            str(raw),
            "--cdr",
            str(cdr),
            "--config",
            str(config),
            "--out",
            str(out),
            "--profile",
            "quick",
            "--quiet",
            *extra,
        ]
    )


@pytest.fixture(scope="session")
def passing_run(synthetic_inputs, tmp_path_factory) -> Path:
    raw, cdr = synthetic_inputs
    out = tmp_path_factory.mktemp("twin")
    assert run_twin(raw, cdr, out, synthetic_churn.GATE_CONFIG) == 0
    return out
