"""The SageMaker Python SDK 3 is the oracle of the definition format: rendering the same pipeline with it,
offline, gives exactly the definition in every synthesized template (after json.loads). Never skipped: the
SDK is a pinned dependency, and a missing one is a failure."""

from __future__ import annotations

import re

from infra.config import load_all
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.pipeline_checks import definition_of, sub_of, values_for
from tests.infra.sdk_oracle import SdkOracle

CONFIGS = {c.stage_name: c for c in load_all(ROOT / "config")}


def test_the_sdk_renders_every_environments_template_body(assembly: Assembly, sdk_oracle: SdkOracle) -> None:
    request: dict = {"config_dir": str(ROOT / "config"), "environments": {}}
    ours = {}
    for stage, config in CONFIGS.items():
        template = assembly.template(stage, "MlPipeline")
        body, _ = sub_of(template)
        (code_key,) = set(re.findall(r"s3://\$\{CodeBucket\}/([0-9a-f]{64}\.gz)", body))
        request["environments"][config.name] = {
            "code_key": code_key,
            "schema_path": config.data_lake.dataset_schema,
            "values": values_for(template, config.region, config.account),
        }
        ours[config.name] = definition_of(template, config.region, config.account)
    sdk = sdk_oracle.render("churn", request)
    assert sorted(sdk) == sorted(ours)
    for env in ours:
        assert sdk[env] == ours[env], f"{env}: the SDK renders a different definition"
