"""Which of a package's inference specifications serves the configured instance type."""

from __future__ import annotations

import pytest

from lambdas.deployer.errors import PackageNotDeployableError
from lambdas.deployer.naming import endpoint_config_name, model_name
from lambdas.deployer.package import serving_spec

NEURON = {"Containers": [{"Image": "neuron", "ModelDataUrl": "s3://b/n.tar.gz", "Framework": "PYTORCH"}],
          "SupportedRealtimeInferenceInstanceTypes": ["ml.inf2.xlarge"]}
CPU = {"Name": "cpu", "Containers": [{"Image": "cpu", "ModelDataSource": {"S3DataSource": {"S3Uri": "s3://b/c/"}}}],
       "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.xlarge"]}
PACKAGE = {"ModelPackageArn": "arn", "ModelPackageGroupName": "g", "ModelPackageVersion": 2,
           "ModelApprovalStatus": "Approved", "InferenceSpecification": NEURON,
           "AdditionalInferenceSpecifications": [CPU]}


def test_primary_for_inf2_additional_for_cpu() -> None:
    neuron = serving_spec(PACKAGE, "ml.inf2.xlarge")
    assert neuron.containers == ({"Image": "neuron", "ModelDataUrl": "s3://b/n.tar.gz"},)
    cpu = serving_spec(PACKAGE, "ml.m5.xlarge")
    assert cpu.specification == "cpu" and cpu.containers[0]["ModelDataSource"]["S3DataSource"]["S3Uri"] == "s3://b/c/"


def test_a_specification_without_instance_types_accepts_any() -> None:
    package = {**PACKAGE, "InferenceSpecification": {"Containers": NEURON["Containers"]}}
    assert serving_spec(package, "ml.c6i.xlarge").specification == "primary"


@pytest.mark.parametrize(
    ("package", "message"),
    [
        ({**PACKAGE, "InferenceSpecification": None, "AdditionalInferenceSpecifications": None},
         "no InferenceSpecification"),
        (PACKAGE | {"AdditionalInferenceSpecifications": []}, "no inference specification supports ml.m5.xlarge"),
        ({**PACKAGE, "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://x"}]},
          "AdditionalInferenceSpecifications": []}, "no Image"),
        ({**PACKAGE, "InferenceSpecification": {"Containers": [{"Image": "i"}]},
          "AdditionalInferenceSpecifications": []}, "has no model data"),
        ({**PACKAGE, "InferenceSpecification": {"Containers": []}, "AdditionalInferenceSpecifications": []},
         "has no containers"),
    ],
)
def test_undeployable_packages_are_refused(package: dict, message: str) -> None:
    instance = "ml.m5.xlarge" if "supports" in message else "ml.inf2.xlarge"
    with pytest.raises(PackageNotDeployableError, match=message):
        serving_spec(package, instance)


def test_names_change_with_content_and_never_with_tags() -> None:
    request = {"PrimaryContainer": {"Image": "i"}, "Tags": [{"Key": "a", "Value": "1"}]}
    base = model_name("telecom-ml-dev-churn", 3, request)
    assert base == model_name("telecom-ml-dev-churn", 3, {**request, "Tags": []})
    assert base != model_name("telecom-ml-dev-churn", 3, {"PrimaryContainer": {"Image": "j"}})
    assert base != endpoint_config_name("telecom-ml-dev-churn", 3, request)
    assert len(model_name("telecom-ml-sandbox-eu-west-2-churn", 99999, request)) <= 63
