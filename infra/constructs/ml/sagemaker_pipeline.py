"""AWS::SageMaker::Pipeline from a typed pipeline (infra/pipeline): the definition rendered at synth,
stored as PipelineDefinitionBody through Fn::Sub, and written indented to
<cloud assembly>/pipelines/<pipeline name>.json for people to read.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.constructs.ml.pipeline_code import assembly_root
from infra.pipeline import render


class SageMakerPipeline(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: render.Pipeline,
        variables: dict[str, str],
        role: iam.IRole,
        description: str,
        max_parallel_steps: int,
    ) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(pipeline.variables) - set(variables))
        if missing:
            raise ValueError(f"{self.node.path}: the definition uses Fn::Sub variables nobody fills: {missing}")
        # Any other `${` in the definition is literal text (render.sub_body escapes it).
        self.body = render.sub_body(render.definition(pipeline), pipeline.variables)
        self.definition_file = assembly_root(self) / "pipelines" / f"{pipeline.name}.json"
        self.definition_file.parent.mkdir(parents=True, exist_ok=True)
        self.definition_file.write_text(render.pretty(self.body))
        used = render.variables_used(self.body)
        self.resource = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=pipeline.name,
            pipeline_description=description,
            role_arn=role.role_arn,
            # CloudFormation-cased dicts: the generated *Property structs would render camelCase keys.
            pipeline_definition={
                "PipelineDefinitionBody": cdk.Fn.sub(self.body, {k: v for k, v in variables.items() if k in used})
            },
            parallelism_configuration={"MaxParallelExecutionSteps": max_parallel_steps},
        )
        self.pipeline_name = pipeline.name
        self.pipeline_arn = cdk.Stack.of(self).format_arn(
            service="sagemaker", resource="pipeline", resource_name=pipeline.name
        )


def notify_failed_executions(scope: Construct, construct_id: str, *, pipeline_name: str, pipeline_arn: str,
                             topic: sns.ITopic, description: str) -> events.Rule:
    """An EventBridge rule in `scope`: every Failed execution of the pipeline reaches `topic`."""
    return events.Rule(
        scope,
        construct_id,
        description=f"{pipeline_name}: {description}",
        event_pattern=events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["SageMaker Model Building Pipeline Execution Status Change"],
            detail={"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
        ),
        targets=[targets.SnsTopic(topic)],
    )
