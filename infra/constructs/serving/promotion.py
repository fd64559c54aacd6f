"""Promotion across accounts (docs/serving.md, "Promotion"): prod deploys the exact package approved in staging.

Source side (the environment with `ml.registry.share_with_accounts`): its model package group's resource policy,
its ML artefact bucket and its ML key let the promotion role of each listed account read the approved packages
and the pipeline files they name, nothing else. Target side (the environment with `ml.promotion`): the promotion
function (`<endpoint>-promote`, role `telecom-ml-<env>-model-promotion`) copies a package into its own group;
approving the copy starts the deployer like any approval.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker

ROLE_NAME_PATTERN = "telecom-ml-*-model-promotion"
PROMOTED_PREFIX = "promoted/"


def promotion_role_name(env_name: str) -> str:
    """Fixed: the source environment's policies name it (through ROLE_NAME_PATTERN)."""
    return f"telecom-ml-{env_name}-model-promotion"


def _promoters(stack: cdk.Stack, accounts: tuple[str, ...]) -> tuple[list[iam.IPrincipal], dict[str, object]]:
    principals: list[iam.IPrincipal] = [iam.AccountPrincipal(a) for a in accounts]
    roles = [f"arn:{stack.partition}:iam::{a}:role/{ROLE_NAME_PATTERN}" for a in accounts]
    return principals, {"ArnLike": {"aws:PrincipalArn": roles}}


def group_policy(stack: cdk.Stack, group_arn: str, packages_arn: str, accounts: tuple[str, ...]) -> dict[str, object]:
    """ModelPackageGroupPolicy: the listed accounts' promotion roles may describe the group's packages."""
    roles = [f"arn:{stack.partition}:iam::{a}:role/{ROLE_NAME_PATTERN}" for a in accounts]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PromotionReadsApprovedPackages",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:{stack.partition}:iam::{a}:root" for a in accounts]},
                "Action": ["sagemaker:DescribeModelPackage"],
                "Resource": [group_arn, packages_arn],
                "Condition": {"ArnLike": {"aws:PrincipalArn": roles}},
            }
        ],
    }


def share_promotion_source(
    group: sagemaker.CfnModelPackageGroup,
    group_arn: str,
    packages_arn: str,
    bucket: s3.IBucket,
    key: kms.IKey,
    accounts: tuple[str, ...],
    pipeline_prefix: str,
) -> None:
    """Let the promotion roles of `accounts` read this environment's approved packages and their files."""
    if not accounts:
        return
    stack = cdk.Stack.of(group)
    group.model_package_group_policy = group_policy(stack, group_arn, packages_arn, accounts)
    principals, condition = _promoters(stack, accounts)
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PromotionReadsPipelineFiles",
            principals=principals,
            actions=["s3:GetObject"],
            resources=[bucket.arn_for_objects(f"{pipeline_prefix}*")],
            conditions=condition,
        )
    )
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="PromotionDecryptsPipelineFilesThroughS3",
            principals=principals,
            actions=["kms:Decrypt"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={**condition, "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
        )
    )
