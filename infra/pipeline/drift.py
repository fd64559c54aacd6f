"""The drift pipeline: the project's drift job over one window of captured data, when there is any.

    WindowGuard (Lambda, lambdas/drift_window): is there a current baseline, which capture files lie in the
                 window's hour folders (their manifest), are there labels
    WindowHasData: has_baseline and has_captures, else the execution ends successfully (the guard's `reason`
                 output says why: no deployment yet, or no captured data in the window)
      [HasLabels: has_labels (only with monitoring.model_quality)]
      DetectDrift: python -m training_jobs.drift --baseline-dir .. --capture-dir .. --output-dir ..
                 --window-start <WindowEnd - WindowHours> --window-end <WindowEnd> --schema ..
                 --baseline-predictions <the baseline dir: its baseline_predictions.csv, if the package had one>
                 [--labels-dir ..] --endpoint-name <endpoint> --monitoring-schedule-name <schedule>
                 --publish-metrics
      (DetectDriftWithoutLabels: the same without --labels-dir, with model quality on and no labels yet)

SageMaker refuses to start a Processing job whose S3 input matches no object, hence the guard. The job reads
the deployed model's baselines from the stable current-baseline prefix (the deployer refreshes it on every
deployment) and the window's capture files through the guard's manifest (S3DataType ManifestFile), not the
endpoint's whole capture prefix; it writes constraint_violations.json, statistics.json and
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
from infra.pipeline.steps import (
    Condition,
    ConditionStep,
    JobSecurity,
    LambdaStep,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    Step,
)

LABELS_LOCATION = "LabelsLocation"  # Fn::Sub variable: s3:// prefix of the lake's churn_labels table
WINDOW_GUARD = "WindowGuardArn"  # Fn::Sub variable: ARN of the lambdas/drift_window function
VARIABLES = (ARTIFACT_BUCKET, CODE_BUCKET, JOB_ROLE, ML_KEY, WINDOW_GUARD)
# = what lambdas/drift_window/window.py guard() answers
GUARD_OUTPUTS = ("has_baseline", "has_captures", "capture_objects", "has_labels", "manifest_uri", "reason")
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


def capture_prefix(env_name: str) -> str:
    """Key prefix of the endpoint's data capture (the data capture layout) in the ML artefact bucket."""
    return f"{CAPTURE_PREFIX}/{endpoint_name(env_name)}/{VARIANT_NAME}/"


def baseline_prefix(env_name: str) -> str:
    return f"{MONITORING_PREFIX}/{endpoint_name(env_name)}/current-baseline/"


def ground_truth_prefix(env_name: str) -> str:
    """Model Monitor's ground truth (engine model_monitor with model quality), written by the labels job."""
    return f"{MONITORING_PREFIX}/{endpoint_name(env_name)}/ground-truth/"


def reports_prefix(env_name: str) -> str:
    return f"{MONITORING_PREFIX}/{endpoint_name(env_name)}/reports/"


def manifests_prefix(env_name: str) -> str:
    """Where WindowGuard writes each execution's capture manifest (expires with the reports)."""
    return f"{reports_prefix(env_name)}manifests/"


def capture_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{capture_prefix(env_name)}"


def baseline_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{baseline_prefix(env_name)}"


def reports_uri(env_name: str) -> str:
    return f"s3://{var(ARTIFACT_BUCKET)}/{reports_prefix(env_name)}"


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
    guard = window_guard(ctx, hours)
    if ctx.model_quality:
        # A Processing input must match at least one object: the job reads labels only when some exist.
        run: Step = ConditionStep(
            name="HasLabels",
            conditions=(Condition("Equals", guard.output("has_labels"), "true"),),
            if_steps=(detect_drift(ctx, churn, hours, guard, labels=True),),
            else_steps=(detect_drift(ctx, churn, hours, guard, labels=False),),
        )
    else:
        run = detect_drift(ctx, churn, hours, guard, labels=False)
    # Otherwise the execution ends here, successfully: WindowGuard's `reason` output says why nothing ran.
    window_has_data = ConditionStep(
        name="WindowHasData",
        conditions=(
            Condition("Equals", guard.output("has_baseline"), "true"),
            Condition("Equals", guard.output("has_captures"), "true"),
        ),
        if_steps=(run,),
    )
    variables = VARIABLES + ((LABELS_LOCATION,) if ctx.model_quality else ())
    return Pipeline(
        name=pipeline_name(ctx.env_name),
        parameters=(WINDOW_END, hours),
        steps=(guard, window_has_data),
        variables=variables + (VPC_VARIABLES if churn.vpc else ()),
    )


def window_guard(ctx: DriftPipelineInputs, hours: Parameter) -> LambdaStep:
    """lambdas/drift_window: is there a baseline and captured data, and the manifest of the window's files."""
    env = ctx.env_name
    inputs: dict[str, object] = {
        "Bucket": var(ARTIFACT_BUCKET),
        "CapturePrefix": capture_prefix(env),
        "BaselinePrefix": baseline_prefix(env),
        "WindowEnd": WINDOW_END,
        "WindowHours": hours,
        "ManifestKey": Join("", (manifests_prefix(env), EXECUTION_ID, ".json")),
    }
    if ctx.model_quality:
        inputs["LabelsUri"] = var(LABELS_LOCATION)
    return LambdaStep(
        name="WindowGuard",
        function_arn=var(WINDOW_GUARD),
        inputs=inputs,
        outputs=GUARD_OUTPUTS,
    )


def detect_drift(
    ctx: DriftPipelineInputs, churn: ChurnPipelineInputs, hours: Parameter, guard: LambdaStep, *, labels: bool
) -> ProcessingStep:
    env = ctx.env_name
    inputs = [
        ProcessingInput("code", churn.code_uri, f"{PROCESSING}/input/code"),
        ProcessingInput("baseline", baseline_uri(env), f"{PROCESSING}/input/baseline"),
        # Exactly the window's capture files, as WindowGuard listed them (not the whole retained prefix).
        ProcessingInput("capture", guard.output("manifest_uri"), f"{PROCESSING}/input/capture", "ManifestFile"),
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
        # The deployer copies the package's baseline_predictions.csv beside the baselines; none: a skip note.
        "--baseline-predictions",
        f"{PROCESSING}/input/baseline",
    ]
    if labels:
        inputs.append(ProcessingInput("labels", var(LABELS_LOCATION), f"{PROCESSING}/input/labels"))
        arguments += ["--labels-dir", f"{PROCESSING}/input/labels"]
    arguments += [
        "--endpoint-name",
        endpoint_name(env),
        "--monitoring-schedule-name",
        data_quality_schedule_name(env),
        "--publish-metrics",
    ]
    monitoring = ctx.config.monitoring
    return ProcessingStep(
        name="DetectDrift" if labels or not ctx.model_quality else "DetectDriftWithoutLabels",
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
