"""The approval event: EventBridge's "SageMaker Model Package State Change", validated field by field.

Anything malformed raises InvalidEventError naming the field, before anything is written or
deployed. A well-formed event whose package is not Approved is not an error: it is parsed and
then declined by `ledger`/`receive` (a rejected or pending package never deploys).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from .errors import InvalidEventError
from .settings import DeployerSettings

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
_GROUP = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-z0-9-]+)/(?P<version>[1-9][0-9]*)$"
)


class ModelPackageStateDetail(BaseModel):
    """The fields the deployer relies on; the detail carries the rest of the package description too."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ModelPackageArn: Annotated[StrictStr, Field(max_length=2048)]
    ModelPackageGroupName: Annotated[StrictStr, Field(pattern=_GROUP)]
    ModelPackageVersion: Annotated[StrictInt, Field(ge=1)]
    ModelApprovalStatus: Literal[APPROVAL_STATUSES]  # type: ignore[valid-type]


class ModelPackageStateChange(EventBridgeModel):
    model_config = ConfigDict(frozen=True)

    source: Literal[SOURCE]  # type: ignore[valid-type]
    detail_type: Literal[DETAIL_TYPE] = Field(..., alias="detail-type")  # type: ignore[valid-type]
    account: Annotated[StrictStr, Field(pattern=r"^\d{12}$")]
    region: Annotated[StrictStr, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    detail: ModelPackageStateDetail


def parse_approval_event(event: object, settings: DeployerSettings) -> ModelPackageStateChange:
    """The event, or InvalidEventError naming the first field that is wrong."""
    if not isinstance(event, dict):
        raise InvalidEventError("(event)", f"expected a JSON object, got {type(event).__name__}")
    try:
        parsed: ModelPackageStateChange = parse(event=event, model=ModelPackageStateChange)
    except ValidationError as exc:
        raise _first_problem(exc) from None
    except Exception as exc:  # Powertools wraps some failures (e.g. unparseable JSON strings)
        cause = exc.__cause__
        if isinstance(cause, ValidationError):
            raise _first_problem(cause) from None
        raise InvalidEventError("(event)", str(exc)) from None
    _check_consistency(parsed, settings)
    return parsed


def _first_problem(exc: ValidationError) -> InvalidEventError:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "(event)"
    return InvalidEventError(field, error["msg"])


def _check_consistency(event: ModelPackageStateChange, settings: DeployerSettings) -> None:
    detail = event.detail
    if event.account != settings.account:
        raise InvalidEventError("account", f"'{event.account}' is not this environment's account")
    if event.region != settings.region:
        raise InvalidEventError("region", f"'{event.region}' is not this environment's region")
    if detail.ModelPackageGroupName != settings.model_package_group_name:
        raise InvalidEventError(
            "detail.ModelPackageGroupName",
            f"'{detail.ModelPackageGroupName}' is not this environment's group '{settings.model_package_group_name}'",
        )
    match = _PACKAGE_ARN.fullmatch(detail.ModelPackageArn)
    if match is None:
        raise InvalidEventError("detail.ModelPackageArn", "is not a versioned model package ARN")
    expected = {
        "account": event.account,
        "region": event.region,
        "group": detail.ModelPackageGroupName.lower(),
        "version": str(detail.ModelPackageVersion),
    }
    for part, value in expected.items():
        if match.group(part) != value:
            raise InvalidEventError(
                "detail.ModelPackageArn", f"names {part} '{match.group(part)}', the event says '{value}'"
            )
    if event.resources and detail.ModelPackageArn not in event.resources:
        raise InvalidEventError("resources", "does not name the model package of the detail")
