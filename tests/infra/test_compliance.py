"""The nag gate: the app passes all three packs, a non-compliant construct fails synth."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.compliance import Finding, acknowledge, enable_compliance_gate
from tests.infra.conftest import Assembly


def test_app_has_no_open_findings(assembly: Assembly) -> None:
    report = json.loads((assembly.outdir / "validation-report.json").read_text())
    assert report["pluginReports"], "no nag pack ran"
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success", plugin
        assert plugin.get("violations", []) == []


def test_acknowledgements_are_recorded_in_template_metadata(assembly: Assembly) -> None:
    template = assembly.template("Dev", "Foundation")
    acknowledged = [
        rule
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert acknowledged, "acknowledgements should be written to template metadata for audit"
    assert all(len(rule["reason"]) > 80 for rule in acknowledged)


def test_every_finding_has_a_reviewable_reason() -> None:
    for finding in Finding:
        assert len(finding.reason) > 100, finding
        assert all("::" in rule for rule in finding.rule_ids), finding


def test_resource_wildcard_findings_cannot_be_acknowledged_blindly() -> None:
    app = cdk.App()
    with pytest.raises(ValueError, match="use acknowledge_resource_wildcard"):
        acknowledge(cdk.Stack(app, "S"), Finding.OBJECTS_UNDER_ONE_PREFIX)


def _tiny_app(tmp_path, build) -> cdk.App:
    app = cdk.App(outdir=str(tmp_path))
    stage = cdk.Stage(app, "Probe", env=cdk.Environment(account="111111111111", region="eu-west-1"))
    build(cdk.Stack(stage, "Probe"))
    enable_compliance_gate(app)
    return app


def test_plain_bucket_fails_the_gate(tmp_path) -> None:
    app = _tiny_app(tmp_path, lambda stack: s3.Bucket(stack, "Plain"))
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {
        "AwsSolutions-S10",
        "NIST.800.53.R5-S3BucketSSLRequestsOnly",
        "HIPAA.Security-S3DefaultEncryptionKMS",
    } <= rules


def test_wildcard_policy_fails_the_aws_solutions_pack(tmp_path) -> None:
    def build(stack: cdk.Stack) -> None:
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        iam.ManagedPolicy(
            stack, "Wide", roles=[role], statements=[iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"])]
        )

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _tiny_app(tmp_path, build).synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert "AwsSolutions-IAM5[Resource::*]" in rules
