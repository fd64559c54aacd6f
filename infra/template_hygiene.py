"""Small escape hatches that keep CDK-generated resources cfn-lint clean (0 errors, 0 warnings).

cfn-lint W3005 flags a DependsOn on a resource that the same resource already references with
GetAtt. Some CDK-built resources carry such duplicates; these helpers remove only the
duplicate, so deployment order is unchanged.
"""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

from infra.logical_ids import resource_of


def _cfn(construct: IConstruct) -> cdk.CfnResource:
    target = resource_of(construct)
    if not isinstance(target, cdk.CfnResource):
        raise TypeError(f"{construct.node.path} is not a CloudFormation resource")
    return target


def keep_only_dependencies(resource: IConstruct, *keep: IConstruct) -> None:
    """Replace `resource`'s DependsOn with just `keep`, in that order (nothing when empty). The ids are tokens
    resolved at synth, so they are the final ones (after any logical-id override, e.g. a TransparentGroup's)."""
    cfn = _cfn(resource)
    if keep:
        cfn.add_override("DependsOn", [_cfn(k).logical_id for k in keep])
    else:
        cfn.add_deletion_override("DependsOn")


def drop_cdk_handler_role_dependency(stack: cdk.Stack, construct_id_prefix: str) -> None:
    """CDK singleton handlers (e.g. bucket notifications, default-SG restriction) DependsOn their
    role although their Role property already uses GetAtt on it."""
    for child in stack.node.children:
        if child.node.id.startswith(construct_id_prefix):
            handler = child.node.try_find_child("Resource") or child.node.try_find_child("Handler")
            if isinstance(handler, cdk.CfnResource):
                handler.add_deletion_override("DependsOn")
