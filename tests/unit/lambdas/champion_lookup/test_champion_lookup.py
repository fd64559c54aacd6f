"""ChampionLookup under moto: no champion, the newest approved one, and requests or packages it must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.champion_lookup import handler
from lambdas.champion_lookup.lookup import ChampionLookupError

GROUP = "telecom-ml-dev-churn"
EVENT = {
    "ModelPackageGroupName": GROUP,
    "CandidateModelDataUrl": "s3://artifacts/churn-pipeline/models/train-pytorch/output/model.tar.gz",
    "XGBoostImageUri": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.2-0",
    "PyTorchImageUri": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.9.0-cpu-py312",
}


@pytest.fixture
def sagemaker(fake_aws_credentials: None) -> Iterator[Any]:
    handler._sagemaker.cache_clear()
    with mock_aws():
        client = boto3.client("sagemaker")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        yield client
    handler._sagemaker.cache_clear()


def register(client: Any, status: str, metadata: dict[str, str]) -> str:
    response = client.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [{"Image": "image", "ModelDataUrl": "s3://artifacts/compiled/model.tar.gz"}],
            "SupportedContentTypes": ["application/json"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        CustomerMetadataProperties=metadata,
    )
    return str(response["ModelPackageArn"])


def test_no_champion_yet_lets_the_candidate_stand_in(sagemaker) -> None:
    register(sagemaker, "PendingManualApproval", {"model_type": "xgboost", "training_model_data_url": "s3://a/x"})
    assert handler.handler(EVENT, None) == {
        "HasChampion": "false",
        "ChampionModelType": "pytorch",
        "ChampionModelDataUrl": EVENT["CandidateModelDataUrl"],
        "ChampionImageUri": EVENT["PyTorchImageUri"],
        "ChampionModelPackageArn": "none",
    }


def test_the_newest_approved_package_is_the_champion(sagemaker) -> None:
    register(sagemaker, "Approved", {"model_type": "pytorch", "training_model_data_url": "s3://a/old.tar.gz"})
    newest = register(sagemaker, "Approved", {"model_type": "xgboost", "training_model_data_url": "s3://a/x.tar.gz"})
    register(sagemaker, "Rejected", {"model_type": "pytorch", "training_model_data_url": "s3://a/rejected.tar.gz"})
    assert handler.handler(EVENT, None) == {
        "HasChampion": "true",
        "ChampionModelType": "xgboost",
        "ChampionModelDataUrl": "s3://a/x.tar.gz",
        "ChampionImageUri": EVENT["XGBoostImageUri"],  # evaluated by the image of its own model type
        "ChampionModelPackageArn": newest,
    }


def test_a_champion_without_its_training_artefact_stops_the_pipeline(sagemaker) -> None:
    arn = register(sagemaker, "Approved", {"model_type": "pytorch"})
    with pytest.raises(ChampionLookupError, match=f"champion {arn}: .*training_model_data_url"):
        handler.handler(EVENT, None)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ModelPackageGroupName": ""}, "ModelPackageGroupName"),
        ({"CandidateModelDataUrl": "/local/model.tar.gz"}, "CandidateModelDataUrl"),
        ({"XGBoostImageUri": None}, "XGBoostImageUri"),
        ({"PyTorchImageUri": 3}, "PyTorchImageUri"),
    ],
)
def test_a_malformed_request_names_the_field(sagemaker, change: dict[str, Any], field: str) -> None:
    with pytest.raises(ChampionLookupError, match=f"field {field}:"):
        handler.handler({**EVENT, **change}, None)


def test_a_request_that_is_not_an_object_is_refused(sagemaker) -> None:
    with pytest.raises(ChampionLookupError, match="event must be an object"):
        handler.handler(["not", "an", "object"], None)
