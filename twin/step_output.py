"""What a step writes goes to its log file, not the console (unless --verbose).

Job scripts print SageMaker metric lines, MLflow announces registrations, and Spark's JVM writes
log4j warnings to the process's standard error (the JVM inherits the descriptors of the step
that starts it). All of it is kept in <run>/logs/<step>.log: Python-level streams and the file
descriptors 1 and 2 both point there while the step runs. The console keeps its own copy of the
original standard output (twin.console), so step lines still reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def captured(log: Path | None) -> Iterator[None]:
    """Everything written while the block runs goes to `log`; None leaves the streams alone."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8", errors="replace", buffering=1) as fh:
        _flush()
        saved = {fd: os.dup(fd) for fd in (1, 2)}
        try:
            for fd in saved:
                os.dup2(fh.fileno(), fd)
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                yield
        finally:
            _flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
    if log.stat().st_size == 0:
        log.unlink()  # a step that printed nothing leaves no log


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()


def last_error_line(log: Path | None) -> str:
    """The job's own one-line reason (`<prog>: error: …`), else the log's last non-empty line."""
    if log is None or not log.is_file():
        return ""
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    for line in reversed(lines):
        if ": error: " in line or ": ERROR: " in line or "INVARIANT FAILED" in line:
            return line
    return lines[-1] if lines else ""
