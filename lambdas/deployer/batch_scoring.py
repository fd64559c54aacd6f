"""The post-deployment batch scoring hook: start the configured SageMaker pipeline for the deployed package.

The request token is derived from the deployment (state machine execution + package ARN), so a retried
step finds the execution it started instead of starting a second one (StartPipelineExecution is
idempotent per ClientRequestToken); a later deployment of the same package is a new execution.
"""

from __future__ import annotations

import hashlib
from typing import Any

PARAMETER = "ModelPackageArn"


def request_token(execution: str, package_arn: str) -> str:
    """64 hex characters: within the API's 32-128 and its pattern, the same for every retry of one deployment."""
    return hashlib.sha256(f"{execution}\n{package_arn}".encode()).hexdigest()


def start_request(pipeline_name: str, execution: str, package_arn: str) -> dict[str, Any]:
    version = package_arn.rsplit("/", 1)[-1]
    return {
        "PipelineName": pipeline_name,
        "PipelineExecutionDisplayName": f"after-deployment-v{version}"[:82],
        "PipelineExecutionDescription": f"Batch scoring after the deployment of {package_arn}"[:3072],
        "PipelineParameters": [{"Name": PARAMETER, "Value": package_arn}],
        "ClientRequestToken": request_token(execution, package_arn),
    }


def start(sagemaker: Any, pipeline_name: str, execution: str, package_arn: str) -> str:
    response = sagemaker.start_pipeline_execution(**start_request(pipeline_name, execution, package_arn))
    return str(response["PipelineExecutionArn"])
