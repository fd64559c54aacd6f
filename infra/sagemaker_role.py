"""The SageMaker execution role: created by the Foundation, extended by the stacks that own data.

Named, because operators and pipeline definitions refer to it and other stacks attach policies to
it; importing it by name keeps each grant in the stack that owns the resource, with no
cross-stack cycle.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from constructs import Construct


def sagemaker_role_name(env_name: str) -> str:
    return f"telecom-ml-{env_name}-sagemaker-execution"


def import_sagemaker_role(scope: Construct, env_name: str) -> iam.IRole:
    """The environment's SageMaker role, mutable so that grants made in `scope`'s stack attach to it."""
    return iam.Role.from_role_name(scope, "SageMakerExecutionRole", sagemaker_role_name(env_name), mutable=True)
