"""Promotion: the package approved in staging becomes prod's, byte for byte; everything else is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.deployer.errors import InvalidEventError, InvalidSettingsError, PackageNotDeployableError
from lambdas.deployer.promotion import promote, target_request
from lambdas.deployer.promotion_settings import PromotionSettings, parse_promotion_settings
from tests.unit.lambdas.deployer.api_model import problems

ACCOUNT = "123456789012"
SOURCE_REGION, TARGET_REGION = "eu-west-1", "eu-central-1"
SOURCE_GROUP, TARGET_GROUP = "telecom-ml-staging-churn", "telecom-ml-prod-churn"
SOURCE_BUCKET, TARGET_BUCKET = "staging-ml-artifacts", "prod-ml-artifacts"
TAG = "pytorch-inference-neuronx:2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"
SOURCE_IMAGE = f"763104351884.dkr.ecr.{SOURCE_REGION}.amazonaws.com/{TAG}"
TARGET_IMAGE = f"763104351884.dkr.ecr.{TARGET_REGION}.amazonaws.com/{TAG}"
KEY = f"arn:aws:kms:{TARGET_REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
FILES = {
    "model": "churn-pipeline/compiled/exec-1/output/model.tar.gz",
    "evaluation": "churn-pipeline/executions/exec-1/Evaluate/evaluation/evaluation.json",
    "statistics": "churn-pipeline/baseline/abc/2026-11-01/baseline/statistics.json",
    "constraints": "churn-pipeline/baseline/abc/2026-11-01/baseline/constraints.json",
}


def settings_document(**changes: Any) -> dict[str, Any]:
    return {
        "account": ACCOUNT,
        "region": TARGET_REGION,
        "target_group": TARGET_GROUP,
        "source_account": ACCOUNT,
        "source_region": SOURCE_REGION,
        "source_group": SOURCE_GROUP,
        "source_prefix": "churn-pipeline/",
        "bucket": TARGET_BUCKET,
        "prefix": "promoted/",
        "kms_key_arn": KEY,
        "serving_images": [TARGET_IMAGE, f"492215442770.dkr.ecr.{TARGET_REGION}.amazonaws.com/sagemaker-xgboost:3.2-0"],
        **changes,
    }


SETTINGS = PromotionSettings.model_validate(settings_document())


@dataclass
class Accounts:
    source: Any
    target: Any
    s3: Any
    source_s3: Any

    def register(
        self, status: str = "Approved", image: str = SOURCE_IMAGE, key: str = FILES["model"], **metadata: str
    ) -> str:
        def file(name: str) -> dict[str, str]:
            return {"ContentType": "application/json", "S3Uri": f"s3://{SOURCE_BUCKET}/{FILES[name]}"}

        return str(
            self.source.create_model_package(
                ModelPackageGroupName=SOURCE_GROUP,
                ModelApprovalStatus=status,
                ModelPackageDescription="Churn model (pytorch) for Inferentia2",
                InferenceSpecification={
                    "Containers": [
                        {
                            "Image": image,
                            "ModelDataUrl": f"s3://{SOURCE_BUCKET}/{key}",
                            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_REGION": SOURCE_REGION},
                        }
                    ],
                    "SupportedContentTypes": ["application/json", "text/csv"],
                    "SupportedResponseMIMETypes": ["application/json", "text/csv"],
                    "SupportedRealtimeInferenceInstanceTypes": ["ml.inf2.xlarge"],
                },
                ModelMetrics={"ModelQuality": {"Statistics": file("evaluation")}},
                DriftCheckBaselines={
                    "ModelDataQuality": {"Statistics": file("statistics"), "Constraints": file("constraints")}
                },
                CustomerMetadataProperties={"model_type": "pytorch", **metadata},
            )["ModelPackageArn"]
        )

    def run(self, arn: str, settings: PromotionSettings = SETTINGS) -> Any:
        return promote(self.source, self.target, self.s3, self.source_s3, settings, {"source_model_package_arn": arn})


def _keep_metadata_on_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.5 replaces a package's CustomerMetadataProperties with None on any UpdateModelPackage that
    does not send them; SageMaker keeps them (the parameter adds or changes keys)."""
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.update_model_package

    def update(self: Any, **kwargs: Any) -> str:
        arn = kwargs["model_package_arn"]
        kept = getattr(
            self.model_packages.get(self.model_package_name_mapping.get(arn, arn)), "customer_metadata_properties", None
        )
        kwargs["customer_metadata_properties"] = {**(kept or {}), **(kwargs["customer_metadata_properties"] or {})}
        return original(self, **kwargs)

    monkeypatch.setattr(SageMakerModelBackend, "update_model_package", update)


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Accounts]:
    _keep_metadata_on_update(monkeypatch)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        made = Accounts(
            boto3.client("sagemaker", region_name=SOURCE_REGION),
            boto3.client("sagemaker", region_name=TARGET_REGION),
            boto3.client("s3", region_name=TARGET_REGION),
            boto3.client("s3", region_name=SOURCE_REGION),
        )
        made.source.create_model_package_group(ModelPackageGroupName=SOURCE_GROUP)
        made.target.create_model_package_group(ModelPackageGroupName=TARGET_GROUP)
        made.source_s3.create_bucket(
            Bucket=SOURCE_BUCKET, CreateBucketConfiguration={"LocationConstraint": SOURCE_REGION}
        )
        made.s3.create_bucket(Bucket=TARGET_BUCKET, CreateBucketConfiguration={"LocationConstraint": TARGET_REGION})
        for name, key in FILES.items():
            made.source_s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=f"{name} bytes".encode())
        yield made


