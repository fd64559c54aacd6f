"""Where constructs find the runtime code they deploy: paths relative to the repository root.

Runtime code (etl/, training_jobs/, serving/, lambdas/) never imports the CDK; the construct that
ships a piece of it names it here, so no stack passes script paths around as strings.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def runtime_path(relative: str) -> Path:
    """Absolute path of `relative` (e.g. "etl/glue_conform.py"); a missing file stops synth here."""
    path = REPO_ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"runtime code {relative} does not exist under the repository root")
    return path
