"""Service roles whose services document aws:SourceAccount / aws:SourceArn may be assumed only for
this account's resources (confused-deputy protection)."""

from __future__ import annotations

import re

import pytest

from tests.infra.conftest import Assembly

CONDITIONED = [
    ("Foundation", "SageMakerExecutionRole", "sagemaker.amazonaws.com",
     "arn:aws:sagemaker:eu-central-1:333333333333:*"),
    ("DataLake", "OrchestrationStateMachineRole", "states.amazonaws.com",
     "arn:aws:states:eu-central-1:333333333333:stateMachine:*"),
    ("DataLake", "OrchestrationStateMachineEventsRole", "events.amazonaws.com",
     "arn:aws:events:eu-central-1:333333333333:rule/*"),
]


@pytest.mark.parametrize("stack,prefix,service,source_arn", CONDITIONED)
def test_service_trust_names_this_account(assembly: Assembly, stack: str, prefix: str, service: str,
                                          source_arn: str) -> None:
    roles = assembly.template("Prod", stack)["Resources"]
    (role,) = [r for k, r in roles.items() if re.fullmatch(f"{prefix}[0-9A-F]{{8}}", k)]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": service}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "333333333333"},
        "ArnLike": {"aws:SourceArn": source_arn},
    }
