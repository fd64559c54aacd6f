"""Stack deletion removes what the deployer created, so nothing bills after `make destroy`.

Order: stop running deployer executions (none may create anything after this), deregister scaling
(its policies and their alarms go with it) and the wake alarm, delete the Model Monitor schedules on the
endpoint, delete the endpoint, then every endpoint
configuration and model recorded in the ledger (SageMaker allows deleting them while the endpoint is
being deleted). Everything missing already is skipped: teardown may run twice.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from . import scaling, schedules
from .endpoint import describe_endpoint, not_found
from .ledger import Ledger
from .settings import DeployerSettings


def stop_executions(stepfunctions: Any, state_machine_arn: str) -> list[str]:
    stopped = []
    pages = stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=state_machine_arn, statusFilter="RUNNING"
    )
    for page in pages:
        for execution in page.get("executions", []):
            stepfunctions.stop_execution(executionArn=execution["executionArn"], cause="stack deleted (teardown)")
            stopped.append(execution["executionArn"])
    return stopped


def teardown(
    sagemaker: Any, autoscaling: Any, cloudwatch: Any, ledger: Ledger, settings: DeployerSettings
) -> dict[str, list[str]]:
    removed: dict[str, list[str]] = {"scaling": [], "monitoring_schedules": [], "endpoint": [],
                                     "endpoint_configs": [], "models": []}
    if scaling.deregister(autoscaling, cloudwatch, settings):
        removed["scaling"].append(settings.scaling_resource_id)
    removed["monitoring_schedules"] = schedules.delete(sagemaker, settings)
    if describe_endpoint(sagemaker, settings.endpoint_name) is not None:
        sagemaker.delete_endpoint(EndpointName=settings.endpoint_name)
        removed["endpoint"].append(settings.endpoint_name)
    recorded = ledger.resources()
    for name in sorted(recorded["endpoint_configs"]):
        if _delete(sagemaker.delete_endpoint_config, EndpointConfigName=name):
            removed["endpoint_configs"].append(name)
        ledger.forget_resource("endpoint_configs", name)
    for name in sorted(recorded["models"]):
        if _delete(sagemaker.delete_model, ModelName=name):
            removed["models"].append(name)
        ledger.forget_resource("models", name)
    return removed


def _delete(call: Any, **kwargs: str) -> bool:
    try:
        call(**kwargs)
    except ClientError as error:
        if not_found(error):
            return False
        raise
    return True
