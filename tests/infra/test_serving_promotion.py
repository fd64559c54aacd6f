"""Promotion across accounts in the templates and the config: staging shares its approved packages with prod's
promotion role only; prod copies them with IAM limited to that source, and deploys nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, load_all, load_environment
from lambdas.deployer.promotion_settings import PromotionSettings
from lambdas.deployer.settings import DeployerSettings
from tests.conftest import ROOT
from tests.infra.conftest import Assembly
from tests.infra.serving_helpers import PLACEHOLDER, listed, render, resources, role_statements, settings_document

PROMOTER = "arn:aws:iam::333333333333:role/telecom-ml-*-model-promotion"


def _only(assembly: Assembly, stage: str, stack: str, kind: str) -> dict[str, Any]:
    return {k: r for k, r in assembly.template(stage, stack)["Resources"].items() if r["Type"] == kind}


def test_staging_shares_its_group_with_prods_promotion_role_only(assembly: Assembly) -> None:
    (group,) = _only(assembly, "Staging", "MlPipeline", "AWS::SageMaker::ModelPackageGroup").values()
    (statement,) = group["Properties"]["ModelPackageGroupPolicy"]["Statement"]
    assert statement["Principal"] == {"AWS": ["arn:aws:iam::333333333333:root"]}
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": [PROMOTER]}}
    assert statement["Action"] == ["sagemaker:DescribeModelPackage"]
    assert statement["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:222222222222:model-package-group/telecom-ml-staging-churn",
        "arn:aws:sagemaker:eu-west-1:222222222222:model-package/telecom-ml-staging-churn/*",
    ]
    for stage in ("Dev", "Prod"):
        (other,) = _only(assembly, stage, "MlPipeline", "AWS::SageMaker::ModelPackageGroup").values()
        assert "ModelPackageGroupPolicy" not in other["Properties"]


def test_staging_bucket_and_key_admit_the_promotion_role_for_pipeline_files_through_s3(assembly: Assembly) -> None:
    policies = _only(assembly, "Staging", "Foundation", "AWS::S3::BucketPolicy").values()
    shared = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "PromotionReadsPipelineFiles"
    ]
    (statement,) = shared
    assert statement["Action"] == "s3:GetObject" and render(statement["Resource"]).endswith("/churn-pipeline/*")
    assert statement["Condition"] == {"ArnLike": {"aws:PrincipalArn": [PROMOTER]}}
    keys = _only(assembly, "Staging", "Foundation", "AWS::KMS::Key").values()
    (grant,) = [
        s
        for k in keys
        for s in k["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "PromotionDecryptsPipelineFilesThroughS3"
    ]
    assert grant["Action"] == "kms:Decrypt"
    assert grant["Condition"]["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    assert "PromotionReadsPipelineFiles" not in json.dumps(assembly.template("Prod", "Foundation"))


def test_prod_has_the_promotion_function_with_the_configured_source(assembly: Assembly) -> None:
    (function,) = [
        r
        for r in resources(assembly, "Prod", "AWS::Lambda::Function").values()
        if "PROMOTION_SETTINGS" in r["Properties"]["Environment"]["Variables"]
    ]
    assert function["Properties"]["FunctionName"] == "telecom-ml-prod-churn-promote"
    assert function["Properties"]["Handler"] == "deployer.handlers.promote.handler"
    settings = PromotionSettings.model_validate(
        json.loads(render(function["Properties"]["Environment"]["Variables"]["PROMOTION_SETTINGS"]))
    )
    assert (settings.source_account, settings.source_region, settings.source_group, settings.target_group) == (
        "222222222222",
        "eu-west-1",
        "telecom-ml-staging-churn",
        "telecom-ml-prod-churn",
    )
    assert all(".dkr.ecr.eu-central-1.amazonaws.com/" in image for image in settings.serving_images)
    roles = resources(assembly, "Prod", "AWS::IAM::Role")
    assert "telecom-ml-prod-model-promotion" in {r["Properties"].get("RoleName") for r in roles.values()}
    for stage in ("Dev", "Staging"):
        assert not [
            r
            for r in resources(assembly, stage, "AWS::Lambda::Function").values()
            if "PROMOTION_SETTINGS" in r["Properties"]["Environment"]["Variables"]
        ]


def test_prod_deploys_only_promoted_packages(assembly: Assembly) -> None:
    for stage, required in (("Dev", False), ("Staging", False), ("Prod", True)):
        assert DeployerSettings.model_validate(settings_document(assembly, stage)).require_promoted is required


def test_promotion_iam_is_limited_to_the_source_and_its_own_group(assembly: Assembly) -> None:
    grants: dict[str, set[str]] = {}
    conditions: dict[str, Any] = {}
    for statement in role_statements(assembly, "Prod", "PromotionRole"):
        for action in listed(statement["Action"]):
            grants.setdefault(action, set()).update(render(r) for r in listed(statement["Resource"]))
            conditions.setdefault(action, []).append(statement.get("Condition"))
    source, target = "arn:aws:sagemaker:eu-west-1:222222222222", "arn:aws:sagemaker:eu-central-1:333333333333"
    assert grants["sagemaker:DescribeModelPackage"] == {
        f"{source}:model-package/telecom-ml-staging-churn/*",
        f"{target}:model-package/telecom-ml-prod-churn/*",
    }
    assert grants["sagemaker:CreateModelPackage"] == {
        f"{target}:model-package/telecom-ml-prod-churn/*",
        f"{target}:model-package-group/telecom-ml-prod-churn",
    }
    assert grants["sagemaker:UpdateModelPackage"] == {f"{target}:model-package/telecom-ml-prod-churn/*"}
    assert grants["s3:GetObject"] == {"arn:aws:s3:::*/churn-pipeline/*", f"{PLACEHOLDER}/promoted/*"}
    assert {"StringEquals": {"s3:ResourceAccount": "222222222222"}} in conditions["s3:GetObject"]
    assert grants["s3:PutObject"] == {f"{PLACEHOLDER}/promoted/*"}
    assert "arn:aws:kms:eu-west-1:222222222222:key/*" in grants["kms:Decrypt"]
    wildcard = [a for a, r in grants.items() if "*" in r]
    assert all(a.startswith("xray:") for a in wildcard), wildcard


def test_prods_sagemaker_role_reads_promoted_model_data(assembly: Assembly) -> None:
    statements = role_statements(assembly, "Prod", "telecom-ml-prod-sagemaker-execution")
    (read,) = [s for s in statements if "s3:GetObject" in listed(s["Action"])]
    assert [render(r) for r in listed(read["Resource"])] == [f"{PLACEHOLDER}/promoted/*"]


# ------------------------------------------------------------------------------------------- config
def _config(tmp_path: Path, name: str, ml: dict[str, Any]) -> Path:
    doc = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    doc["ml"].update(ml)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    "name,ml,message",
    [
        (
            "prod",
            {
                "promotion": {
                    "source_account": "333333333333",
                    "source_region": "eu-west-1",
                    "source_group": "telecom-ml-staging-churn",
                }
            },
            "is this environment's own account",
        ),
        (
            "prod",
            {"promotion": {"source_account": "2222", "source_region": "eu-west-1", "source_group": "g"}},
            "ml.promotion.source_account",
        ),
        (
            "prod",
            {"promotion": {"source_account": "222222222222", "source_region": "mars-1", "source_group": "g"}},
            "ml.promotion.source_region",
        ),
        (
            "prod",
            {"promotion": {"source_account": "222222222222", "source_region": "eu-west-1"}},
            "ml.promotion.source_group: required",
        ),
        ("staging", {"registry": {"share_with_accounts": ["222222222222"]}}, "names this environment's own account"),
        ("staging", {"registry": {"share_with_accounts": ["prod"]}}, "ml.registry.share_with_accounts.0"),
    ],
)
def test_bad_promotion_settings_name_the_field(tmp_path: Path, name: str, ml: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_environment(_config(tmp_path, name, ml))


def test_a_source_that_does_not_share_with_the_promoting_account_is_refused(tmp_path: Path) -> None:
    _config(tmp_path, "staging", {"registry": {"share_with_accounts": []}})
    _config(tmp_path, "prod", {})
    with pytest.raises(ConfigError, match=r"prod.yaml: ml.promotion: staging.yaml does not list 333333333333"):
        load_all(tmp_path)


def test_a_source_region_that_is_not_the_sources_is_refused(tmp_path: Path) -> None:
    _config(tmp_path, "staging", {})
    _config(
        tmp_path,
        "prod",
        {
            "promotion": {
                "source_account": "222222222222",
                "source_region": "eu-central-1",
                "source_group": "telecom-ml-staging-churn",
            }
        },
    )
    with pytest.raises(ConfigError, match=r"source_region 'eu-central-1' but staging\.yaml is in eu-west-1"):
        load_all(tmp_path)
