"""The pipeline as the decision sees it (a protocol), and its SageMaker implementation.

Contract with the pipeline: parameters SnapshotDate (YYYY-MM-DD), FeaturesUri (s3://...) and
TriggerReason (at most 256 characters); a ClientRequestToken derived from the triggering event
(SageMaker returns the same execution for the same token) and a PipelineExecutionDescription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

RUNNING_STATUSES = frozenset({"Executing", "Stopping"})
# The locked execution no longer exists (e.g. the pipeline was deleted and created again): it cannot run.
NOT_FOUND = "NotFound"
FINISHED_STATUSES = frozenset({"Succeeded", "Failed", "Stopped", "CompletedWithFailures", NOT_FOUND})
MAX_DESCRIPTION_CHARS = 3072


@dataclass(frozen=True)
class StartRequest:
    snapshot_date: date
    features_uri: str
    reason: str
    token: str
    description: str

    def parameters(self) -> list[dict[str, str]]:
        return [
            {"Name": "SnapshotDate", "Value": self.snapshot_date.isoformat()},
            {"Name": "FeaturesUri", "Value": self.features_uri},
            {"Name": "TriggerReason", "Value": self.reason},
        ]


class Pipeline(Protocol):
    def start(self, request: StartRequest) -> str:
        """Start one execution; its ARN."""
        ...

    def status(self, execution_arn: str) -> str:
        """PipelineExecutionStatus of one execution (Executing, Succeeded, ...)."""
        ...

    def running_executions(self, *, created_after: datetime) -> list[str]:
        """ARNs of executions created after `created_after` that are still Executing or Stopping."""
        ...


class SageMakerPipeline:
    def __init__(self, client: Any, pipeline_name: str) -> None:
        self._client = client
        self._name = pipeline_name

    def start(self, request: StartRequest) -> str:
        response = self._client.start_pipeline_execution(
            PipelineName=self._name,
            PipelineParameters=request.parameters(),
            PipelineExecutionDescription=request.description[:MAX_DESCRIPTION_CHARS],
            ClientRequestToken=request.token,
        )
        return str(response["PipelineExecutionArn"])

    def status(self, execution_arn: str) -> str:
        try:
            response = self._client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        except self._client.exceptions.ResourceNotFound:
            return NOT_FOUND
        return str(response["PipelineExecutionStatus"])

    def running_executions(self, *, created_after: datetime) -> list[str]:
        pages = self._client.get_paginator("list_pipeline_executions").paginate(
            PipelineName=self._name, CreatedAfter=created_after, SortBy="CreationTime", SortOrder="Descending"
        )
        return [
            summary["PipelineExecutionArn"]
            for page in pages
            for summary in page.get("PipelineExecutionSummaries", [])
            if summary.get("PipelineExecutionStatus") in RUNNING_STATUSES
        ]
