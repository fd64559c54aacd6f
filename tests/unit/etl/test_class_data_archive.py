"""Spark's class-data archive: dumps left by processes that died are removed, a live process's dump is kept,
and `python -m etl.spark_session` does nothing when the archive is there (make setup runs it every time)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from etl import spark_session

ROOT = Path(__file__).resolve().parents[3]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_orphaned_dumps_are_removed_and_a_live_ones_is_kept(tmp_path: Path) -> None:
    archive = tmp_path / "spark-0123456789abcdef.jsa"
    orphan = tmp_path / f"spark-0123456789abcdef.{_dead_pid()}.tmp"
    live = tmp_path / f"spark-0123456789abcdef.{os.getpid()}.tmp"
    other = tmp_path / "spark-fedcba9876543210.1.tmp"  # another key's dump is not this archive's business
    for dump in (orphan, live, other):
        dump.write_bytes(b"partial")

    spark_session._remove_orphaned_dumps(archive)

    assert not orphan.exists() and live.exists() and other.exists()


def test_the_warm_up_returns_at_once_when_the_archive_exists(tmp_path: Path) -> None:
    archive = spark_session.class_data_archive()
    assert archive is not None, "java is needed by the Spark tests"
    present = tmp_path / "build" / "spark-cds" / archive.name
    present.parent.mkdir(parents=True)
    present.write_bytes(b"stands in for the archive")

    result = subprocess.run([sys.executable, "-m", "etl.spark_session"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and not (tmp_path / "build" / "spark-warehouse").exists()
