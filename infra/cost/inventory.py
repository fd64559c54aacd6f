"""What in one stage's synthesized templates costs money, counted from cdk.out (JSON only, no CDK).

A stage is one nested assembly, cdk.out/assembly-<Stage>/, with one <stack>.template.json per stack. The counts
are of the resources as CloudFormation would create them; what the deployer creates at run time (the endpoint,
a Model Monitor schedule) comes from the environment's config in model.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GLUE_DPU_PER_WORKER = {"G.025X": 0.25, "G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0}
JOB_STEP_TYPES = ("Processing", "Training", "Transform")
_SUB = re.compile(r"\$\{[^}]*\}")
_PIPELINE_ARN = re.compile(r"^arn:[^:]+:sagemaker:[^:]*:[^:]*:pipeline/(?P<name>[^/]+)$")


class InventoryError(Exception):
    """A template holds something the model cannot count; str(err) names the file and the resource."""


@dataclass(frozen=True)
class JobStep:
    """One Processing, Training or Transform step of a pipeline, on the path a run takes (every condition true)."""

    name: str
    kind: str
    instance_type: str | None  # None: decided at run time (a property file), see model.py
    instance_count: int
    managed_spot: bool = False


@dataclass(frozen=True)
class GlueJob:
    logical_id: str
    worker_type: str
    workers: int

    @property
    def dpus(self) -> float:
        return GLUE_DPU_PER_WORKER[self.worker_type] * self.workers


@dataclass(frozen=True)
class Schedule:
    logical_id: str
    expression: str
    target_pipeline: str | None  # the SageMaker pipeline it starts, if any


@dataclass(frozen=True)
class MonitoringJobDefinition:
    logical_id: str
    instance_type: str
    instance_count: int


@dataclass
class Inventory:
    stage: str
    kms_keys: int = 0
    secrets: int = 0
    interface_endpoints: list[tuple[str, int]] = field(default_factory=list)  # (logical id, AZs)
    alarms: int = 0
    alarm_metrics: int = 0  # a metric-math alarm is billed per metric it reads
    custom_metrics: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name) outside AWS/*
    dashboards: int = 0
    dynamodb_tables: list[tuple[str, str]] = field(default_factory=list)  # (logical id, billing mode)
    glue_jobs: dict[str, GlueJob] = field(default_factory=dict)
    snapshot_glue_jobs: list[str] = field(default_factory=list)  # jobs a new snapshot runs, in order
    snapshot_transitions: int = 0  # states a snapshot passes through in the orchestration state machine
    state_machine_states: dict[str, int] = field(default_factory=dict)
    firehose_streams: int = 0
    schedules: list[Schedule] = field(default_factory=list)
    pipelines: dict[str, list[JobStep]] = field(default_factory=dict)
    monitoring_job_definitions: list[MonitoringJobDefinition] = field(default_factory=list)
    lambda_functions: int = 0
    log_groups: int = 0
    code_pipelines: int = 0

    def schedules_of(self, pipeline: str) -> list[Schedule]:
        return [s for s in self.schedules if s.target_pipeline == pipeline]


def stage_templates(cdk_out: Path, stage: str) -> list[Path]:
    """The template files of `stage` in a cloud assembly, from its nested assembly's manifest."""
    stage_dir = cdk_out / f"assembly-{stage}"
    manifest_path = stage_dir / "manifest.json"
    if not manifest_path.exists():
        raise InventoryError(f"{cdk_out}: no assembly-{stage}/manifest.json (synthesize first: make synth)")
    manifest = json.loads(manifest_path.read_text())
    files = [
        stage_dir / a["properties"]["templateFile"]
        for a in manifest.get("artifacts", {}).values()
        if a.get("type") == "aws:cloudformation:stack"
    ]
    return sorted(files)


