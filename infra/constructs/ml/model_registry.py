"""The model package group every registered churn model version lands in (named: a contract)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct


class ModelRegistry(Construct):
    """Stateful: it holds every version and its approval history. Outside dev it is retained; in dev,
    `cdk destroy` deletes it only once its model packages are deleted (SageMaker refuses otherwise)."""

    def __init__(self, scope: Construct, construct_id: str, *, group_name: str, destroy_on_removal: bool) -> None:
        super().__init__(scope, construct_id)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "Group",
            model_package_group_name=group_name,
            model_package_group_description="Churn models registered by the SageMaker pipeline (candidates that "
            "passed the quality gate); the newest Approved one is the champion",
        )
        self.group.apply_removal_policy(cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN)
        stack = cdk.Stack.of(self)
        self.group_name = group_name
        self.group_arn = stack.format_arn(service="sagemaker", resource="model-package-group", resource_name=group_name)
        # Versions are model-package/<group>/<version>; IAM matches SageMaker ARNs in lower case.
        self.packages_arn = stack.format_arn(
            service="sagemaker", resource="model-package", resource_name=f"{group_name.lower()}/*"
        )
