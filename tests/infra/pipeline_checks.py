"""Reading the pipeline definition back out of a synthesized template, as SageMaker would see it.

- `definition_of(template, region, account)`: the Fn::Sub body with every variable resolved to a value of
  the kind CloudFormation would give it (literals kept, cross-stack and GetAtt values replaced by fakes);
- `concrete(definition, step)`: a step's Arguments with every pipeline expression replaced by the value an
  execution would see (parameter defaults, earlier steps' outputs, the Lambda's and the jobs' real output
  shapes), ready for botocore;
- `problems(operation, params)`: botocore's ParamValidator plus what it leaves out: enums, patterns,
  lengths and ranges of every member.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import regex
from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from infra.pipeline.render import resolve

OPERATIONS = {"Processing": "CreateProcessingJob", "Training": "CreateTrainingJob",
              "RegisterModel": "CreateModelPackage"}
JOB_NAME = {"Processing": "ProcessingJobName", "Training": "TrainingJobName"}
EXECUTION_ID = "a1b2c3d4e5f6"


def fake_values(region: str, account: str) -> dict[str, str]:
    """What CloudFormation fills in for variables whose value is only known at deploy time."""
    return {
        "ArtifactBucket": "dev-foundation-mlartifactsbucketb6694316-1a2b3c4d5e6f",
        "MlKeyArn": f"arn:aws:kms:{region}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "ChampionLookupArn": f"arn:aws:lambda:{region}:{account}:function:MlPipeline-ChampionLookupFunction-AbC123",
        "FeaturesLocation": "s3://dev-datalake-featuresbucket128dd398-9z8y7x6w5v4u/ibm_telco_churn/",
        "ScoresLocation": "s3://dev-datalake-featuresbucket128dd398-9z8y7x6w5v4u/ibm_telco_churn_scores/",
        "DataKeyArn": f"arn:aws:kms:{region}:{account}:key/abcd1234-12ab-34cd-56ef-1234567890ab",
        "JobSecurityGroup": "sg-0123456789abcdef0",
        "JobSubnet1": "subnet-0123456789abcdef0",
        "JobSubnet2": "subnet-0fedcba9876543210",
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }


def pipeline_resource(template: dict[str, Any], suffix: str = "-churn") -> dict[str, Any]:
    """The template's pipeline whose name ends with `suffix` (the churn pipeline unless told)."""
    (pipeline,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"
                   and r["Properties"]["PipelineName"].endswith(suffix)]
    return dict(pipeline["Properties"])


def sub_of(template: dict[str, Any], suffix: str = "-churn") -> tuple[str, dict[str, Any]]:
    body, variables = pipeline_resource(template, suffix)["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    return body, variables


def values_for(template: dict[str, Any], region: str, account: str, suffix: str = "-churn") -> dict[str, str]:
    """Literal variables as the template has them, the others faked."""
    _, variables = sub_of(template, suffix)
    fakes = fake_values(region, account)
    return {**fakes, **{k: v for k, v in variables.items() if isinstance(v, str)}}


def definition_of(template: dict[str, Any], region: str, account: str, suffix: str = "-churn") -> dict[str, Any]:
    body, _ = sub_of(template, suffix)
    return dict(json.loads(resolve(body, values_for(template, region, account, suffix))))


def all_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for step in steps:
        out.append(step)
        if step["Type"] == "Condition":
            out += all_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])
    return out


def gets(value: Any) -> list[str]:
    """Every `Get` path in `value`, including those inside JsonGet and Join."""
    if isinstance(value, dict):
        found = [value["Get"]] if set(value) == {"Get"} else []
        return found + [g for v in value.values() for g in gets(v)]
    if isinstance(value, list):
        return [g for v in value for g in gets(v)]
    return []


# --------------------------------------------------------------------------- concrete values
class Execution:
    """Resolves expressions as one execution would: defaults, earlier outputs, sample job results."""

    def __init__(self, definition: dict[str, Any]) -> None:
        self.parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
        self.steps = {s["Name"]: s for s in all_steps(definition["Steps"])}

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"Get"}:
                return self.get(value["Get"])
            if set(value) == {"Std:Join"}:
                join = value["Std:Join"]
                return join["On"].join(str(self.value(v)) for v in join["Values"])
            if set(value) == {"Std:JsonGet"}:
                return self.json_get(value["Std:JsonGet"])
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def get(self, path: str) -> Any:
        if path.startswith("Parameters."):
            return self.parameters[path.removeprefix("Parameters.")]
        if path == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        match = re.fullmatch(r"Steps\.([A-Za-z0-9-]+)\.(.+)", path)
        assert match, path
        step, prop = self.steps[match[1]], match[2]
        output = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", prop)
        if output:
            (o,) = [o for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == output[1]]
            return self.value(o["S3Output"]["S3Uri"])
        if prop == "ModelArtifacts.S3ModelArtifacts":
            base = self.value(step["Arguments"]["OutputDataConfig"]["S3OutputPath"])
            job = f"pipelines-{EXECUTION_ID}-{step['Name'].lower()}-x1y2z3"
            gzip = step["Arguments"]["OutputDataConfig"]["CompressionType"] == "GZIP"
            return f"{base}/{job}/output/model.tar.gz" if gzip else f"{base}/{job}/output/model/"
        lambda_output = re.fullmatch(r"OutputParameters\['([^']+)'\]", prop)
        if lambda_output:
            return self.lambda_outputs(step)[lambda_output[1]]
        raise AssertionError(f"unknown property {path}")

    def lambda_outputs(self, step: dict[str, Any]) -> dict[str, str]:
        """What the step's Lambda answers for its inputs: ChampionLookup with a champion registered,
        the drift pipeline's WindowGuard with a baseline, captures and labels in the window."""
        if step["Name"] == "WindowGuard":
            return window_guard_outputs(self.value(step["Arguments"]))
        from lambdas.champion_lookup import lookup

        request = lookup.Request.parse(self.value(step["Arguments"]))
        champion = lookup.Champion(
            f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{request.group}/3", "xgboost",
            "s3://artifacts/churn-pipeline/models/old/output/model.tar.gz",
        )
        return lookup.outputs(request, champion)

    def json_get(self, json_get: dict[str, Any]) -> Any:
        """A value of the property file as the job that writes it writes it."""
        match = re.fullmatch(r"Steps\.([A-Za-z0-9-]+)\.PropertyFiles\.(\w+)", json_get["PropertyFile"]["Get"])
        assert match, json_get
        document = sample_property_file(match[1], match[2])
        node: Any = document
        for part in json_get["Path"].split("."):
            node = node[part]
        return node


