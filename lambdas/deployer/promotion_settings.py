"""What the infrastructure tells the promotion function: one JSON document in PROMOTION_SETTINGS."""

from __future__ import annotations

import json
import os
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidSettingsError

SETTINGS_VARIABLE = "PROMOTION_SETTINGS"
_GROUP = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
_REGION = r"^[a-z]{2}(-[a-z]+)+-\d$"


class PromotionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: Annotated[str, Field(pattern=_REGION)]
    target_group: Annotated[str, Field(pattern=_GROUP)]
    source_account: Annotated[str, Field(pattern=r"^\d{12}$")]
    source_region: Annotated[str, Field(pattern=_REGION)]
    source_group: Annotated[str, Field(pattern=_GROUP)]
    source_prefix: Annotated[str, Field(pattern=r"^[a-z0-9._-]+/$")]  # where the source pipeline writes
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9.-]{3,63}$")]
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9._-]+/$")]  # where copies go in this environment
    kms_key_arn: str
    serving_images: tuple[str, ...] = Field(min_length=1)


def parse_promotion_settings(raw: str) -> PromotionSettings:
    try:
        return PromotionSettings.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidSettingsError("(document)", f"not JSON ({exc.msg})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidSettingsError(".".join(str(p) for p in error["loc"]) or "(document)", error["msg"]) from None


def load_promotion_settings() -> PromotionSettings:
    raw = os.environ.get(SETTINGS_VARIABLE)
    if raw is None:
        raise InvalidSettingsError("(document)", f"environment variable {SETTINGS_VARIABLE} is not set")
    return parse_promotion_settings(raw)
