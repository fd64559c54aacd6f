"""Lambda entry point: thin. Settings and AWS clients once per container, then parse -> decide -> audit.

A malformed event, a start failure or a missing setting raises: the asynchronous invocation fails
and, after the configured retries, the event lands in the dead-letter queue (alarmed).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from .service import TrainingTriggerService, build_service
from .settings import TriggerSettings

logger = Logger(service="start-training")
tracer = Tracer(service="start-training")


@cache
def _service() -> TrainingTriggerService:
    settings = TriggerSettings.from_environ(os.environ)
    return build_service(
        settings, dynamodb=boto3.client("dynamodb"), sagemaker=boto3.client("sagemaker"), log=logger
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str | int]:
    service = _service()
    service.idempotency_config.register_lambda_context(context)
    return service.handle(event, request_id=context.aws_request_id).to_dict()
