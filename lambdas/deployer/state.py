"""The document the state machine passes from one deployer step to the next."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidEventError

Outcome = Literal["deploy", "duplicate", "queued", "not_approved", "withdrawn", "deployed", "failed"]
Status = Literal["prepared", "started", "busy", "in_progress", "in_service", "rolled_back", "failed", "timed_out"]


class DeploymentState(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    package_arn: str
    version: int = Field(ge=1)
    execution: str
    outcome: Outcome
    model_name: str | None = None
    config_name: str | None = None
    previous_config: str | None = None
    instance_type_changed: bool = False
    status: Status | None = None
    polls: int = 0
    reason: str = ""
    next_package_arn: str | None = None
    error: dict[str, Any] | None = None
    notices: tuple[str, ...] = ()  # a deployment that succeeded with something for ops to know (ops topic)
    batch_scoring_execution: str | None = None

    def but(self, **changes: Any) -> DeploymentState:
        return self.model_copy(update=changes)

    def output(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def parse_state(document: object) -> DeploymentState:
    try:
        return DeploymentState.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "(state)"
        raise InvalidEventError(f"state.{field}", error["msg"]) from None
