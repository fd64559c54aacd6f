"""Least-privilege grants for the data lake, tighter than CDK's convenience grants.

CDK's bucket.grant_read() allows s3:GetObject*, s3:List*, s3:GetBucket* and key ReEncrypt*/
GenerateDataKey*. These helpers allow only the named actions, on one key prefix, and record
the single unavoidable wildcard (objects under that prefix) as a reviewed acknowledgement.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from infra.compliance import (
    Finding,
    acknowledge_resource_wildcard,
    find_grant_policy,
    grant_policy_of,
    has_grant_policy,
)
from infra.logical_ids import logical_id_of, resource_of, stack_of

READ_ACTIONS = ["s3:GetObject"]
WRITE_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]


def add_statements(role: iam.IRole, statements: Sequence[iam.PolicyStatement]) -> None:
    """`role.add_to_principal_policy` for each statement, in order, in fewer calls into jsii: all in one call to the
    role's grant policy once it is known, else the first creates that policy and the rest go to it in one call
    (each add_to_principal_policy is three calls: the call and the two fields of the result it returns).
    A role that keeps no policy (an immutable import, which CDK lets drop statements silently) is an error."""
    if not statements:
        return
    rest = list(statements)
    if not has_grant_policy(role):
        added = role.add_to_principal_policy(rest.pop(0)).statement_added
        if not added or find_grant_policy(role) is None:
            raise ValueError(f"{role.node.path}: the role keeps no policy, its statements would be lost")
    if rest:
        policy = grant_policy_of(role)
        if not isinstance(policy, iam.Policy):
            raise TypeError(f"{policy.node.path}: expected the role's grant policy to be an iam.Policy")
        policy.add_statements(*rest)


def grant_prefix(role: iam.IRole, bucket: s3.IBucket, prefix: str, *, read: bool = False, write: bool = False) -> None:
    """Object access under `prefix` ('' = whole bucket) plus listing restricted to that prefix."""
    if not (read or write):
        raise ValueError("grant_prefix needs read and/or write")
    if prefix and not prefix.endswith("/"):
        raise ValueError(f"prefix '{prefix}' must end with '/'")
    actions = (READ_ACTIONS if read else []) + (WRITE_ACTIONS if write else [])
    objects = iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{prefix}*")])
    conditions = {"StringLike": {"s3:prefix": [prefix.rstrip("/"), f"{prefix}*"]}} if prefix else None
    listing = iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn], conditions=conditions)
    add_statements(role, [objects, listing])
    acknowledge_objects_under(role, bucket, prefix)


def acknowledge_objects_under(role: iam.IRole, bucket: s3.IBucket, prefix: str) -> None:
    """Record the reviewed wildcard `<bucket>/<prefix>*` on `role`'s grant policy, as cdk-nag names it."""
    policy = grant_policy_of(role)
    bucket_stack, logical_id = _bucket_resource(bucket)
    if bucket_stack is not stack_of(policy):
        raise ValueError(f"{bucket.node.path}: expected a bucket defined in the role policy's stack")
    acknowledge_resource_wildcard(policy, f"<{logical_id}.Arn>/{prefix}*", Finding.OBJECTS_UNDER_ONE_PREFIX)


# Each bucket's CloudFormation resource, found once: the same buckets are granted to many roles.
_BUCKET_RESOURCES: weakref.WeakKeyDictionary[s3.IBucket, tuple[cdk.Stack, str]] = weakref.WeakKeyDictionary()


def _bucket_resource(bucket: s3.IBucket) -> tuple[cdk.Stack, str]:
    """The stack and logical id of the bucket's AWS::S3::Bucket (an imported bucket has none: an error)."""
    if bucket not in _BUCKET_RESOURCES:
        cfn_bucket = resource_of(bucket)
        if not isinstance(cfn_bucket, cdk.CfnResource):
            raise ValueError(f"{bucket.node.path}: expected a bucket defined in the role policy's stack")
        _BUCKET_RESOURCES[bucket] = (stack_of(cfn_bucket), logical_id_of(cfn_bucket))
    return _BUCKET_RESOURCES[bucket]


def grant_key(
    role: iam.IRole,
    key: kms.IKey,
    *,
    via: str,
    write: bool,
    context: tuple[str, list[str]] | None = None,
) -> None:
    """Use of one key by exact ARN, only through the service `via` (e.g. "s3") and, where that service
    sets an encryption context, only for the named resources. Readers decrypt; writers also generate
    data keys (envelope encryption: no service here calls kms:Encrypt)."""
    region = stack_of(role).region
    actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else ["kms:Decrypt"]
    conditions: dict[str, dict[str, object]] = {"StringEquals": {"kms:ViaService": f"{via}.{region}.amazonaws.com"}}
    if context is not None:
        context_key, values = context
        conditions["ArnLike"] = {f"kms:EncryptionContext:{context_key}": values}
    add_statements(role, [iam.PolicyStatement(actions=actions, resources=[key.key_arn], conditions=conditions)])


def s3_context(*buckets: s3.IBucket) -> tuple[str, list[str]]:
    """SSE-KMS encryption context of objects in `buckets` (bucket ARN with bucket keys, object ARN without)."""
    return "aws:s3:arn", [arn for b in buckets for arn in (b.bucket_arn, b.arn_for_objects("*"))]


def grant_versions(role: iam.IRole, bucket: s3.IBucket, prefix: str) -> None:
    """List and delete object versions under `prefix` (erasure: a replaced object's old versions still hold
    the data). Pair with grant_prefix on the same prefix, which records the objects wildcard."""
    if not prefix.endswith("/"):
        raise ValueError(f"prefix '{prefix}' must end with '/'")
    versions = iam.PolicyStatement(actions=["s3:DeleteObjectVersion"], resources=[bucket.arn_for_objects(f"{prefix}*")])
    listing = iam.PolicyStatement(
        actions=["s3:ListBucketVersions"],
        resources=[bucket.bucket_arn],
        conditions={"StringLike": {"s3:prefix": [prefix.rstrip("/"), f"{prefix}*"]}},
    )
    add_statements(role, [versions, listing])
