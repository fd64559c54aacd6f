"""Keys whose policies split administration from use, grants that name the service they go through,
and a pseudonymisation secret under its own key that only the ETL jobs can read."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.constructs.foundation.encryption_keys import ADMIN_ACTIONS, USE_ACTIONS
from tests.infra.conftest import Assembly

STAGES = ("Dev", "Staging", "Prod")


def keys(assembly: Assembly, stage: str) -> dict[str, dict[str, Any]]:
    resources = assembly.template(stage, "Foundation")["Resources"]
    return {k: r for k, r in resources.items() if r["Type"] == "AWS::KMS::Key"}


def policies_of(assembly: Assembly, stage: str, role_prefix: str) -> list[dict[str, Any]]:
    resources = assembly.template(stage, "DataLake")["Resources"]
    return [
        s
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and any(role_prefix in json.dumps(x) for x in r["Properties"]["Roles"])
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("stage", STAGES)
def test_key_policies_split_administration_from_use(assembly: Assembly, stage: str) -> None:
    for logical_id, key in keys(assembly, stage).items():
        statements = {s.get("Sid"): s for s in key["Properties"]["KeyPolicy"]["Statement"]}
        admin, use = statements["KeyAdministration"], statements["KeyUseGrantedThroughIam"]
        assert sorted(admin["Action"]) == sorted(ADMIN_ACTIONS), logical_id
        assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*"} & set(admin["Action"])
        admins = json.dumps(admin["Principal"])
        assert "role/TelecomMlKeyAdmin" in admins and "cfn-exec-role" in admins, logical_id
        assert json.dumps(use["Principal"]).endswith(':root"}'), use["Principal"]
        assert sorted(use["Action"]) == sorted(USE_ACTIONS), logical_id
        assert not [s for s in statements.values() if s.get("Action") == "kms:*"], f"{logical_id}: kms:* remains"
        grants = statements["GrantsForAwsServicesOnly"]
        assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


def test_only_rules_of_this_account_may_use_the_data_key(assembly: Assembly) -> None:
    (data_key,) = [k for i, k in keys(assembly, "Prod").items() if i.startswith("KeysDataKey")]
    events = [s for s in data_key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})]
    assert [s["Principal"]["Service"] for s in events] == ["events.amazonaws.com"]
    assert events[0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "333333333333"},
        "ArnLike": {"aws:SourceArn": "arn:aws:events:eu-central-1:333333333333:rule/*"},
    }


@pytest.mark.parametrize("role_prefix", ["ConformSubscribersRole", "BuildFeaturesRole", "LakeFormationDataAccessRole",
                                         "telecom-ml-dev-sagemaker-execution"])
def test_every_key_grant_names_its_service_and_never_encrypts(assembly: Assembly, role_prefix: str) -> None:
    kms = [s for s in policies_of(assembly, "Dev", role_prefix) if "kms:" in json.dumps(s["Action"])]
    assert kms, role_prefix
    for statement in kms:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert set(actions) <= {"kms:Decrypt", "kms:GenerateDataKey"}, statement
        assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement
        if statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3."):
            assert "kms:EncryptionContext:aws:s3:arn" in statement["Condition"]["ArnLike"], statement


def test_sagemaker_uses_the_data_key_only_for_the_feature_zone(assembly: Assembly) -> None:
    statements = policies_of(assembly, "Dev", "telecom-ml-dev-sagemaker-execution")
    (grant,) = [s for s in statements if "kms:" in json.dumps(s["Action"])]
    # Decrypt to read the feature table; GenerateDataKey for batch scoring's writes to the scores folder.
    assert grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    context = json.dumps(grant["Condition"]["ArnLike"])
    # Curated: only for the labels folder (its object grant is churn_labels/*, tests/infra/test_labels_and_erasure.py).
    assert "FeaturesBucket" in context and "CuratedBucket" in context and "RawBucket" not in context


@pytest.mark.parametrize("stage", STAGES)
def test_pseudonymisation_secret_has_its_own_key_and_only_etl_readers(assembly: Assembly, stage: str) -> None:
    lake = assembly.template(stage, "DataLake")["Resources"]
    (secret,) = [r for r in lake.values() if r["Type"] == "AWS::SecretsManager::Secret"]
    assert "KeysSecretsKey" in json.dumps(secret["Properties"]["KmsKeyId"])
    (policy,) = [r for r in lake.values() if r["Type"] == "AWS::SecretsManager::ResourcePolicy"]
    (deny,) = policy["Properties"]["ResourcePolicy"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    readers = json.dumps(deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"])
    assert "ConformSubscribersRole" in readers and "BuildFeaturesRole" in readers and "SageMaker" not in readers
    assert "EraseSubscriberRole" in readers  # derives a pseudonym from an erasure request's clear id
