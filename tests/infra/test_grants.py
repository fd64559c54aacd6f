"""add_statements: the same grant policy as add_to_principal_policy per statement, in fewer calls into jsii."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam

from infra.compliance import grant_policy_of
from infra.grants import add_statements


def _role(stack: cdk.Stack, construct_id: str) -> iam.Role:
    return iam.Role(stack, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))


def _statements(n: int) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(actions=[f"s3:GetObject{'Version' * (i % 2)}"], resources=[f"arn:aws:s3:::b{i}/*"])
        for i in range(n)
    ]


def _document(stack: cdk.Stack, role: iam.Role) -> object:
    policy = grant_policy_of(role)
    assert isinstance(policy.node.default_child, iam.CfnPolicy)
    return stack.resolve(policy.node.default_child.policy_document)


@pytest.mark.parametrize("already_granted", [False, True])
def test_add_statements_gives_the_policy_add_to_principal_policy_gives(already_granted: bool) -> None:
    stack = cdk.Stack(cdk.App(), "Grants")
    one_by_one, batched = _role(stack, "OneByOne"), _role(stack, "Batched")
    if already_granted:  # the grant policy exists and is known: everything goes to it in one call
        for role in (one_by_one, batched):
            role.add_to_principal_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=["arn:q"]))
            grant_policy_of(role)
    for statement in _statements(4):
        one_by_one.add_to_principal_policy(statement)
    add_statements(batched, _statements(4))
    assert _document(stack, batched) == _document(stack, one_by_one)
    assert len(_document(stack, batched)["Statement"]) == 5 if already_granted else 4  # type: ignore[index]


def test_add_statements_refuses_a_role_that_takes_none() -> None:
    stack = cdk.Stack(cdk.App(), "Grants")
    imported = iam.Role.from_role_arn(stack, "Imported", "arn:aws:iam::111111111111:role/fixed", mutable=False)
    with pytest.raises(ValueError, match="Grants/Imported: the role keeps no policy, its statements would be lost"):
        add_statements(imported, _statements(1))


def test_add_statements_of_nothing_creates_no_policy() -> None:
    stack = cdk.Stack(cdk.App(), "Grants")
    role = _role(stack, "Role")
    add_statements(role, [])
    assert role.node.try_find_child("DefaultPolicy") is None
