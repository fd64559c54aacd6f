"""Compliance gate: cdk-nag 3 packs on the whole app, and every acknowledgement in one place.

Each acknowledgement names its rule(s), applies to the narrowest construct that needs it and
carries the reason a security reviewer reads in the validation report and the template
metadata. Constructs call `acknowledge(construct, Finding.X)`; they never write reasons.
"""

from __future__ import annotations

from enum import Enum

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    WriteNagSuppressionsToCloudFormationAspect,
)
from constructs import IConstruct

_NIST = "NIST.800.53.R5::NIST.800.53.R5-"
_HIPAA = "HIPAA.Security::HIPAA.Security-"
_AWS = "AwsSolutions::AwsSolutions-"


def enable_compliance_gate(app: cdk.App) -> None:
    """Synth fails (ValidationFailed) on any finding of these packs that is not acknowledged."""
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app), NIST80053R5Checks(app), HIPAASecurityChecks(app),
    )
    # Copy every acknowledgement, with its reason, into the template metadata (audit trail).
    # Aspects do not cross stage boundaries, so each stage gets its own.
    for scope in [app, *(c for c in app.node.children if cdk.Stage.is_stage(c))]:
        cdk.Aspects.of(scope).add(WriteNagSuppressionsToCloudFormationAspect())


class Finding(Enum):
    """(rule ids, reason). The reason states the control and how it is met or why it does not apply."""

    BUCKET_REPLICATION = (
        (f"{_NIST}S3BucketReplicationEnabled", f"{_HIPAA}S3BucketReplicationEnabled"),
        "Cross-region replication is an operator disaster-recovery choice, off by default: subscriber "
        "data residency rules often forbid a copy in another region. Recoverability (CP-9, 164.308(a)(7)) "
        "is met by versioning with noncurrent-version retention and RETAIN removal policy outside dev.",
    )
    ACCESS_LOG_BUCKET_SSE_S3 = (
        (f"{_NIST}S3DefaultEncryptionKMS", f"{_HIPAA}S3DefaultEncryptionKMS"),
        "S3 server access log delivery only supports SSE-S3 on the destination bucket (documented S3 "
        "limitation); the bucket holds request metadata only, is TLS-only and blocks public access.",
    )
    ACCESS_LOG_BUCKET_NO_SELF_LOGGING = (
        (f"{_AWS}S1", f"{_NIST}S3BucketLoggingEnabled", f"{_HIPAA}S3BucketLoggingEnabled"),
        "This is the server access log destination; logging it to itself would recurse. Access to it "
        "is recorded by CloudTrail data events where the account enables them.",
    )
    GRANT_POLICY_ON_SINGLE_ROLE = (
        (f"{_NIST}IAMNoInlinePolicy", f"{_HIPAA}IAMNoInlinePolicy"),
        "The policy is the one CDK generates from explicit grants for this single role (AWS::IAM::Policy "
        "attached to it alone). Every statement is scoped to named resources and reviewed where the grant "
        "is made; a customer-managed policy attached to the same one role would add no control.",
    )

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


def acknowledge(construct: IConstruct, *findings: Finding) -> None:
    """Acknowledge on the CloudFormation resource itself (an L2's default child, recursively)."""
    target = construct
    while target.node.default_child is not None:
        target = target.node.default_child
    validations = cdk.Validations.of(target)
    for finding in findings:
        for rule_id in finding.rule_ids:
            validations.acknowledge(cdk.Acknowledgment(id=rule_id, reason=finding.reason))


def acknowledge_grant_policy(role: iam.Role) -> None:
    """Acknowledge IAMNoInlinePolicy on the policy CDK generates from grants; call after the grants."""
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        raise ValueError(f"{role.node.path}: no grant policy to acknowledge (make the grants first)")
    acknowledge(policy, Finding.GRANT_POLICY_ON_SINGLE_ROLE)
