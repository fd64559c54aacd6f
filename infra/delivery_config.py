"""Settings of the CDK Pipelines delivery pipeline (config/delivery/pipeline.yaml), typed and validated.

Read only when the app is synthesized with the delivery flag (`cdk synth -c delivery=pipeline`). The file
sits in its own folder so that infra.config.load_all (config/*.yaml) never takes it for an environment.
A bad file raises ConfigError with one line naming the file, the setting and what is allowed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra.config import SUPPORTED_REGIONS, ConfigError, EnvironmentConfig, _first_error
from infra.yaml_file import read_yaml

# App context key and value that add the pipeline to the app.
DELIVERY_CONTEXT = "delivery"
DELIVERY_PIPELINE = "pipeline"
# Under the environments' config folder (config/ unless -c config_dir=... says otherwise).
DELIVERY_FILE = Path("delivery") / "pipeline.yaml"

# CodeConnections (the service's current name) and CodeStar Connections ARNs both name a GitHub connection.
_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codeconnections|codestar-connections):(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"connection/[0-9a-f-]{36}$"
)
_GITHUB_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitHubSource(_Strict):
    """The repository and branch the pipeline builds, read through the CodeConnections connection."""

    connection_arn: str
    owner: str = Field(pattern=_GITHUB_NAME)
    repository: str = Field(pattern=_GITHUB_NAME)
    branch: str = Field(default="main", pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")

    @field_validator("connection_arn")
    @classmethod
    def _connection(cls, value: str) -> str:
        if not _CONNECTION_ARN.match(value):
            raise ValueError(
                f"'{value}' is not a CodeConnections connection ARN "
                "(arn:aws:codeconnections:<region>:<account>:connection/<id>)"
            )
        return value

    @property
    def repository_id(self) -> str:
        return f"{self.owner}/{self.repository}"


class DeliveryStage(_Strict):
    """One environment the pipeline deploys, in the order listed."""

    environment: str = Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")
    manual_approval: bool = False


class DeliveryConfig(_Strict):
    """The tooling account that runs the pipeline, its source, its build and the environments it deploys."""

    account: str = Field(pattern=r"^\d{12}$")
    region: Literal[SUPPORTED_REGIONS]  # type: ignore[valid-type]
    source: GitHubSource
    stages: tuple[DeliveryStage, ...] = Field(min_length=1)
    # CodeBuild compute for the synth step (make setup, make test, cdk synth): 4 vCPUs / 7 GB by default.
    synth_compute: Literal["SMALL", "MEDIUM", "LARGE"] = "MEDIUM"
    synth_timeout_minutes: Annotated[int, Field(ge=10, le=480)] = 60
    log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365, 731, 1827, 3653] = 365
    # Key administrators of the pipeline's artefact keys (they manage, never use, the keys).
    key_admin_role_names: tuple[Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")], ...] = ()

    @field_validator("stages")
    @classmethod
    def _unique(cls, value: tuple[DeliveryStage, ...]) -> tuple[DeliveryStage, ...]:
        names = [s.environment for s in value]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"environment {repeated[0]!r} is listed twice")
        return value

    @model_validator(mode="after")
    def _connection_in_tooling_account(self) -> DeliveryConfig:
        match = _CONNECTION_ARN.match(self.source.connection_arn)
        assert match is not None  # checked by GitHubSource
        if (match["account"], match["region"]) != (self.account, self.region):
            raise ValueError(
                f"source.connection_arn is in {match['account']}/{match['region']}, but the pipeline runs in "
                f"{self.account}/{self.region}: create the connection in the tooling account and region"
            )
        return self

    def environments(self, configs: list[EnvironmentConfig], where: Path | str) -> list[EnvironmentConfig]:
        """The environment configs in pipeline order; every stage must name a loaded environment."""
        by_name = {c.name: c for c in configs}
        missing = [s.environment for s in self.stages if s.environment not in by_name]
        if missing:
            known = ", ".join(sorted(by_name)) or "none"
            raise ConfigError(
                f"{where}: stages: no environment {missing[0]!r} among those loaded ({known}); the pipeline "
                "needs config/<name>.yaml for each stage (and no -c env=... filter)"
            )
        return [by_name[s.environment] for s in self.stages]


def load_delivery(path: str | Path) -> DeliveryConfig:
    """The pipeline settings in `path`; ConfigError with one line on any problem."""
    path = Path(path)
    raw = read_yaml(path, ConfigError, "file not found (the delivery pipeline's settings, docs/delivery.md)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        return DeliveryConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
