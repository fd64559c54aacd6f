"""The AWS clients, ledger, settings and clock one deployer step works with (injected in tests)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from .ledger import Ledger
from .settings import DeployerSettings

logger = Logger(service="endpoint-deployer")


@dataclass(frozen=True)
class StepContext:
    settings: DeployerSettings
    sagemaker: Any
    autoscaling: Any
    cloudwatch: Any
    ledger: Ledger
    clock: Callable[[], float] = field(default=time.time)
    s3: Any = None  # only the follow-up step (current baseline) uses S3

    def now(self) -> int:
        return int(self.clock())


def decision(name: str, package_arn: str, **details: object) -> None:
    """Every decision is one structured log line that names the model package."""
    logger.info(f"decision: {name}", extra={"decision": name, "model_package_arn": package_arn, **details})
