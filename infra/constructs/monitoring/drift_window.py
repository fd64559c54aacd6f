"""The drift pipeline's WindowGuard Lambda step: lambdas/drift_window, its role, log group and network placement.

Invoked synchronously by SageMaker Pipelines (no dead-letter queue). It lists the endpoint's current-baseline
prefix, the window's capture hour folders and (with model quality) the lake's labels prefix, and writes one
manifest per execution under the reports' manifests/ prefix; those S3 grants are made by the composing stack,
where the buckets meet (`grant_reads`/`grant_manifests`). `vpc` mode: in the isolated subnets behind the
workload security group, reaching S3 through the gateway endpoint. `isolated` mode: outside the VPC, as the
ChampionLookup step and the drift job itself.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import Finding, acknowledge
from infra.constructs.foundation.log_retention import encrypted_log_group
from infra.constructs.ml.job_access import grant_network_interfaces
from infra.constructs.ml.pipeline_code import stage_files
from infra.constructs.ml.training_trigger import powertools_layer_arn
from infra.grants import grant_key, s3_context

HANDLER = "lambdas.drift_window.handler.handler"
# Exactly the handler's package, at the paths it imports itself by (relative to the repository root).
PACKAGE_FILES = (
    "lambdas/__init__.py",
    "lambdas/drift_window/__init__.py",
    "lambdas/drift_window/handler.py",
    "lambdas/drift_window/window.py",
)
# Up to 169 hour folders listed one after another (168-hour window): well under this.
TIMEOUT = cdk.Duration.seconds(120)


def stage_package(scope: Construct) -> Path:
    """The handler's package alone, staged in the cloud assembly as the function's asset."""
    return stage_files(scope, "drift-window", PACKAGE_FILES)


class DriftWindowFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logs_key: kms.IKey,
        log_retention_days: int,
        destroy_on_removal: bool,
        vpc: ec2.IVpc | None,
        security_group: ec2.ISecurityGroup | None,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self.log_group = encrypted_log_group(self, logs_key, log_retention_days, removal)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Drift WindowGuard: lists the baseline, capture and labels prefixes, writes manifests",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        if vpc is not None and security_group is not None:
            grant_network_interfaces(self.role, vpc, security_group, lambda_service=True)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(stage_package(self))),
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn())],
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            timeout=TIMEOUT,
            # The pipeline calls it once per execution; a small reservation bounds it and keeps it available.
            reserved_concurrent_executions=2,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED) if vpc else None,
            security_groups=[security_group] if security_group else None,
            environment={"POWERTOOLS_SERVICE_NAME": "drift-window", "POWERTOOLS_LOG_LEVEL": "INFO"},
            description="SageMaker drift pipeline step: is there a baseline and captured data, manifest of the window",
        )
        acknowledge(
            self.function, Finding.PIPELINE_LAMBDA_STEP_IS_SYNCHRONOUS, Finding.LAMBDA_RUNTIME_IS_THE_PROJECT_PYTHON
        )
        if vpc is None:
            acknowledge(self.function, Finding.DRIFT_WINDOW_OUTSIDE_VPC_IN_ISOLATED_MODE)

    def grant_list(self, bucket: s3.IBucket, prefixes: list[str]) -> None:
        """s3:ListBucket on `bucket`, only for keys under `prefixes` (listing needs no key use)."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
            )
        )

    def grant_manifests(self, bucket: s3.IBucket, prefix: str, key: kms.IKey) -> None:
        """s3:PutObject under `prefix` only, encrypting with `key` through S3 for objects of `bucket`."""
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{prefix}*")])
        )
        grant_key(self.role, key, via="s3", write=True, context=s3_context(bucket))

    @property
    def function_arn(self) -> str:
        return self.function.function_arn
