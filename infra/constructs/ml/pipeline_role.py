"""What SageMaker Pipelines needs to run the churn pipeline, granted to the pipeline role (a named role the
Foundation creates, which also grants it the artefacts it reads): start and watch this pipeline's jobs, pass
the job role, invoke the Lambda step and register packages in the group. The jobs run as the job role.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from infra.constructs.ml.job_access import grant_volume_encryption

# SageMaker Pipelines names the jobs it starts pipelines-<execution>-<step>-<suffix>.
PIPELINE_JOB_PREFIX = "pipelines-"


def pipeline_job_arns(stack: cdk.Stack) -> list[str]:
    return [stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{PIPELINE_JOB_PREFIX}*")
            for kind in ("processing-job", "training-job")]


def grant_pipeline_role(
    role: iam.IRole,
    *,
    job_role_arn: str,
    function_arn: str,
    group_arn: str,
    packages_arn: str,
    ml_key: kms.IKey,
) -> None:
    statements = [
        iam.PolicyStatement(
            sid="PipelineJobs",
            actions=["sagemaker:AddTags", "sagemaker:CreateProcessingJob", "sagemaker:CreateTrainingJob",
                     "sagemaker:DescribeProcessingJob", "sagemaker:DescribeTrainingJob",
                     "sagemaker:StopProcessingJob", "sagemaker:StopTrainingJob"],
            resources=pipeline_job_arns(cdk.Stack.of(role)),
        ),
        iam.PolicyStatement(
            sid="RegisterInTheGroup",
            actions=["sagemaker:AddTags", "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage"],
            resources=[group_arn, packages_arn],
        ),
        iam.PolicyStatement(
            sid="PassTheJobRole",
            actions=["iam:PassRole"],
            resources=[job_role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        iam.PolicyStatement(sid="LambdaStep", actions=["lambda:InvokeFunction"], resources=[function_arn]),
    ]
    for statement in statements:
        role.add_to_principal_policy(statement)
    # The pipeline creates the jobs, so it is the caller SageMaker checks for their volume key.
    grant_volume_encryption(role, ml_key)