def read_stage(cdk_out: Path, stage: str) -> Inventory:
    inventory = Inventory(stage)
    state_machines: list[tuple[Path, str, Any]] = []
    for path in stage_templates(cdk_out, stage):
        resources = json.loads(path.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            where = f"{path.name}: {logical_id}"
            _count(inventory, resource["Type"], resource.get("Properties", {}), logical_id, where)
            if resource["Type"] == "AWS::StepFunctions::StateMachine":
                state_machines.append((path, logical_id, resource.get("Properties", {})))
    for path, logical_id, properties in state_machines:
        _read_state_machine(inventory, properties, f"{path.name}: {logical_id}")
    return inventory


def _count(inv: Inventory, kind: str, props: dict[str, Any], logical_id: str, where: str) -> None:
    if kind == "AWS::KMS::Key":
        inv.kms_keys += 1
    elif kind == "AWS::SecretsManager::Secret":
        inv.secrets += 1
    elif kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType", "Gateway") == "Interface":
        subnets = props.get("SubnetIds")
        if not isinstance(subnets, list) or not subnets:
            raise InventoryError(f"{where}: SubnetIds is not a list of subnets; cannot count the endpoint's AZs")
        inv.interface_endpoints.append((logical_id, len(subnets)))
    elif kind == "AWS::CloudWatch::Alarm":
        _count_alarm(inv, props, where)
    elif kind == "AWS::CloudWatch::Dashboard":
        inv.dashboards += 1
    elif kind == "AWS::DynamoDB::Table":
        inv.dynamodb_tables.append((logical_id, props.get("BillingMode", "PROVISIONED")))
    elif kind == "AWS::Glue::Job":
        worker_type, workers = props.get("WorkerType"), props.get("NumberOfWorkers")
        if worker_type not in GLUE_DPU_PER_WORKER or not isinstance(workers, int):
            raise InventoryError(
                f"{where}: WorkerType {worker_type!r} / NumberOfWorkers {workers!r} not countable "
                f"(worker types: {sorted(GLUE_DPU_PER_WORKER)})"
            )
        inv.glue_jobs[logical_id] = GlueJob(logical_id, worker_type, workers)
    elif kind == "AWS::KinesisFirehose::DeliveryStream":
        inv.firehose_streams += 1
    elif kind in ("AWS::Scheduler::Schedule", "AWS::Events::Rule"):
        _count_schedule(inv, kind, props, logical_id)
    elif kind == "AWS::SageMaker::Pipeline":
        inv.pipelines[props["PipelineName"]] = _pipeline_job_steps(props, where)
    elif kind in ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition"):
        cluster = props.get("JobResources", {}).get("ClusterConfig", {})
        inv.monitoring_job_definitions.append(
            MonitoringJobDefinition(logical_id, cluster["InstanceType"], int(cluster.get("InstanceCount", 1)))
        )
    elif kind == "AWS::Lambda::Function":
        inv.lambda_functions += 1
    elif kind == "AWS::Logs::LogGroup":
        inv.log_groups += 1
    elif kind == "AWS::CodePipeline::Pipeline":
        inv.code_pipelines += 1


def _count_alarm(inv: Inventory, props: dict[str, Any], where: str) -> None:
    stats = [m["MetricStat"] for m in props.get("Metrics", []) if "MetricStat" in m]
    metrics = [(s["Metric"].get("Namespace"), s["Metric"].get("MetricName"), s.get("Period", 60)) for s in stats]
    if not props.get("Metrics"):
        metrics = [(props.get("Namespace"), props.get("MetricName"), props.get("Period", 60))]
    for namespace, name, period in metrics:
        if isinstance(period, int) and period < 60:
            raise InventoryError(f"{where}: a high-resolution alarm (period {period} s) has no price in the model")
        if isinstance(namespace, str) and not namespace.startswith("AWS/"):
            inv.custom_metrics.add((namespace, str(name)))
    inv.alarms += 1
    inv.alarm_metrics += len(metrics)


def _count_schedule(inv: Inventory, kind: str, props: dict[str, Any], logical_id: str) -> None:
    expression = props.get("ScheduleExpression")
    if not expression or props.get("State", "ENABLED") != "ENABLED":
        return
    targets = [props["Target"]] if kind == "AWS::Scheduler::Schedule" else props.get("Targets", [])
    pipeline = next((p for p in map(_target_pipeline, targets) if p), None)
    inv.schedules.append(Schedule(logical_id, expression, pipeline))


def _target_pipeline(target: dict[str, Any]) -> str | None:
    arn = target.get("Arn")
    match = _PIPELINE_ARN.match(arn) if isinstance(arn, str) else None
    if match:
        return match["name"]
    payload = target.get("Input")
    if isinstance(payload, str) and isinstance(arn, str) and arn.endswith(":startPipelineExecution"):
        name = json.loads(payload).get("PipelineName")
        return name if isinstance(name, str) else None
    return None


def _pipeline_job_steps(props: dict[str, Any], where: str) -> list[JobStep]:
    definition = props.get("PipelineDefinition", {})
    body = definition.get("PipelineDefinitionBody")
    if body is None:
        raise InventoryError(
            f"{where}: the pipeline definition is not in the template (S3 location); cannot count its jobs"
        )
    if isinstance(body, dict) and "Fn::Sub" in body:
        sub = body["Fn::Sub"]
        body = sub[0] if isinstance(sub, list) else sub
    if not isinstance(body, str):
        raise InventoryError(f"{where}: PipelineDefinitionBody is neither a string nor Fn::Sub of one")
    # Substitutions become 0: inside a string they leave a valid string, in a value position a valid number.
    parsed = json.loads(_SUB.sub("0", body))
    defaults = {p["Name"]: p.get("DefaultValue") for p in parsed.get("Parameters", [])}
    return [_job_step(step, defaults, where) for step in _run_path(parsed.get("Steps", []))]


def _run_path(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Job steps of a run in which every condition holds (the if-branches: the gate passes, a package exists...)."""
    for step in steps:
        if step["Type"] == "Condition":
            yield from _run_path(step.get("Arguments", {}).get("IfSteps", []))
        elif step["Type"] in JOB_STEP_TYPES:
            yield step


def _job_step(step: dict[str, Any], defaults: dict[str, Any], where: str) -> JobStep:
    args = step["Arguments"]
    if step["Type"] == "Processing":
        resources = args["ProcessingResources"]["ClusterConfig"]
    elif step["Type"] == "Training":
        resources = args["ResourceConfig"]
    else:
        resources = args["TransformResources"]
    instance_type = _resolve(resources["InstanceType"], defaults)
    count = _resolve(resources.get("InstanceCount", 1), defaults)
    if not isinstance(count, int):
        raise InventoryError(f"{where}: step {step['Name']}: InstanceCount {count!r} is not a number")
    return JobStep(
        name=step["Name"],
        kind=step["Type"],
        instance_type=instance_type if isinstance(instance_type, str) else None,
        instance_count=count,
        managed_spot=bool(args.get("EnableManagedSpotTraining", False)),
    )


def _resolve(value: Any, defaults: dict[str, Any]) -> Any:
    """A pipeline parameter reference becomes its default; other expressions (run-time values) stay as they are."""
    if isinstance(value, dict) and isinstance(value.get("Get"), str) and value["Get"].startswith("Parameters."):
        return defaults.get(value["Get"].removeprefix("Parameters."))
    return value


def _read_state_machine(inv: Inventory, props: dict[str, Any], where: str) -> None:
    definition = props.get("DefinitionString")
    if isinstance(definition, dict) and "Fn::Join" in definition:
        separator, parts = definition["Fn::Join"]
        definition = separator.join(_join_part(p) for p in parts)
    if not isinstance(definition, str):
        raise InventoryError(f"{where}: DefinitionString is neither a string nor Fn::Join of strings")
    states = json.loads(definition)
    inv.state_machine_states[where.split(": ", 1)[1]] = len(states.get("States", {}))
    glue = _default_path_glue_jobs(states, inv)
    if glue:
        path_states, jobs = glue
        inv.snapshot_glue_jobs = jobs
        inv.snapshot_transitions = path_states


def _join_part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if isinstance(part, dict) and "Ref" in part:
        return str(part["Ref"])  # a Glue job's name is its Ref: keep the logical id to find the job
    return "0"


def _default_path_glue_jobs(states: dict[str, Any], inv: Inventory) -> tuple[int, list[str]] | None:
    """The Glue jobs on the path a state machine takes by default (Next links and each Choice's Default)."""
    jobs: list[str] = []
    seen: set[str] = set()
    name = states.get("StartAt")
    while isinstance(name, str) and name not in seen:
        seen.add(name)
        state = states["States"][name]
        resource = state.get("Resource", "")
        if isinstance(resource, str) and resource.endswith(":glue:startJobRun.sync"):
            job = state.get("Parameters", {}).get("JobName")
            if job in inv.glue_jobs:
                jobs.append(job)
        name = state.get("Default") if state.get("Type") == "Choice" else state.get("Next")
    return (len(seen), jobs) if jobs else None