def test_the_approved_staging_package_becomes_prods_byte_for_byte(accounts: Accounts) -> None:
    source = accounts.register()
    done = accounts.run(source)
    assert done.status == "created"
    copy = accounts.target.describe_model_package(ModelPackageName=done.target_arn)
    assert copy["ModelPackageGroupName"] == TARGET_GROUP and copy["ModelApprovalStatus"] == "Approved"
    assert copy["CustomerMetadataProperties"] == {"model_type": "pytorch", "promoted_from": source}
    [container] = copy["InferenceSpecification"]["Containers"]
    assert container["Image"] == TARGET_IMAGE
    assert container["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_REGION": TARGET_REGION}
    base = f"promoted/{ACCOUNT}/{SOURCE_GROUP}/1/"
    assert container["ModelDataUrl"] == f"s3://{TARGET_BUCKET}/{base}{FILES['model']}"
    baseline = copy["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri"]
    assert baseline == f"s3://{TARGET_BUCKET}/{base}{FILES['statistics']}"
    assert len(done.copied) == 4
    for name, key in FILES.items():
        obj = accounts.s3.get_object(Bucket=TARGET_BUCKET, Key=base + key)
        assert obj["Body"].read() == f"{name} bytes".encode()
        assert obj["ServerSideEncryption"] == "aws:kms" and obj["SSEKMSKeyId"] == KEY
        etag = accounts.source_s3.head_object(Bucket=SOURCE_BUCKET, Key=key)["ETag"].strip('"')
        assert obj["Metadata"] == {
            "source": f"s3://{SOURCE_BUCKET}/{key}",
            "source-etag": etag,
            "promoted-from": source,
        }


def test_the_baseline_predictions_the_metadata_names_are_copied_and_renamed(accounts: Accounts) -> None:
    key = "churn-pipeline/executions/e1/EvaluatePyTorch/evaluation/baseline_predictions.csv"
    accounts.source_s3.put_object(Bucket=SOURCE_BUCKET, Key=key, Body=b"probability\n0.2\n")
    source = accounts.register(baseline_predictions_uri=f"s3://{SOURCE_BUCKET}/{key}")
    done = accounts.run(source)
    copy = accounts.target.describe_model_package(ModelPackageName=done.target_arn)
    target_key = f"promoted/{ACCOUNT}/{SOURCE_GROUP}/1/{key}"
    assert copy["CustomerMetadataProperties"]["baseline_predictions_uri"] == f"s3://{TARGET_BUCKET}/{target_key}"
    assert accounts.s3.get_object(Bucket=TARGET_BUCKET, Key=target_key)["Body"].read() == b"probability\n0.2\n"
    assert len(done.copied) == 5


def test_baseline_predictions_outside_the_pipeline_prefix_are_refused(accounts: Accounts) -> None:
    source = accounts.register(baseline_predictions_uri=f"s3://{SOURCE_BUCKET}/scratch/baseline_predictions.csv")
    with pytest.raises(PackageNotDeployableError, match=r"CustomerMetadataProperties\.baseline_predictions_uri"):
        accounts.run(source)


def test_the_create_request_is_valid_for_the_service(accounts: Accounts) -> None:
    from lambdas.deployer.promotion import plan

    source = accounts.register()
    description = accounts.source.describe_model_package(ModelPackageName=source)
    request = target_request(description, source, SETTINGS, plan(description, source, SETTINGS), TARGET_BUCKET)
    assert problems("sagemaker", "CreateModelPackage", request) == []
    assert request["ModelApprovalStatus"] == "PendingManualApproval", "approved only after the copy succeeded"
    assert len(request["ClientToken"]) == 36


