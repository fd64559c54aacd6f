"""Lambda handler: the custom resource whose deletion (stack delete, `make destroy`) tears down the endpoint.

Create does nothing. Update (a stack update that changed the settings, e.g. the monitoring stack's job
definitions, whose names are content hashes) moves the Model Monitor schedules of a live endpoint to the new
job definitions before CloudFormation deletes the old ones. Delete stops running deployer executions and
removes the schedules, the endpoint, every endpoint configuration and model the deployer recorded, and the
autoscaling registration.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..cfn_response import send
from ..context import logger
from ..endpoint import describe_endpoint
from ..schedules import ensure
from ..teardown import stop_executions, teardown
from ._wrap import tracer

PHYSICAL_ID = "endpoint-deployer-teardown"


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> None:
    status, reason = "SUCCESS", "nothing to do"
    try:
        if event.get("RequestType") == "Delete":
            ctx = aws.step_context()
            stopped = stop_executions(aws.client("stepfunctions"), os.environ["STATE_MACHINE_ARN"])
            removed = teardown(ctx.sagemaker, ctx.autoscaling, ctx.cloudwatch, ctx.ledger, ctx.settings)
            logger.info("teardown", extra={"stopped_executions": stopped, "removed": removed})
            reason = f"removed {sum(len(v) for v in removed.values())} resources"
        elif event.get("RequestType") == "Update":
            reason = _follow_stack_update()
    except Exception as error:  # report every failure to CloudFormation instead of hanging the stack
        logger.exception("teardown failed")
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
    send(event, status, reason, PHYSICAL_ID)


def _follow_stack_update() -> str:
    ctx = aws.step_context()
    settings = ctx.settings
    if not settings.monitoring_schedules or describe_endpoint(ctx.sagemaker, settings.endpoint_name) is None:
        return "no monitoring schedules to move"
    done = ensure(ctx.sagemaker, settings)
    logger.info("monitoring schedules follow the stack update", extra={"schedules": done})
    return f"monitoring schedules: {done}"
