"""Where a twin run writes, and how its results replace the previous ones without destroying them.

    build/twin            a symbolic link to the last run that completed (moved atomically, only then)
    build/twin-runs/
      <run id>/           one folder per run: summary.json, steps.json, report.html, logs/, processing/, …
      mlflow/             the MLflow tracking store and registry, shared by runs (versions accumulate)

A run writes only into its own new folder, so a run that fails (or is interrupted) leaves the
previous results, and the link to them, as they were; its partial folder stays beside them for
debugging. Once a run has completed, the link is replaced in one rename(2) and the oldest run
folders beyond `keep` are removed (never the linked one). Paths recorded inside a run (steps.json,
MLflow) are those of its own folder, so nothing is rewritten when the link moves.

An --out that is a plain directory written by an earlier twin version (it holds summary.json or
steps.json) is moved, whole, into <out>-runs/ the first time; any other existing directory or
file is refused before anything is written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from training_jobs.errors import JobError

TWIN_MARKERS = ("summary.json", "steps.json")
STORE_DIR = "mlflow"


def runs_dir_for(out: Path) -> Path:
    return out.parent / f"{out.name}-runs"


def check_out(out: Path) -> None:
    """Refuse an --out this twin would have to destroy or could not link (a one-line JobError)."""
    if out.is_symlink():
        return
    if out.is_file():
        raise JobError(f"--out {out}: is a file; give a directory path (default build/twin)")
    if out.is_dir() and any(out.iterdir()) and not any((out / m).is_file() for m in TWIN_MARKERS):
        raise JobError(f"--out {out}: an existing directory that is not a twin run; the twin would "
                       "replace it with a link to its run, so pick another --out")
    parent = _existing_parent(out)
    if not os.access(parent, os.W_OK):
        raise JobError(f"--out {out}: cannot write in {parent}")


@dataclass(frozen=True)
class RunDir:
    """One run's folder, and the link (--out) that will point at it once the run completes."""

    link: Path
    path: Path

    @property
    def runs(self) -> Path:
        return self.path.parent

    @property
    def store(self) -> Path:
        return self.runs / STORE_DIR

    @classmethod
    def create(cls, out: Path) -> RunDir:
        """A new, empty run folder beside the earlier ones; an earlier twin's plain --out folder is kept."""
        out = Path(os.path.abspath(out))
        runs = runs_dir_for(out)
        runs.mkdir(parents=True, exist_ok=True)
        if out.is_dir() and not out.is_symlink():
            _adopt_plain_dir(out, runs)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S.%f")  # sorts oldest first, to the microsecond
        return cls(out, Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=runs)))

    def publish(self, keep: int) -> list[Path]:
        """Point the link at this run in one atomic rename; remove the oldest runs beyond `keep`."""
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.link")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(self.path, self.link.parent), target_is_directory=True)
        os.replace(tmp, self.link)
        return self.prune(keep)

    def prune(self, keep: int) -> list[Path]:
        # Run folders are named <YYYYmmddTHHMMSS.micros>-…: by name is oldest first.
        runs = sorted(p for p in self.runs.iterdir() if p.is_dir() and p.name != STORE_DIR
                      and not p.name.startswith("."))
        linked = self.link.resolve()
        old = [p for p in runs if p.resolve() not in (linked, self.path.resolve())]
        doomed = old[:max(0, len(old) - (keep - 1))]
        for p in doomed:
            shutil.rmtree(p, ignore_errors=True)
        return doomed


def _adopt_plain_dir(out: Path, runs: Path) -> None:
    """Move an earlier twin version's output folder (or an empty one) out of the link's way."""
    if not any(out.iterdir()):
        out.rmdir()
        return
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(out.stat().st_mtime))
    target, n = runs / f"{stamp}-earlier", 1
    while target.exists():
        n += 1
        target = runs / f"{stamp}-earlier-{n}"
    os.replace(out, target)


def _existing_parent(path: Path) -> Path:
    p = Path(os.path.abspath(path)).parent
    while not p.exists():
        p = p.parent
    return p