def test_promoting_twice_finds_the_first_copy(accounts: Accounts) -> None:
    source = accounts.register()
    first = accounts.run(source)
    again = accounts.run(source)
    assert (again.status, again.target_arn) == ("existing", first.target_arn)
    listed = accounts.target.list_model_packages(ModelPackageGroupName=TARGET_GROUP)["ModelPackageSummaryList"]
    assert len(listed) == 1
    record = accounts.s3.get_object(Bucket=TARGET_BUCKET, Key=f"promoted/{ACCOUNT}/{SOURCE_GROUP}/1/promotion.json")
    assert json.loads(record["Body"].read())["model_package_arn"] == first.target_arn


@pytest.mark.parametrize(
    "arn,message",
    [
        (f"arn:aws:sagemaker:{SOURCE_REGION}:999999999999:model-package/{SOURCE_GROUP}/1", "account '999999999999'"),
        (f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-package/{SOURCE_GROUP}/1", "region 'us-east-1'"),
        (
            f"arn:aws:sagemaker:{SOURCE_REGION}:{ACCOUNT}:model-package/telecom-ml-dev-churn/1",
            "group 'telecom-ml-dev-churn'",
        ),
        (f"arn:aws:sagemaker:{SOURCE_REGION}:{ACCOUNT}:model-package-group/{SOURCE_GROUP}", "not a versioned"),
        ("", "required"),
        (42, "required"),
    ],
)
def test_a_package_from_elsewhere_is_refused_naming_the_field(accounts: Accounts, arn: Any, message: str) -> None:
    with pytest.raises(InvalidEventError, match=message) as error:
        promote(
            accounts.source,
            accounts.target,
            accounts.s3,
            accounts.source_s3,
            SETTINGS,
            {"source_model_package_arn": arn},
        )
    assert error.value.field == "source_model_package_arn"
    assert accounts.target.list_model_packages(ModelPackageGroupName=TARGET_GROUP)["ModelPackageSummaryList"] == []


@pytest.mark.parametrize("request_", [None, [], "arn", {"arn": "x"}])
def test_a_malformed_request_is_refused(accounts: Accounts, request_: Any) -> None:
    with pytest.raises(InvalidEventError):
        promote(accounts.source, accounts.target, accounts.s3, accounts.source_s3, SETTINGS, request_)


@pytest.mark.parametrize("status", ["PendingManualApproval", "Rejected"])
def test_an_unapproved_package_is_never_promoted(accounts: Accounts, status: str) -> None:
    source = accounts.register(status=status)
    with pytest.raises(PackageNotDeployableError, match=f"is {status} in {SOURCE_GROUP}"):
        accounts.run(source)
    assert accounts.s3.list_objects_v2(Bucket=TARGET_BUCKET).get("KeyCount") == 0


def test_an_image_prod_does_not_serve_is_refused_before_copying(accounts: Accounts) -> None:
    source = accounts.register(image=f"763104351884.dkr.ecr.{SOURCE_REGION}.amazonaws.com/pytorch-inference:2.1-cpu")
    with pytest.raises(PackageNotDeployableError, match="not an image this environment serves"):
        accounts.run(source)
    assert accounts.s3.list_objects_v2(Bucket=TARGET_BUCKET).get("KeyCount") == 0


def test_a_file_outside_the_pipeline_prefix_is_refused(accounts: Accounts) -> None:
    accounts.source_s3.put_object(Bucket=SOURCE_BUCKET, Key="scratch/model.tar.gz", Body=b"x")
    source = accounts.register(key="scratch/model.tar.gz")
    with pytest.raises(PackageNotDeployableError, match="outside the source pipeline's prefix"):
        accounts.run(source)


def test_settings_errors_name_the_field() -> None:
    with pytest.raises(InvalidSettingsError) as error:
        parse_promotion_settings(json.dumps(settings_document(source_account="staging")))
    assert error.value.field == "source_account"
    with pytest.raises(InvalidSettingsError, match="serving_images"):
        parse_promotion_settings(json.dumps(settings_document(serving_images=[])))


def test_the_handler_reads_its_settings_and_returns_the_promoted_package(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from lambdas.deployer.handlers import promote as handler_module

    monkeypatch.setenv("AWS_DEFAULT_REGION", TARGET_REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("PROMOTION_SETTINGS", json.dumps(settings_document()))
    source = accounts.register()
    context = SimpleNamespace(
        function_name="promote",
        memory_limit_in_mb=256,
        aws_request_id="r",
        invoked_function_arn=f"arn:aws:lambda:{TARGET_REGION}:{ACCOUNT}:function:promote",
    )
    out = handler_module.handler({"source_model_package_arn": source}, context)  # type: ignore[arg-type]
    assert out["status"] == "created" and out["source_model_package_arn"] == source
    assert out["model_package_arn"].startswith(f"arn:aws:sagemaker:{TARGET_REGION}:{ACCOUNT}:model-package/")
