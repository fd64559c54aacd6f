"""Lambda handler: the first state. Input {"event": <EventBridge event>, "execution": <execution id>}."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws, steps
from ..context import logger
from ..errors import InvalidEventError
from ._wrap import tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution = event.get("execution") if isinstance(event, dict) else None
    if not isinstance(execution, str) or not execution:
        raise InvalidEventError("execution", "the state machine passes its execution id")
    state = steps.receive(event.get("event"), execution, aws.step_context())
    logger.append_keys(model_package_arn=state.package_arn)
    return state.output()
