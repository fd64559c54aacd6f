"""Model, endpoint configuration and endpoint: what to create, whether to create or update, and how it went."""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import ClientError

from . import api_requests
from .errors import EndpointStateError
from .ledger import Ledger
from .package import ServingSpec
from .settings import DeployerSettings

WAIT_STATES = ("Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting")
STUCK_STATES = ("UpdateRollbackFailed", "OutOfService")


def not_found(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in ("ValidationException", "ResourceNotFound") and (
        "Could not find" in message or "does not exist" in message or "not found" in message.lower()
    )


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    try:
        response: dict[str, Any] = sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as error:
        if not_found(error):
            return None
        raise
    return response


def ensure_model(sagemaker: Any, ledger: Ledger, settings: DeployerSettings, spec: ServingSpec) -> str:
    """Create the package's model under its content-derived name, unless a retried step already did."""
    request = api_requests.create_model(settings, spec)
    name = str(request["ModelName"])
    ledger.record_resource("models", name)  # before creation: teardown must know it even if we stop here
    try:
        sagemaker.describe_model(ModelName=name)
    except ClientError as error:
        if not not_found(error):
            raise
        sagemaker.create_model(**request)
    return name


def ensure_endpoint_config(
    sagemaker: Any, ledger: Ledger, settings: DeployerSettings, spec: ServingSpec, model_name: str
) -> str:
    request = api_requests.create_endpoint_config(settings, spec, model_name)
    name = str(request["EndpointConfigName"])
    ledger.record_resource("endpoint_configs", name)
    try:
        sagemaker.describe_endpoint_config(EndpointConfigName=name)
    except ClientError as error:
        if not not_found(error):
            raise
        sagemaker.create_endpoint_config(**request)
    return name


def current_instance_type(sagemaker: Any, endpoint: dict[str, Any], variant_name: str) -> str | None:
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    for variant in config.get("ProductionVariants", []):
        if variant.get("VariantName") == variant_name:
            return str(variant.get("InstanceType")) if variant.get("InstanceType") else None
    return None


def start(
    sagemaker: Any, settings: DeployerSettings, spec: ServingSpec, config_name: str
) -> Literal["started", "busy", "in_service"]:
    """Create the endpoint, or update it to `config_name`, as soon as its state allows."""
    endpoint = describe_endpoint(sagemaker, settings.endpoint_name)
    if endpoint is None:
        sagemaker.create_endpoint(**api_requests.create_endpoint(settings, spec, config_name))
        return "started"
    status = endpoint["EndpointStatus"]
    if status in STUCK_STATES:
        raise EndpointStateError(f"{settings.endpoint_name} is {status}: an operator must repair it (docs/serving.md)")
    if status == "Failed":
        # A failed first creation cannot be updated: delete it, then create it again on a later poll.
        sagemaker.delete_endpoint(EndpointName=settings.endpoint_name)
        return "busy"
    if status in WAIT_STATES:
        return "busy"
    if endpoint["EndpointConfigName"] == config_name:
        return "in_service"
    sagemaker.update_endpoint(**api_requests.update_endpoint(settings, config_name))
    return "started"


def check(sagemaker: Any, settings: DeployerSettings, config_name: str) -> tuple[str, str]:
    """(status, reason): in_progress, in_service, rolled_back or failed."""
    endpoint = describe_endpoint(sagemaker, settings.endpoint_name)
    if endpoint is None:
        return "failed", "the endpoint no longer exists"
    status = endpoint["EndpointStatus"]
    reason = str(endpoint.get("FailureReason") or "")
    if status in WAIT_STATES:
        return "in_progress", ""
    if status == "InService" and endpoint["EndpointConfigName"] == config_name:
        return "in_service", ""
    if status == "InService":
        return "rolled_back", reason or f"the endpoint serves {endpoint['EndpointConfigName']} again"
    return "failed", reason or f"the endpoint is {status}"
