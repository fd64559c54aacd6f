"""The renderer and its constructs on their own: escaping, limits, determinism, the code bundle, the L1 wrapper."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from infra.config import load_all
from infra.constructs.ml.sagemaker_pipeline import SageMakerPipeline
from infra.pipeline import churn, code_bundle, render
from infra.pipeline.expressions import Join, Parameter
from infra.pipeline.steps import FailStep
from tests.conftest import ROOT

DEV = next(c for c in load_all(ROOT / "config") if c.name == "dev")


def dev_pipeline(code_key: str = "0" * 64 + ".gz") -> render.Pipeline:
    return churn.build(churn.ChurnPipelineInputs(DEV, "dataset/schemas/ibm_telco_churn.yaml", code_key))


def small_pipeline(message: str = "stopped") -> render.Pipeline:
    reason = Parameter("Reason", "${not_a_variable} stays literal")
    return render.Pipeline("p", (reason,), (FailStep("Stop", Join(" ", (message, "${Bucket}", reason))),),
                           variables=("Bucket",))


def test_sub_body_escapes_every_dollar_brace_but_its_variables() -> None:
    body = render.sub_body(render.definition(small_pipeline()), ["Bucket"])
    assert "${!not_a_variable}" in body and "${Bucket}" in body
    assert render.variables_used(body) == {"Bucket"}
    resolved = json.loads(render.resolve(body, {"Bucket": "b-1"}))
    assert resolved["Parameters"][0]["DefaultValue"] == "${not_a_variable} stays literal"
    assert resolved["Steps"][0]["Arguments"]["ErrorMessage"]["Std:Join"]["Values"][1] == "b-1"


def test_a_body_over_cloudformations_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="CloudFormation takes 1048576"):
        render.sub_body(render.definition(small_pipeline("x" * render.MAX_BODY_CHARS)), ["Bucket"])


def test_step_names_are_unique_across_branches() -> None:
    with pytest.raises(ValueError, match=r"step names used twice: \['Stop'\]"):
        render.Pipeline("p", (), (FailStep("Stop", "a"), FailStep("Stop", "b")))


def test_rendering_is_deterministic_and_sized() -> None:
    first = render.sub_body(render.definition(dev_pipeline()), churn.VARIABLES)
    assert first == render.sub_body(render.definition(dev_pipeline()), churn.VARIABLES)
    assert 20_000 < len(first) < 100_000  # far below the 1,048,576 characters CloudFormation takes


def test_content_addressed_outputs_follow_what_the_step_is_given() -> None:
    step = dev_pipeline().step("Preprocess")
    again = dev_pipeline().step("Preprocess")
    assert churn.fingerprint(step) == churn.fingerprint(again)
    other_code = dev_pipeline("1" * 64 + ".gz").step("Preprocess")
    assert json.dumps(step.to_request()) != json.dumps(other_code.to_request())  # new code, new place
    bigger = replace(step, compute=replace(step.compute, instance_type="ml.m5.4xlarge"))  # type: ignore[type-var]
    assert churn.fingerprint(bigger) != churn.fingerprint(step)


def test_code_bundle_is_deterministic_and_holds_only_job_code(tmp_path: Path) -> None:
    data = code_bundle.build()
    assert data == code_bundle.build()
    header = gzip.GzipFile(fileobj=io.BytesIO(data))
    header.read()
    assert header.mtime == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    files = sorted(m.name for m in members if m.isfile())
    assert files == code_bundle.bundle_files()
    assert {"training_jobs/baseline.py", "training_jobs/select_model.py", "serving/inference.py"} <= set(files)
    assert {m.mtime for m in members} == {code_bundle.FIXED_MTIME} and {m.uid for m in members} == {0}
    target, digest = code_bundle.write(tmp_path / "bundle.tar.gz")
    assert target.read_bytes() == data and len(digest) == 64


def test_pipeline_construct_alone_writes_cloudformation_cased_properties(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    pipeline = SageMakerPipeline(stack, "P", pipeline=small_pipeline(), variables={"Bucket": "my-bucket"},
                                 role=role, description="probe", max_parallel_steps=2)
    properties = Template.from_stack(stack).find_resources("AWS::SageMaker::Pipeline")
    (resource,) = properties.values()
    props = resource["Properties"]
    assert props["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 2}
    body, variables = props["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert variables == {"Bucket": "my-bucket"} and body == pipeline.body
    written = tmp_path / "pipelines" / "p.json"
    assert json.loads(written.read_text()) == json.loads(body)
    with pytest.raises(ValueError, match=r"variables nobody fills: \['Bucket'\]"):
        SageMakerPipeline(stack, "Q", pipeline=small_pipeline(), variables={}, role=role, description="",
                          max_parallel_steps=1)
