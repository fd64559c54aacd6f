"""Lambda entry point of the drift pipeline's WindowGuard step: parse, look, answer (logic in window.py).

A bad request raises DriftWindowError naming the field: the Lambda step fails and the pipeline stops there
(the ops topic hears of it). "No baseline yet" and "no captured data in the window" are answers, not errors.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.drift_window import window

logger = Logger(service="drift-window")


@cache
def _s3() -> Any:
    return boto3.client("s3")


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, str]:
    request = window.Request.parse(event)
    result = window.guard(_s3(), request)
    logger.info("drift window", extra={"bucket": request.bucket, "capture_prefix": request.capture_prefix, **result})
    return result
