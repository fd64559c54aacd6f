"""twin.run_dir: a run is written beside the earlier ones and published by one atomic link swap."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from training_jobs.errors import JobError
from twin.run_dir import RunDir, check_out, runs_dir_for


def completed(out: Path, name: str, keep: int = 3) -> RunDir:
    run = RunDir.create(out)
    (run.path / "summary.json").write_text(name)
    run.publish(keep)
    return run


def test_the_link_moves_only_when_a_run_is_published(tmp_path):
    out = tmp_path / "twin"
    first = completed(out, "first")
    assert out.is_symlink() and (out / "summary.json").read_text() == "first"
    second = RunDir.create(out)  # running: written beside, the link still shows the first
    (second.path / "summary.json").write_text("second")
    assert (out / "summary.json").read_text() == "first"
    second.publish(keep=3)
    assert (out / "summary.json").read_text() == "second"
    assert first.path.is_dir()  # kept beside
    assert os.readlink(out) == os.path.relpath(second.path, tmp_path)


def test_old_runs_beyond_keep_are_removed_never_the_published_one(tmp_path):
    out = tmp_path / "twin"
    runs = [completed(out, str(i), keep=2) for i in range(4)]
    kept = sorted(p.name for p in runs_dir_for(out).iterdir())
    assert kept == sorted([runs[2].path.name, runs[3].path.name])
    failed = RunDir.create(out)  # a failed run: not published, its folder stays for debugging
    assert failed.path.is_dir() and out.resolve() == runs[3].path.resolve()
    last = completed(out, "last", keep=1)
    assert sorted(p.name for p in runs_dir_for(out).iterdir()) == [last.path.name]


def test_the_store_folder_is_never_pruned(tmp_path):
    out = tmp_path / "twin"
    run = RunDir.create(out)
    run.store.mkdir()
    (run.store / "mlflow.db").write_text("registry")
    completed(out, "a", keep=1)
    completed(out, "b", keep=1)
    assert (run.store / "mlflow.db").read_text() == "registry"


def test_an_earlier_twins_plain_folder_is_kept_as_a_run(tmp_path):
    out = tmp_path / "twin"
    out.mkdir()
    (out / "summary.json").write_text("from an earlier twin")
    check_out(out)
    run = completed(out, "new")
    earlier = [p for p in runs_dir_for(out).iterdir() if p.name.endswith("-earlier")]
    assert len(earlier) == 1 and (earlier[0] / "summary.json").read_text() == "from an earlier twin"
    assert out.resolve() == run.path.resolve()


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("x"), "is a file"),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("mine")), "not a twin run"),
])
def test_an_out_the_twin_would_destroy_is_refused(tmp_path, make, message):
    out = tmp_path / "twin"
    make(out)
    with pytest.raises(JobError, match=message):
        check_out(out)


def test_an_empty_folder_is_replaced_by_the_link(tmp_path):
    out = tmp_path / "twin"
    out.mkdir()
    check_out(out)
    completed(out, "a")
    assert out.is_symlink()
