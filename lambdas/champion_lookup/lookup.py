"""Find the champion of a model package group: the newest package with status Approved.

The pipeline re-scores the champion on the new test split, so it needs the champion's *training*
artefact (the compiled Neuron package cannot run on a CPU) and its model type, both of which the
Register step writes into the package's CustomerMetadataProperties.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODEL_TYPES = ("xgboost", "pytorch")


class ChampionLookupError(Exception):
    """The request or the registry holds something the pipeline cannot use; the message says what."""


@dataclass(frozen=True)
class Request:
    group: str
    candidate_model_data_url: str
    images: dict[str, str]  # model type -> image that evaluates it

    @classmethod
    def parse(cls, event: Any) -> Request:
        if not isinstance(event, dict):
            raise ChampionLookupError(f"event must be an object, got {type(event).__name__}")
        fields = {
            "ModelPackageGroupName": "group",
            "CandidateModelDataUrl": "candidate_model_data_url",
            "XGBoostImageUri": "xgboost",
            "PyTorchImageUri": "pytorch",
        }
        values = {}
        for name in fields:
            value = event.get(name)
            if not isinstance(value, str) or not value:
                raise ChampionLookupError(f"field {name}: expected a non-empty string, got {value!r}")
            values[name] = value
        candidate = values["CandidateModelDataUrl"]
        if not candidate.startswith("s3://"):
            raise ChampionLookupError(f"field CandidateModelDataUrl: expected an s3:// URI, got {candidate!r}")
        return cls(
            group=values["ModelPackageGroupName"],
            candidate_model_data_url=candidate,
            images={"xgboost": values["XGBoostImageUri"], "pytorch": values["PyTorchImageUri"]},
        )


@dataclass(frozen=True)
class Champion:
    package_arn: str
    model_type: str
    training_model_data_url: str


def find_champion(sagemaker: Any, group: str) -> Champion | None:
    """The newest Approved package of `group`, or None when there is none yet."""
    listed = sagemaker.list_model_packages(
        ModelPackageGroupName=group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = listed.get("ModelPackageSummaryList", [])
    if not summaries:
        return None
    arn = summaries[0]["ModelPackageArn"]
    metadata = sagemaker.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties", {})
    model_type = metadata.get("model_type")
    url = metadata.get("training_model_data_url", "")
    if model_type not in MODEL_TYPES or not url.startswith("s3://"):
        raise ChampionLookupError(
            f"champion {arn}: CustomerMetadataProperties must name model_type (one of {list(MODEL_TYPES)}) and "
            f"training_model_data_url (s3://), got {model_type!r} and {url!r}; the pipeline cannot re-score it"
        )
    return Champion(arn, model_type, url)


def outputs(request: Request, champion: Champion | None) -> dict[str, str]:
    """The step's output parameters. Without a champion the candidate PyTorch model stands in (it is
    scored, and SelectModel ignores it because HasChampion is "false")."""
    if champion is None:
        return {
            "HasChampion": "false",
            "ChampionModelType": "pytorch",
            "ChampionModelDataUrl": request.candidate_model_data_url,
            "ChampionImageUri": request.images["pytorch"],
            "ChampionModelPackageArn": "none",
        }
    return {
        "HasChampion": "true",
        "ChampionModelType": champion.model_type,
        "ChampionModelDataUrl": champion.training_model_data_url,
        "ChampionImageUri": request.images[champion.model_type],
        "ChampionModelPackageArn": champion.package_arn,
    }
