"""Lambda handler: the custom resource whose deletion (stack delete, `make destroy`) tears down the endpoint.

Create and Update do nothing; Delete stops running deployer executions and removes the endpoint, every
endpoint configuration and model the deployer recorded, and the autoscaling registration.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..cfn_response import send
from ..context import logger
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
    except Exception as error:  # report every failure to CloudFormation instead of hanging the stack
        logger.exception("teardown failed")
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
    send(event, status, reason, PHYSICAL_ID)
