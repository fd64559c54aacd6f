"""Render the churn pipeline with the SageMaker Python SDK 3, offline: the oracle of the definition format.

    python -m tests.infra.pipeline_sdk <request.json>     (prints {env: definition} as JSON)

request.json: {"config_dir": ..., "environments": {env: {"code_key": ..., "schema_path": ...,
"values": {Fn::Sub variable: value}}}}. Each typed step of infra.pipeline is translated into the SDK object
that makes the same call (Processor.run, ModelTrainer.train, ModelBuilder.register, LambdaStep, ConditionStep,
FailStep), with every `${Name}` replaced by its value first, and the SDK writes the definition.

Runs in its own process: the SDK needs these settings before it is imported, and each was needed to keep
it offline (FIELD_NOTES.md): a region, no role validation (iam:SimulatePrincipalPolicy), no instance
metadata lookups, telemetry off, the session's default bucket set, and no helper that uploads code.
Never imported at synth.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

OFFLINE_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "eu-west-1",
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "AWS_EC2_METADATA_DISABLED": "true",
    "SAGEMAKER_TELEMETRY_OPT_OUT": "true",
    "AWS_ACCESS_KEY_ID": "offline",
    "AWS_SECRET_ACCESS_KEY": "offline",
}


def go_offline() -> None:
    """The settings the SDK must see before it is imported, and quiet logs (it warns about defaults)."""
    os.environ.update(OFFLINE_ENVIRONMENT)
    import logging
    import warnings

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")


def run(argv: list[str], render: Callable[[dict[str, Any]], dict[str, Any]]) -> int:
    """`python -m <renderer> <request.json>`: print {env: definition} as JSON."""
    request = json.loads(Path(argv[0]).read_text())
    go_offline()
    print(json.dumps(render(request)))
    return 0


def main(argv: list[str]) -> int:
    return run(argv, render_definitions)


def render_definitions(request: dict[str, Any]) -> dict[str, Any]:
    """{env: definition} for the request (the SDK's offline settings must already be in the environment)."""
    from infra.config import load_all
    from infra.pipeline import churn

    configs = {c.name: c for c in load_all(request["config_dir"])}
    out = {}
    for env, settings in request["environments"].items():
        pipeline = churn.build(churn.ChurnPipelineInputs(configs[env], settings["schema_path"], settings["code_key"]))
        out[env] = json.loads(SdkPipeline(settings["values"], configs[env].region).definition(pipeline))
    return out


class SdkPipeline:
    def __init__(self, values: dict[str, str], region: str) -> None:
        import boto3
        from sagemaker.core.workflow.pipeline_context import PipelineSession

        self._values = values
        self.session = PipelineSession(boto_session=boto3.Session(region_name=region), default_bucket="unused")
        self.session._default_bucket = "unused"  # register() probes S3 for it otherwise
        self.steps: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ values
    def sub(self, value: Any) -> Any:
        if isinstance(value, str):
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._values[m.group(1)], value)
        return value

    def value(self, value: Any) -> Any:
        from sagemaker.core.workflow.execution_variables import ExecutionVariable
        from sagemaker.core.workflow.functions import Join, JsonGet

        from infra.pipeline import expressions as ex

        if isinstance(value, ex.Parameter):
            return self.parameters[value.name]
        if isinstance(value, ex.ExecutionVariable):
            return ExecutionVariable(value.name)
        if isinstance(value, ex.StepProperty):
            return self.property(value.step, value.path)
        if isinstance(value, ex.JsonGet):
            return JsonGet(step_name=value.step, property_file=value.property_file, json_path=value.path)
        if isinstance(value, ex.Join):
            return Join(on=value.on, values=[self.value(v) for v in value.values])
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return self.sub(value)

    def property(self, step: str, path: str) -> Any:
        node = self.steps[step].properties
        for name, key in re.findall(r"([A-Za-z0-9]+)(?:\['([^']+)'\])?", path):
            if name == "OutputParameters":
                node = node.Outputs[key]
                continue
            node = getattr(node, name)
            if key:
                node = node[key]
        return node

    # ------------------------------------------------------------------------------- steps
    def definition(self, pipeline: Any) -> str:
        from sagemaker.core.workflow.parameters import ParameterString
        from sagemaker.mlops.workflow.pipeline import Pipeline

        self.parameters = {
            p.name: ParameterString(name=p.name, default_value=self.sub(p.default)) for p in pipeline.parameters
        }
        steps = [self.step(s) for s in pipeline.steps]
        sdk = Pipeline(
            name=pipeline.name,
            parameters=list(self.parameters.values()),
            steps=steps,
            sagemaker_session=self.session,
            pipeline_experiment_config=None,
        )
        return str(sdk.definition())

    def step(self, step: Any) -> Any:
        from infra.pipeline import steps as st

        build = {
            st.ProcessingStep: self.processing,
            st.TrainingStep: self.training,
            st.LambdaStep: self.lambda_step,
            st.ConditionStep: self.condition,
            st.FailStep: self.fail,
            st.RegisterModelStep: self.register,
        }[type(step)]
        made = build(step)
        self.steps[step.name] = made
        return made

    def processing(self, step: Any) -> Any:
        from sagemaker.core.network import NetworkConfig
        from sagemaker.core.processing import ProcessingInput, ProcessingOutput, Processor
        from sagemaker.core.shapes import ProcessingS3Input, ProcessingS3Output
        from sagemaker.core.workflow.properties import PropertyFile
        from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

        security = step.security
        processor = Processor(
            role=self.sub(security.role_arn),
            image_uri=self.value(step.image),
            instance_count=step.compute.instance_count,
            instance_type=step.compute.instance_type,
            entrypoint=list(step.entrypoint),
            volume_size_in_gb=step.compute.volume_gb,
            volume_kms_key=self.sub(security.kms_key),
            output_kms_key=self.sub(security.kms_key),
            max_runtime_in_seconds=step.compute.max_runtime_seconds,
            network_config=NetworkConfig(
                enable_network_isolation=security.network_isolation,
                encrypt_inter_container_traffic=True,
                security_group_ids=[self.sub(s) for s in security.security_group_ids] or None,
                subnets=[self.sub(s) for s in security.subnets] or None,
            ),
            sagemaker_session=self.session,
        )
        args = processor.run(
            inputs=[
                ProcessingInput(
                    input_name=i.name,
                    s3_input=ProcessingS3Input(
                        s3_uri=self.value(i.s3_uri), local_path=i.local_path, s3_data_type=i.data_type,
                        s3_input_mode="File",
                    ),
                )
                for i in step.inputs
            ],
            outputs=[
                ProcessingOutput(
                    output_name=o.name,
                    s3_output=ProcessingS3Output(
                        s3_uri=self.value(o.s3_uri), local_path=o.local_path, s3_upload_mode="EndOfJob"
                    ),
                )
                for o in step.outputs
            ],
            arguments=self.value(list(step.container_arguments)),
        )
        return ProcessingStep(
            name=step.name,
            step_args=args,
            property_files=[
                PropertyFile(name=p.name, output_name=p.output_name, path=p.path) for p in step.property_files
            ],
            cache_config=None if step.cache is None else CacheConfig(True, step.cache.expire_after),
        )

    def training(self, step: Any) -> Any:
        from sagemaker.core.training.configs import (
            CheckpointConfig,
            Compute,
            InputData,
            Networking,
            OutputDataConfig,
            S3DataSource,
            StoppingCondition,
        )
        from sagemaker.mlops.workflow.steps import CacheConfig, TrainingStep
        from sagemaker.train.model_trainer import ModelTrainer

        security, spot = step.security, step.spot_max_wait_seconds is not None
        trainer = ModelTrainer(
            training_image=self.value(step.image),
            role=self.sub(security.role_arn),
            sagemaker_session=self.session,
            base_job_name=step.name.lower(),
            compute=Compute(
                instance_type=step.compute.instance_type,
                instance_count=step.compute.instance_count,
                volume_size_in_gb=step.compute.volume_gb,
                volume_kms_key_id=self.sub(security.kms_key),
                enable_managed_spot_training=spot,
            ),
            networking=Networking(
                enable_network_isolation=security.network_isolation,
                enable_inter_container_traffic_encryption=True,
                security_group_ids=[self.sub(s) for s in security.security_group_ids] or None,
                subnets=[self.sub(s) for s in security.subnets] or None,
            ),
            stopping_condition=StoppingCondition(
                max_runtime_in_seconds=step.compute.max_runtime_seconds,
                max_wait_time_in_seconds=step.spot_max_wait_seconds,
            ),
            output_data_config=OutputDataConfig(
                s3_output_path=self.value(step.output_path),
                kms_key_id=self.sub(security.kms_key),
                compression_type=step.compression,
            ),
            checkpoint_config=None if step.checkpoint_uri is None else CheckpointConfig(
                s3_uri=self.value(step.checkpoint_uri)
            ),
            hyperparameters=self.value(dict(step.hyperparameters)),
        )
        args = trainer.train(
            input_data_config=[
                InputData(
                    channel_name=c.name,
                    data_source=S3DataSource(
                        s3_uri=self.value(c.s3_uri), s3_data_type="S3Prefix", s3_data_distribution_type=c.distribution
                    ),
                )
                for c in step.channels
            ]
        )
        return TrainingStep(
            name=step.name,
            step_args=args,
            cache_config=None if step.cache is None else CacheConfig(True, step.cache.expire_after),
        )

    def lambda_step(self, step: Any) -> Any:
        from sagemaker.core.lambda_helper import Lambda
        from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

        return LambdaStep(
            name=step.name,
            lambda_func=Lambda(function_arn=self.sub(step.function_arn), session=self.session),
            inputs=self.value(dict(step.inputs)),
            outputs=[LambdaOutput(output_name=o, output_type=LambdaOutputTypeEnum.String) for o in step.outputs],
        )

    def condition(self, step: Any) -> Any:
        from sagemaker.core.workflow.conditions import ConditionEquals, ConditionGreaterThanOrEqualTo
        from sagemaker.mlops.workflow.condition_step import ConditionStep

        kinds = {"Equals": ConditionEquals, "GreaterThanOrEqualTo": ConditionGreaterThanOrEqualTo}
        if_steps = [self.step(s) for s in step.if_steps]
        else_steps = [self.step(s) for s in step.else_steps]
        return ConditionStep(
            name=step.name,
            conditions=[kinds[c.kind](left=self.value(c.left), right=self.value(c.right)) for c in step.conditions],
            if_steps=if_steps,
            else_steps=else_steps,
        )

    def fail(self, step: Any) -> Any:
        from sagemaker.mlops.workflow.fail_step import FailStep

        return FailStep(name=step.name, error_message=self.value(step.message))

    def register(self, step: Any) -> Any:
        from sagemaker.core.drift_check_baselines import DriftCheckBaselines
        from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
        from sagemaker.mlops.workflow.model_step import ModelStep
        from sagemaker.serve.model_builder import ModelBuilder

        def metrics(source: Any) -> Any:
            return MetricsSource(content_type=source.content_type, s3_uri=self.value(source.s3_uri))

        builder = ModelBuilder(
            image_uri=step.image,
            s3_model_data_url=self.value(step.model_data_url),
            role_arn=self.sub(self._values["JobRoleArn"]),
            env_vars=dict(step.environment),
            sagemaker_session=self.session,
        )
        args = builder.register(
            model_package_group_name=step.group,
            content_types=list(step.content_types),
            response_types=list(step.response_types),
            inference_instances=list(step.instance_types),
            transform_instances=list(step.instance_types),
            approval_status=step.approval,
            description=step.description,
            model_metrics=ModelMetrics(model_statistics=metrics(step.model_quality)),
            drift_check_baselines=DriftCheckBaselines(
                model_data_statistics=metrics(step.data_statistics),
                model_data_constraints=metrics(step.data_constraints),
            ),
            customer_metadata_properties=self.value(dict(step.metadata)),
        )
        return ModelStep(name=step.name, step_args=args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
