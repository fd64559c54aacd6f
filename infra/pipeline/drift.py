"""The drift pipeline: one Processing step that runs the project's drift job over one window of captured data.

    DetectDrift: python -m training_jobs.drift --baseline-dir .. --capture-dir .. --output-dir ..
                 --window-start <WindowEnd - WindowHours> --window-end <WindowEnd> --schema ..
                 [--labels-dir ..] --endpoint-name <endpoint> --monitoring-schedule-name <schedule>
                 --publish-metrics

It reads the deployed model's baselines from the stable current-baseline prefix (the deployer refreshes it on
every deployment) and the endpoint's data capture, writes constraint_violations.json, statistics.json and
drift_report.json under the monitoring reports prefix, and publishes Model Monitor's CloudWatch metric names
(docs/monitoring.md). The EventBridge Scheduler schedule starts it with WindowEnd = the scheduled time.

Same code bundle, image, job role, KMS key and network placement as the churn pipeline (infra/pipeline/churn.py),
one difference: the container is not network-isolated, because it calls CloudWatch PutMetricData itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from infra.config import EnvironmentConfig, ProcessingStepConfig
from infra.pipeline.churn import (
    ARTIFACT_BUCKET,
    CODE_BUCKET,
    CODE_DIR,
    JOB_ROLE,
    ML_KEY,
    PROCESSING,
    VPC_VARIABLES,
    ChurnPipelineInputs,
    var,
)
from infra.pipeline.expressions import EXECUTION_ID, Join, Parameter
from infra.pipeline.render import Pipeline
from infra.pipeline.steps import JobSecurity, ProcessingInput, ProcessingOutput, ProcessingStep

LABELS_LOCATION = "LabelsLocation"  # Fn::Sub variable: s3:// prefix of the lake's churn_labels table
VARIABLES = (ARTIFACT_BUCKET, CODE_BUCKET, JOB_ROLE, ML_KEY)
MODULE = "training_jobs.drift"
VARIANT_NAME = "primary"  # the deployer's one production variant (the data capture layout)
CAPTURE_PREFIX = "data-capture"  # ServingStack.capture_prefix (the data capture layout)
MONITORING_PREFIX = "monitoring"  # the current-baseline contract: monitoring/<endpoint>/{current-baseline,reports}/

# Pipeline expressions have no date arithmetic and the schedule only knows its own scheduled time, so the
# container computes the window's start: WindowEnd minus WindowHours, in UTC, with GNU date (the job images are
# Ubuntu). Then it runs the drift job as the churn steps run theirs (unpack the code bundle, python3 -m).
# $0 = module, $1 = WindowEnd, $2 = WindowHours, the rest = the job's other arguments. One entrypoint item
# takes at most 256 characters (CreateProcessingJob), hence the terse shell.
DRIFT_BOOTSTRAP = (
    f"set -e;mkdir -p {CODE_DIR};"
    f'for f in {PROCESSING}/input/code/*;do tar -xzf "$f" -C {CODE_DIR};done;cd {CODE_DIR};'
    'm="$0";e="$1";s=$(date -ud "$e $2 hour ago" +%FT%TZ);shift 2;'
    'exec python3 -m "$m" --window-start "$s" --window-end "$e" "$@"'
)

# A manual start without parameters reads a window in 1970: a clean "no captured data in the window" no-op.
WINDOW_END = Parameter("WindowEnd", "1970-01-01T01:00:00Z", "End of the window (ISO 8601, UTC): the scheduled time")


def pipeline_name(env_name: str) -> str:
    """Named: operators start backfills with it (docs/monitoring.md)."""
    return f"telecom-ml-{env_name}-churn-drift"


def data_quality_schedule_name(env_name: str) -> str:
    """The MonitoringSchedule dimension of the data metrics (Model Monitor's), whichever engine publishes them."""
    return f"telecom-ml-{env_name}-churn-data-quality"


def model_quality_schedule_name(env_name: str) -> str:
    return f"telecom-ml-{env_name}-churn-model-quality"


def endpoint_name(env_name: str) -> str:
    """= stacks.serving_stack.endpoint_name (a test keeps them equal; runtime names never import stacks)."""
    return f"telecom-ml-{env_name}-churn"


def capture_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{CAPTURE_PREFIX}/{endpoint_name(env_name)}/{VARIANT_NAME}/"


def baseline_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{MONITORING_PREFIX}/{endpoint_name(env_name)}/current-baseline/"


def reports_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{MONITORING_PREFIX}/{endpoint_name(env_name)}/reports/"


@dataclass(frozen=True)
class DriftPipelineInputs:
    config: EnvironmentConfig
    schema_path: str  # repository-relative dataset schema, shipped in the code bundle
    code_key: str  # S3 object key of the code bundle asset in ${CodeBucket} (the churn pipeline's)

    @property
    def env_name(self) -> str:
        return self.config.name

    @property
    def model_quality(self) -> bool:
        return self.config.monitoring.model_quality

    def security(self) -> JobSecurity:
        # The job publishes its CloudWatch metrics itself: in 'vpc' mode through the monitoring interface
        # endpoint (config requires it), in 'isolated' mode from SageMaker's own network, as Model Monitor does.
        shared = ChurnPipelineInputs(self.config, self.schema_path, self.code_key).security()
        return replace(shared, network_isolation=False)


def window_hours(config: EnvironmentConfig) -> Parameter:
    hours = str(config.monitoring.window_hours)
    return Parameter("WindowHours", hours, "Hours of captured data before WindowEnd that the run reads")


def build(ctx: DriftPipelineInputs) -> Pipeline:
    """The drift pipeline of one environment."""
    config = ctx.config
    churn = ChurnPipelineInputs(config, ctx.schema_path, ctx.code_key)
    hours = window_hours(config)
    env = ctx.env_name
    inputs = [
        ProcessingInput("code", churn.code_uri, f"{PROCESSING}/input/code"),
        ProcessingInput("baseline", baseline_uri(env), f"{PROCESSING}/input/baseline"),
        ProcessingInput("capture", capture_uri(env), f"{PROCESSING}/input/capture"),
    ]
    arguments: list[object] = [
        WINDOW_END,
        hours,
        "--baseline-dir",
        f"{PROCESSING}/input/baseline",
        "--capture-dir",
        f"{PROCESSING}/input/capture",
        "--output-dir",
        f"{PROCESSING}/output",
        "--schema",
        churn.schema_in_container,
    ]
    if ctx.model_quality:
        inputs.append(ProcessingInput("labels", var(LABELS_LOCATION), f"{PROCESSING}/input/labels"))
        arguments += ["--labels-dir", f"{PROCESSING}/input/labels"]
    arguments += [
        "--endpoint-name",
        endpoint_name(env),
        "--monitoring-schedule-name",
        data_quality_schedule_name(env),
        "--publish-metrics",
    ]
    monitoring = config.monitoring
    step = ProcessingStep(
        name="DetectDrift",
        image=churn.image("xgboost"),
        entrypoint=("/bin/sh", "-c", DRIFT_BOOTSTRAP, MODULE),
        container_arguments=tuple(arguments),
        inputs=tuple(inputs),
        outputs=(
            ProcessingOutput(
                "report",
                Join("/", (reports_uri(env).rstrip("/"), data_quality_schedule_name(env), WINDOW_END, EXECUTION_ID)),
                f"{PROCESSING}/output",
            ),
        ),
        compute=churn.processing_compute(
            ProcessingStepConfig(
                instance_type=monitoring.instance_type,
                volume_gb=monitoring.volume_gb,
                max_runtime_minutes=monitoring.max_runtime_minutes,
            )
        ),
        security=ctx.security(),
    )
    variables = VARIABLES + ((LABELS_LOCATION,) if ctx.model_quality else ())
    return Pipeline(
        name=pipeline_name(env),
        parameters=(WINDOW_END, hours),
        steps=(step,),
        variables=variables + (VPC_VARIABLES if churn.vpc else ()),
    )
