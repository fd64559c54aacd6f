"""boto3 clients and the step context of a running function, built once per cold start."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from .context import StepContext
from .ledger import Ledger
from .settings import DeployerSettings, load_settings

RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


def client(service: str) -> Any:
    return boto3.client(service, config=RETRIES)


@cache
def settings() -> DeployerSettings:
    return load_settings()


@cache
def step_context() -> StepContext:
    config = settings()
    table = boto3.resource("dynamodb", config=RETRIES).Table(config.ledger_table)
    return StepContext(
        settings=config,
        sagemaker=client("sagemaker"),
        autoscaling=client("application-autoscaling"),
        cloudwatch=client("cloudwatch"),
        ledger=Ledger(table),
        s3=client("s3"),
    )
