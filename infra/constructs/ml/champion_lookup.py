"""The pipeline's Lambda step: lambdas/champion_lookup, its role, log group and network placement.

`vpc` mode: in the isolated subnets behind the workload security group, reaching the SageMaker API
through its interface endpoint. `isolated` mode: outside the VPC (the environment has no endpoints).
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.compliance import Finding, acknowledge, acknowledge_grant_policy, grant_policy_of
from infra.constructs.foundation.log_retention import encrypted_log_group
from infra.constructs.ml.job_access import grant_network_interfaces
from infra.constructs.ml.pipeline_code import stage_files
from infra.template_hygiene import keep_only_dependencies

HANDLER = "lambdas.champion_lookup.handler.handler"
# Exactly the handler's package, at the paths it imports itself by (relative to the repository root).
PACKAGE_FILES = ("lambdas/__init__.py", "lambdas/champion_lookup/__init__.py", "lambdas/champion_lookup/handler.py",
                 "lambdas/champion_lookup/lookup.py")


def stage_package(scope: Construct) -> Path:
    """The handler's package alone, staged in the cloud assembly as the function's asset."""
    return stage_files(scope, "champion-lookup", PACKAGE_FILES)


class ChampionLookupFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        packages_arn: str,
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
            description="ChampionLookup: reads the churn model registry, writes its own log group",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(stage_package(self))),
            role=self.role,
            log_group=self.log_group,
            memory_size=256,
            timeout=cdk.Duration.seconds(30),
            # The pipeline calls it once per execution; a small reservation bounds it and keeps it available.
            reserved_concurrent_executions=2,
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED) if vpc else None,
            security_groups=[security_group] if security_group else None,
            description="SageMaker pipeline step: the newest approved churn model package (the champion)",
        )
        self._grant(packages_arn, vpc, security_group)
        # The function already references its role (GetAtt); it need only wait for the role's policy.
        keep_only_dependencies(self.function, grant_policy_of(self.role))
        acknowledge(self.function, Finding.PIPELINE_LAMBDA_STEP_IS_SYNCHRONOUS)
        if vpc is None:
            acknowledge(self.function, Finding.PIPELINE_LAMBDA_OUTSIDE_VPC_IN_ISOLATED_MODE)
        acknowledge_grant_policy(self.role, Finding.REGISTRY_LISTING_AND_VPC_NETWORK_INTERFACES)

    def _grant(self, packages_arn: str, vpc: ec2.IVpc | None, security_group: ec2.ISecurityGroup | None) -> None:
        role = self.role
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                resources=[self.log_group.log_group_arn])
        )
        # ListModelPackages has no resource-level permission; DescribeModelPackage is scoped to the group.
        role.add_to_principal_policy(iam.PolicyStatement(actions=["sagemaker:ListModelPackages"], resources=["*"]))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"], resources=[packages_arn])
        )
        if vpc is not None and security_group is not None:
            grant_network_interfaces(role, vpc, security_group, lambda_service=True)

    @property
    def function_arn(self) -> str:
        return self.function.function_arn
