"""Earlier results are never destroyed: bad arguments change nothing, a failed run is not published.

The twin writes each run into a new folder in <out>-runs/ and moves the <out> link to it only when
the run completed (twin.run_dir); these tests hold it to that on real runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.conftest import TwinRun, run_cli
from twin import cli


def snapshot(out: Path) -> dict[str, object]:
    """Everything a person looks at: where the link points, the report and summary, the run folders."""
    runs = out.parent / f"{out.name}-runs"
    return {"link": os.readlink(out), "summary": (out / "summary.json").read_bytes(),
            "report": (out / "report.html").read_bytes(), "runs": sorted(p.name for p in runs.iterdir())}


BAD_ARGUMENTS = [
    (["--data", "build/typo/subscribers.csv"], "--data build/typo/subscribers.csv: file not found"),
    (["--data", "."], "--data .: is a directory"),
    (["--cdr", "no/such/cdr"], "--cdr no/such/cdr: not found"),
    (["--schema", "no/such/schema.yaml"], "schema file not found"),
    (["--config", "config/nope.yaml"], "config/nope.yaml"),
    (["--snapshot-date", "2026-13-40"], "--snapshot-date '2026-13-40': not a date"),
    (["--batch-size", "0"], "--batch-size 0: must be 1..4096"),
    (["--seed", "-1"], "--seed -1: must be 0 or more"),
    (["--keep", "0"], "--keep 0: must be 1 or more"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS, ids=[a[0] for a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_leaves_the_published_run_untouched(passing_run, capsys, argv, message):
    before = snapshot(passing_run)
    assert cli.main(["run", "--out", str(passing_run), "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("twin: error: ") and message in err and err.count("\n") == 1
    assert snapshot(passing_run) == before


def test_an_out_that_is_not_a_twin_run_is_refused(tmp_path, capsys):
    precious = tmp_path / "thesis"
    precious.mkdir()
    (precious / "chapter1.tex").write_text("do not delete")
    assert cli.main(["run", "--out", str(precious), "--quiet"]) == 2
    assert "not a twin run" in capsys.readouterr().err
    assert (precious / "chapter1.tex").read_text() == "do not delete"
    assert not (tmp_path / "thesis-runs").exists()


def test_a_run_that_fails_midway_is_not_published(rejected_run: TwinRun, tmp_path):
    before = snapshot(rejected_run.out)
    frame = pd.read_csv(rejected_run.out / "raw" / "snapshot.csv", dtype=str)
    broken = tmp_path / "snapshot.csv"
    frame.drop(columns=["contract"]).to_csv(broken, index=False)  # a declared column is missing

    failed = run_cli(["--data", str(broken), "--out", str(rejected_run.out), "--profile", "quick"], tmp_path)

    assert failed.exit_code == 2
    assert failed.errors.startswith("twin: error: conform (lake job): ")
    assert "missing declared column(s) ['contract']" in failed.errors
    assert "still shows the previous run" in failed.errors and failed.errors.count("\n") == 1
    after = snapshot(rejected_run.out)
    assert {k: after[k] for k in ("link", "summary", "report")} == {k: before[k] for k in ("link", "summary", "report")}
    new = set(after["runs"]) - set(before["runs"])  # type: ignore[arg-type]
    assert len(new) == 1  # the failed run's folder, kept beside the published one for debugging
    partial = rejected_run.out.parent / f"{rejected_run.out.name}-runs" / new.pop()
    assert (partial / "steps.json").is_file() and not (partial / "summary.json").exists()
    assert "✘ conform" in failed.console


def test_the_first_completed_run_is_published_as_a_link(rejected_run: TwinRun):
    out = rejected_run.out
    assert out.is_symlink() and not Path(os.readlink(out)).is_absolute()  # relative: build/ can move
    assert out.resolve().parent == out.parent / f"{out.name}-runs"
    assert (out / "summary.json").is_file() and (out / "report.html").is_file()
