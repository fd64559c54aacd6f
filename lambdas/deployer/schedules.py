"""Model Monitor schedules on the endpoint (the `model_monitor` engine), kept by the deployer.

The monitoring stack owns the job definitions (content-hashed names, which name the fixed endpoint and read
the current baseline); the deployer creates each schedule once the endpoint is in service, points it at the
job definition of the current stack on every deployment (UpdateMonitoringSchedule), and deletes it before
the endpoint at teardown. With the `drift_job` engine the list is empty and nothing here runs.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import ClientError

from .endpoint import not_found
from .settings import DeployerSettings, MonitoringScheduleSpec


def schedule_config(spec: MonitoringScheduleSpec) -> dict[str, Any]:
    return {
        "ScheduleConfig": {"ScheduleExpression": spec.schedule_expression},
        "MonitoringJobDefinitionName": spec.job_definition_name,
        "MonitoringType": spec.type,
    }


def _exists(sagemaker: Any, name: str) -> bool:
    try:
        sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
    except ClientError as error:
        if not_found(error):
            return False
        raise
    return True


def ensure(sagemaker: Any, settings: DeployerSettings) -> dict[str, Literal["created", "updated"]]:
    """Create each configured schedule, or update it to the configured job definition and expression."""
    done: dict[str, Literal["created", "updated"]] = {}
    tags = [
        {"Key": k, "Value": v}
        for k, v in sorted(
            {
                **settings.tags,
                "telecom-ml:endpoint": settings.endpoint_name,
                "telecom-ml:managed-by": "endpoint-deployer",
            }.items()
        )
    ]
    for spec in settings.monitoring_schedules:
        if _exists(sagemaker, spec.name):
            sagemaker.update_monitoring_schedule(
                MonitoringScheduleName=spec.name, MonitoringScheduleConfig=schedule_config(spec)
            )
            done[spec.name] = "updated"
        else:
            sagemaker.create_monitoring_schedule(
                MonitoringScheduleName=spec.name, MonitoringScheduleConfig=schedule_config(spec), Tags=tags
            )
            done[spec.name] = "created"
    return done


def delete(sagemaker: Any, settings: DeployerSettings) -> list[str]:
    """Delete every configured schedule that exists (teardown; runs before the endpoint is deleted)."""
    deleted = []
    for spec in settings.monitoring_schedules:
        try:
            sagemaker.delete_monitoring_schedule(MonitoringScheduleName=spec.name)
        except ClientError as error:
            if not_found(error):
                continue
            raise
        deleted.append(spec.name)
    return deleted
