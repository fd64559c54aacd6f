"""Render the drift pipeline with the SageMaker Python SDK 3, offline (the oracle of the definition format).

    python -m tests.infra.drift_pipeline_sdk <request.json>     (prints {env: definition} as JSON)

request.json: {"config_dir": ..., "environments": {env: {"code_key": ..., "values": {variable: value}}}}.
Reuses tests.infra.pipeline_sdk (its offline settings and step translations); never imported at synth.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.infra.pipeline_sdk import run


def main(argv: list[str]) -> int:
    return run(argv, render_definitions)


def render_definitions(request: dict[str, Any]) -> dict[str, Any]:
    """{env: definition} for the request (the SDK's offline settings must already be in the environment)."""
    from infra.config import load_all
    from infra.pipeline import drift
    from tests.infra.pipeline_sdk import SdkPipeline

    configs = {c.name: c for c in load_all(request["config_dir"])}
    out = {}
    for env, settings in request["environments"].items():
        config = configs[env]
        pipeline = drift.build(drift.DriftPipelineInputs(config, config.data_lake.dataset_schema, settings["code_key"]))
        out[env] = json.loads(SdkPipeline(settings["values"], config.region).definition(pipeline))
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
