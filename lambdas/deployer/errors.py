"""Typed errors. Step Functions sees the class name as the error name, so each maps to a path there."""

from __future__ import annotations


class DeployerError(Exception):
    """Base class: something the deployer refuses to do, with a message an operator can act on."""


class InvalidEventError(DeployerError):
    """The incoming event (or execution input) is malformed: `field` names the offending path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class InvalidSettingsError(DeployerError):
    """The function's DEPLOYER_SETTINGS environment variable is malformed (an infrastructure bug)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"DEPLOYER_SETTINGS.{field}: {problem}")
        self.field = field


class PackageNotDeployableError(DeployerError):
    """The model package cannot be served as configured (no container, no artefact, wrong group ...)."""

    def __init__(self, package_arn: str, problem: str) -> None:
        super().__init__(f"{package_arn}: {problem}")
        self.package_arn = package_arn


class EndpointStateError(DeployerError):
    """The endpoint is in a state the deployer must not act on (e.g. UpdateRollbackFailed)."""


class LedgerContentionError(DeployerError):
    """The lock/queue item kept changing under us; Step Functions retries the task."""
