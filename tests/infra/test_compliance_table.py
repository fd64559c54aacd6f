"""docs/security-acknowledgements.md is generated from the synthesized templates and cannot go stale."""

from __future__ import annotations

import json

import pytest

from infra import compliance_table
from infra.compliance import Finding
from infra.compliance_table import Acknowledgement, generate, render, staleness
from tests.conftest import ROOT
from tests.infra.conftest import Assembly

DOC = ROOT / compliance_table.DOC


def _rows(markdown: str) -> dict[str, str]:
    """Finding name -> its row in the table of findings (the first table; CDK's own follow under a heading)."""
    findings_table = markdown.split(compliance_table.CDK_OWN_HEADING, 1)[0]
    return {line.split("`")[1]: line for line in findings_table.splitlines() if line.startswith("| `")}


@pytest.fixture(scope="module")
def generated(assembly: Assembly) -> str:
    return generate(assembly.outdir)


def test_committed_table_equals_the_generated_one(generated: str) -> None:
    problem = staleness(DOC.read_text(), generated, DOC)
    assert problem is None, problem


def test_a_changed_reason_in_a_scratch_copy_is_detected_as_stale(assembly: Assembly, tmp_path, capsys) -> None:
    scratch = tmp_path / "security-acknowledgements.md"
    scratch.write_text(DOC.read_text())
    assert compliance_table.main(["--check", str(assembly.outdir), str(scratch)]) == 0

    reason = Finding.ACCESS_LOG_BUCKET_SSE_S3.reason
    scratch.write_text(DOC.read_text().replace(reason, reason.replace("request metadata only", "nothing sensitive")))
    assert compliance_table.main(["--check", str(assembly.outdir), str(scratch)]) == 1
    err = capsys.readouterr().err
    assert "stale, run `make docs`" in err and "nothing sensitive" in err


def test_every_finding_has_a_row_with_the_reason_from_the_code(generated: str) -> None:
    rows = _rows(generated)
    assert set(rows) == {finding.name for finding in Finding}
    for finding in Finding:
        assert finding.reason.replace("|", "\\|") in rows[finding.name], finding.name


def test_where_condenses_stages_and_names_those_a_finding_is_limited_to(generated: str) -> None:
    rows = _rows(generated)
    # On every stage: one path, no stage list, no CDK hash.
    assert "<br>`Foundation/AccessLogs/Bucket` |" in rows["ACCESS_LOG_BUCKET_SSE_S3"]
    # Only where the network mode is 'vpc' (config/staging.yaml, config/prod.yaml).
    assert "`MlPipeline/TrainingTrigger/Role` (Prod, Staging)" in rows["LAMBDA_VPC_ACCESS_MANAGED_POLICY"]
    # Stage, account and region inside resource-named rules are replaced, so the stages share one entry.
    assert "model-package/telecom-ml-<env>-churn/*]`" in rows["MODEL_PACKAGE_VERSIONS"]
    assert "111111111111" not in rows["MODEL_PACKAGE_VERSIONS"]


def test_the_delivery_pipelines_acknowledgements_are_listed_under_its_stacks(generated: str) -> None:
    """The shared synth has -c delivery=pipeline: its top-level stacks are read, labelled, never given an <env>."""
    rows = _rows(generated)
    for finding in (Finding.CDK_PIPELINES_ROLE_POLICY, Finding.CODEBUILD_SOURCE_FROM_PIPELINE):
        assert "`DeliveryPipeline/" in rows[finding.name] and "(delivery pipeline)" in rows[finding.name]
    assert "`DeliveryArtifacts-eu-central-1/AccessLogs/Bucket` (delivery pipeline)" in rows["ACCESS_LOG_BUCKET_SSE_S3"]
    assert "telecom-ml-delivery-artifacts-" in rows["PIPELINE_ARTIFACT_OBJECTS"]


def test_rule_and_path_names_are_normalised_per_stage() -> None:
    path = "Prod/MlPipeline/PipelineExecutionRole/PolicyProdMlPipelinePipelineExecutionRoleC50DE82A/Resource"
    assert compliance_table._below_stage(path, "Prod") == (
        "MlPipeline/PipelineExecutionRole/PolicyMlPipelinePipelineExecutionRole"
    )
    output = json.dumps(
        {"Fn::GetStackOutput": {"StackName": "SandboxEu-Foundation", "Region": "eu-west-3", "OutputName": "X"}},
        separators=(",", ":"),
    )
    rule = (
        "AwsSolutions::AwsSolutions-IAM5[Resource::arn:aws:sagemaker:eu-west-3:123456789012:"
        f"pipeline/telecom-ml-sandbox-eu-churn/execution/*]|{output}/reports/*"
    )
    assert compliance_table._rule_name(rule, "SandboxEu", "123456789012", "eu-west-3") == (
        "AwsSolutions-IAM5[Resource::arn:aws:sagemaker:<region>:<account>:"
        "pipeline/telecom-ml-<env>-churn/execution/*]|<Foundation:X>/reports/*"
    )


def test_an_acknowledgement_outside_the_finding_enum_is_listed_not_dropped() -> None:
    foreign = Acknowledgement("Dev", "Foundation/Thing", "CloudFormation-Validate::W1234", "a reason CDK wrote")
    ours = Acknowledgement("Dev", "Foundation/AccessLogs/Bucket", "x", Finding.ACCESS_LOG_BUCKET_SSE_S3.reason)
    page = render([foreign, ours], ["Dev"])
    assert "| `CloudFormation-Validate::W1234` | 1 resource in `Foundation` | a reason CDK wrote |" in page
    assert "applied in no environment of `config/` or the delivery pipeline today" in _rows(page)["BUCKET_REPLICATION"]


def test_a_folder_without_an_assembly_is_refused_with_a_message(tmp_path, capsys) -> None:
    assert compliance_table.main(["--check", str(tmp_path)]) == 2
    assert f"{tmp_path}: no manifest.json (synthesize first" in capsys.readouterr().err
