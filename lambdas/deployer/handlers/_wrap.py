"""What every step handler shares: Powertools logging and tracing around parse -> step -> output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from .. import aws
from ..context import StepContext, logger
from ..state import DeploymentState, parse_state

tracer = Tracer(service="endpoint-deployer")

Step = Callable[[DeploymentState, StepContext], DeploymentState]


def state_handler(step: Step) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """A Lambda handler running `step` on the state document Step Functions passes in."""

    @logger.inject_lambda_context(log_event=False)
    @tracer.capture_lambda_handler(capture_response=False)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        state = parse_state(event)
        logger.append_keys(model_package_arn=state.package_arn, execution=state.execution)
        return step(state, aws.step_context()).output()

    return handler
