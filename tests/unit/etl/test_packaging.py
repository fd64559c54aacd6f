"""The Glue entry points import only what the Glue job library zip ships."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.etl.conftest import REPO

# The CDK ships training_jobs/__init__.py, training_jobs/schema.py and training_jobs/etl/*.py;
# Glue 5.1 provides pyspark (and numpy, which pyspark imports), boto3 is imported lazily.
NOT_ON_GLUE = ("pandas", "pyarrow", "yaml", "boto3", "training_jobs.datasets", "training_jobs.twin")


def test_glue_scripts_import_only_shipped_modules() -> None:
    code = (
        "import json, sys\n"
        "import training_jobs.etl.glue_conform, training_jobs.etl.glue_features\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('training_jobs', 'pandas', 'pyarrow', 'yaml', 'boto3'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.startswith(NOT_ON_GLUE)], loaded
    ours = [m for m in loaded if m.startswith("training_jobs")]
    assert all(m in ("training_jobs", "training_jobs.schema") or m.startswith("training_jobs.etl")
               for m in ours), ours
    assert "training_jobs.etl.cdr_generator" not in ours and "training_jobs.etl.local_run" not in ours
