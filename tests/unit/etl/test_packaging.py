"""The Glue entry points import only what the Glue job library zip ships."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.etl.conftest import REPO

# The CDK ships dataset/__init__.py, dataset/schema.py, dataset/schema_*.py and etl/*.py;
# Glue 5.1 provides pyspark (and numpy, which pyspark imports), boto3 is imported lazily.
NOT_ON_GLUE = ("pandas", "pyarrow", "yaml", "boto3", "dataset.sources", "twin")


def test_glue_scripts_import_only_shipped_modules() -> None:
    code = (
        "import json, sys\n"
        "import etl.glue_conform, etl.glue_features\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dataset', 'etl', 'training_jobs', 'serving', 'twin', 'pandas', 'pyarrow', 'yaml', 'boto3'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert not [m for m in loaded if m.startswith(NOT_ON_GLUE)], loaded
    ours = [m for m in loaded if m.split(".")[0] in ("dataset", "etl", "training_jobs", "serving", "twin")]
    shipped = [m for m in ours if m in ("dataset", "dataset.schema") or m.startswith("dataset.schema_")
               or m.split(".")[0] == "etl"]
    assert shipped == ours, ours
    assert "etl.cdr_generator" not in ours and "etl.local_run" not in ours
