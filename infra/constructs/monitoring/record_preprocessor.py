"""The Model Monitor record preprocessor script, shipped per environment with its dataset schema's features.

training_jobs/monitor_preprocessor.py runs inside the analyzer container, which loads one Python file and
nothing else: the environment's raw features (names, numeric or not, boolean tokens) are written into the
file's FEATURES block at synth (`render`), and the result becomes a content-addressed file asset whose
object URL the data-quality job definition names (RecordPreprocessorSourceUri). A schema or script change
gives a new object and so a new, content-hashed job definition.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from dataset.schema import DatasetSchema
from infra.constructs.ml.pipeline_code import assembly_root
from infra.runtime_code import runtime_path

SCRIPT = "training_jobs/monitor_preprocessor.py"
_BLOCK = re.compile(r"(# FEATURES-BEGIN[^\n]*\n)FEATURES: dict\[str, Any\] = .*?\n(# FEATURES-END)", re.DOTALL)


def feature_spec(schema: DatasetSchema) -> dict[str, Any]:
    """The script's FEATURES: the raw features as the baseline types them (training_jobs/baseline.py)."""
    numeric = list(schema.numeric_columns)
    booleans = {
        name: {
            "true": [t.lower() for t in schema.column(name).true_values],
            "false": [t.lower() for t in schema.column(name).false_values],
        }
        for name in schema.boolean_columns
        if name not in numeric
    }
    categorical = [c for c in schema.raw_feature_columns if c not in numeric and c not in booleans]
    return {"categorical": categorical, "numeric": numeric, "boolean": booleans}


def render(schema: DatasetSchema, source: str | None = None) -> str:
    """The script's text with `schema`'s features in its FEATURES block."""
    text = runtime_path(SCRIPT).read_text() if source is None else source
    literal = _literal(feature_spec(schema))
    block = f"FEATURES: dict[str, Any] = {literal}\n"
    rendered, count = _BLOCK.subn(lambda m: f"{m.group(1)}{block}{m.group(2)}", text, count=1)
    if count != 1:
        raise ValueError(f"{SCRIPT}: no '# FEATURES-BEGIN ... # FEATURES-END' block to render the features into")
    return rendered


def _literal(spec: dict[str, Any]) -> str:
    """FEATURES as a readable Python literal (JSON strings, lists and objects are Python literals too)."""
    lines = ["{"]
    for key in ("categorical", "numeric"):
        lines.append(f'    "{key}": [')
        lines += [f"        {json.dumps(name)}," for name in spec[key]]
        lines.append("    ],")
    lines.append('    "boolean": {')
    for name, tokens in spec["boolean"].items():
        lines.append(f"        {json.dumps(name)}: {json.dumps(tokens)},")
    lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


class RecordPreprocessor(Construct):
    """The rendered script as a file asset (`<hash>.py` in the CDK assets bucket)."""

    def __init__(self, scope: Construct, construct_id: str, *, schema: DatasetSchema, env_name: str) -> None:
        super().__init__(scope, construct_id)
        target = assembly_root(self) / "monitoring" / f"record-preprocessor-{env_name}.py"
        _write_if_changed(target, render(schema))
        self.asset = s3_assets.Asset(self, "Script", path=str(target))
        self.s3_uri = self.asset.s3_object_url

    def grant_read(self, role: iam.IRole) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[self.asset.bucket.arn_for_objects(self.asset.s3_object_key)]
            )
        )


def _write_if_changed(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
