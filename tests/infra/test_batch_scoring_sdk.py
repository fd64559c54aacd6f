"""The SageMaker Python SDK 3 renders the batch-scoring pipeline of every environment exactly as
infra/pipeline/scoring.py does (after json.loads), the model and transform steps included.

    python -m tests.infra.test_batch_scoring_sdk <request.json>   (prints {env: definition} as JSON)

The churn pipeline's oracle (tests/infra/pipeline_sdk.py) translates Processing, Lambda, Condition and Fail
steps; this one adds the two steps only scoring has: CreateModelStep -> the SDK's ModelStep over the
session's own create_model (the call Model.create makes, with the package as the container), and
TransformStep -> Transformer.transform. Runs in its own process, offline, as that module explains.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from infra.config import load_all
from infra.pipeline import churn, render, scoring
from tests.conftest import ROOT
from tests.infra.pipeline_sdk import SdkPipeline, run
from tests.infra.sdk_oracle import SdkOracle

CODE_KEY = "0" * 64 + ".gz"
CONFIGS = {c.name: c for c in load_all(ROOT / "config")}


def values(region: str, account: str, vpc: bool) -> dict[str, str]:
    found = {
        "ArtifactBucket": "dev-foundation-mlartifactsbucket-1a2b3c",
        "CodeBucket": f"cdk-hnb659fds-assets-{account}-{region}",
        "JobRoleArn": f"arn:aws:iam::{account}:role/telecom-ml-dev-sagemaker-execution",
        "MlKeyArn": f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "DataKeyArn": f"arn:aws:kms:{region}:{account}:key/abcd1234-12ab-34cd-56ef-1234567890ab",
        "ChampionLookupArn": f"arn:aws:lambda:{region}:{account}:function:ChampionLookup",
        "FeaturesLocation": "s3://features-bucket/ibm_telco_churn/",
        "ScoresLocation": "s3://features-bucket/ibm_telco_churn_scores/",
    }
    if vpc:
        found.update(JobSecurityGroup="sg-0123456789abcdef0", JobSubnet1="subnet-01", JobSubnet2="subnet-02")
    return found


def ours(env: str) -> dict[str, Any]:
    config = CONFIGS[env]
    pipeline = scoring.build(churn.ChurnPipelineInputs(config, config.data_lake.dataset_schema, CODE_KEY))
    body = render.sub_body(render.definition(pipeline), pipeline.variables)
    fills = values(config.region, config.account, config.network.mode == "vpc")
    return dict(json.loads(render.resolve(body, {**fills, "AWS::Region": config.region})))


class SdkScoringPipeline(SdkPipeline):
    def step(self, step: Any) -> Any:
        from infra.pipeline import steps as st

        if isinstance(step, st.CreateModelStep):
            made = self.model(step)
        elif isinstance(step, st.TransformStep):
            made = self.transform(step)
        else:
            return super().step(step)
        self.steps[step.name] = made
        return made

    def model(self, step: Any) -> Any:
        from types import SimpleNamespace

        from sagemaker.core.workflow.pipeline_context import _ModelStepArguments
        from sagemaker.mlops.workflow.model_step import ModelStep

        security = step.security
        self.session.context = _ModelStepArguments(SimpleNamespace(sagemaker_session=self.session))
        self.session.create_model(
            name=step.name,
            role=self.sub(security.role_arn),
            container_defs={"ModelPackageName": self.value(step.model_package)},
            vpc_config=None
            if not security.subnets
            else {
                "Subnets": [self.sub(s) for s in security.subnets],
                "SecurityGroupIds": [self.sub(s) for s in security.security_group_ids],
            },
            enable_network_isolation=security.network_isolation,
        )
        return ModelStep(name=step.name, step_args=self.session.context)

    def transform(self, step: Any) -> Any:
        from sagemaker.core.transformer import Transformer
        from sagemaker.mlops.workflow.steps import TransformStep

        transformer = Transformer(
            model_name=self.value(step.model_name),
            instance_count=step.instance_count,
            instance_type=self.value(step.instance_type),
            strategy="MultiRecord",
            assemble_with="Line",
            output_path=self.value(step.output_uri),
            output_kms_key=self.sub(step.kms_key),
            accept=step.accept,
            max_payload=step.max_payload_mb,
            env=dict(step.environment),
            base_transform_job_name=step.name.lower(),  # else it describes the model to name the job
            sagemaker_session=self.session,
            volume_kms_key=self.sub(step.kms_key),
        )
        args = transformer.transform(
            data=self.value(step.input_uri),
            content_type=step.content_type,
            split_type="Line",
            compression_type="None",
        )
        return TransformStep(name=step.name, step_args=args)


def main(argv: list[str]) -> int:
    return run(argv, render_definitions)


def render_definitions(request: dict[str, Any]) -> dict[str, Any]:
    """{env: definition} for the request (the SDK's offline settings must already be in the environment)."""
    out = {}
    for env, fills in request.items():
        config = CONFIGS[env]
        pipeline = scoring.build(churn.ChurnPipelineInputs(config, config.data_lake.dataset_schema, CODE_KEY))
        out[env] = json.loads(SdkScoringPipeline(fills, config.region).definition(pipeline))
    return out


def test_the_sdk_renders_every_environments_scoring_pipeline(sdk_oracle: SdkOracle) -> None:
    request = {
        env: {**values(c.region, c.account, c.network.mode == "vpc"), "AWS::Region": c.region}
        for env, c in CONFIGS.items()
    }
    sdk = sdk_oracle.render("scoring", request)
    assert sorted(sdk) == sorted(CONFIGS)
    for env in CONFIGS:
        mine = ours(env)
        assert [s["Type"] for s in mine["Steps"]] == ["Lambda", "Processing", "Condition"]
        assert sdk[env] == mine, f"{env}: the SDK renders a different scoring definition"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