def window_guard_outputs(arguments: dict[str, Any]) -> dict[str, str]:
    """lambdas/drift_window's answer for `arguments` when S3 holds a baseline, one capture file and labels."""
    from lambdas.drift_window import window

    request = window.Request.parse(arguments)
    hour = f"{request.window_end:%Y/%m/%d/%H}/"
    listed = {
        request.baseline_prefix: [request.baseline_prefix + name for name in window.BASELINE_FILES],
        request.capture_prefix + hour: [f"{request.capture_prefix}{hour}part-0.jsonl"],
        request.labels_prefix: [f"{request.labels_prefix}label_date=2026-11-20/part-0.parquet"],
    }

    class Listing:
        def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
            return [{"Contents": [{"Key": k} for k in listed.get(Prefix, [])]}]

    class S3:
        def get_paginator(self, _name: str) -> Listing:
            return Listing()

        def put_object(self, **_kwargs: Any) -> None:
            return None

    return window.guard(S3(), request)


def sample_property_file(step: str, name: str) -> dict[str, Any]:
    from training_jobs.select_model import select

    if (step, name) == ("SelectModel", "Selection"):
        candidates = {"xgboost": {"roc_auc": 0.841, "top_decile_lift": 3.1},
                      "pytorch": {"roc_auc": 0.838, "top_decile_lift": 3.0}}
        return select(candidates, {"roc_auc": 0.835, "top_decile_lift": 3.0}, "xgboost", 0.005, 0.005)
    if name == "Evaluation":
        return {"telecom_churn_metrics": {"roc_auc": {"value": 0.84}, "top_decile_lift": {"value": 3.0}}}
    raise AssertionError(f"no sample for {step}.{name}")


def concrete(definition: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
    """The step's API request as SageMaker makes it (job name added)."""
    params = dict(Execution(definition).value(step["Arguments"]))
    if step["Type"] in JOB_NAME:
        params[JOB_NAME[step["Type"]]] = f"pipelines-{EXECUTION_ID}-{step['Name']}-x1y2z3"[:63]
    return params


# --------------------------------------------------------------------------------- validation
@cache
def service_model() -> ServiceModel:
    return ServiceModel(Loader().load_service_model("sagemaker", "service-2"), "sagemaker")


def problems(operation: str, params: dict[str, Any]) -> list[str]:
    shape = service_model().operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    found = [report.generate_report()] if report.has_errors() else []
    return found + _constraints(params, shape, operation)


def _constraints(value: Any, shape: Shape, where: str) -> list[str]:
    out: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                out += _constraints(value[name], member, f"{where}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        out += _range(len(value), meta, where, "items")
        for i, item in enumerate(value):
            out += _constraints(item, shape.member, f"{where}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        out += _range(len(value), meta, where, "entries")
        for k, v in value.items():
            out += _constraints(k, shape.key, f"{where} key {k!r}")
            out += _constraints(v, shape.value, f"{where}[{k!r}]")
    elif shape.type_name == "string" and isinstance(value, str):
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            out.append(f"{where}: {value!r} is not one of {shape.name} ({len(enum)} values)")
        out += _range(len(value), meta, where, "characters")
        if "pattern" in meta and not _matches(meta["pattern"], value):
            out.append(f"{where}: {value!r} does not match {shape.name} pattern {meta['pattern']!r}")
    elif shape.type_name in ("integer", "long", "float", "double") and isinstance(value, int | float):
        out += _range(value, meta, where, "")
    return out


def _range(size: float, meta: dict[str, Any], where: str, unit: str) -> list[str]:
    low, high = meta.get("min"), meta.get("max")
    if (low is not None and size < low) or (high is not None and size > high):
        return [f"{where}: {size} {unit} outside [{low}, {high}]"]
    return []


def _matches(pattern: str, value: str) -> bool:
    # The service model's patterns are Java regular expressions; a few end in `${1,N}` (a length bound
    # already checked by min/max).
    pattern = re.sub(r"\$\{\d+,\d+\}$", "$", pattern)
    return regex.fullmatch(pattern, value) is not None
