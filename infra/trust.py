"""Confused-deputy protection on service roles: the service may assume the role only on behalf of
this account's resources (aws:SourceAccount, plus aws:SourceArn where the caller's ARN is known).

Applied where the service documents these keys for role assumption (SageMaker, Step Functions,
EventBridge). Glue and Lake Formation roles are not conditioned: their documentation does not
state that they send the keys when assuming a role, and a condition the service does not satisfy
would break every job run.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam


def source_conditions(scope: cdk.Stack, service: str, resources: str) -> dict[str, dict[str, str]]:
    """aws:SourceAccount = this account; aws:SourceArn like arn:<partition>:<service>:<region>:<account>:<resources>."""
    arn = f"arn:{scope.partition}:{service}:{scope.region}:{scope.account}:{resources}"
    return {"StringEquals": {"aws:SourceAccount": scope.account}, "ArnLike": {"aws:SourceArn": arn}}


def condition_trust(role: iam.IRole, service: str, resources: str) -> None:
    """Add the source conditions to the (single) trust statement of a role CDK created for us."""
    cfn_role = role.node.default_child
    if not isinstance(cfn_role, iam.CfnRole):
        raise TypeError(f"{role.node.path}: not a role defined in this app")
    stack = cdk.Stack.of(cfn_role)
    cfn_role.add_property_override(
        "AssumeRolePolicyDocument.Statement.0.Condition", source_conditions(stack, service, resources)
    )
