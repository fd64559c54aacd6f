"""Lambda handler: promote the package approved in the source environment. Input
{"source_model_package_arn": "<ARN>"}; output the promoted package's ARN and the files copied."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from ..aws import RETRIES, client
from ..context import logger
from ..promotion import promote
from ..promotion_settings import load_promotion_settings
from ._wrap import tracer


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_promotion_settings()
    source_sagemaker = boto3.client("sagemaker", region_name=settings.source_region, config=RETRIES)
    source_s3 = boto3.client("s3", region_name=settings.source_region, config=RETRIES)
    done = promote(source_sagemaker, client("sagemaker"), client("s3"), source_s3, settings, event)
    logger.info(
        "decision: promoted",
        extra={
            "decision": "promoted",
            "model_package_arn": done.target_arn,
            "source_model_package_arn": done.source_arn,
            "status": done.status,
        },
    )
    return done.output()
