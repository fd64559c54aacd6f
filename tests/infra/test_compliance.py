"""The nag gate: the app passes all three packs, a non-compliant construct fails synth."""

from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from infra.compliance import (
    ACKNOWLEDGEMENTS_CONTEXT,
    ACTIONS_ALLOWED_ON_ANY_RESOURCE,
    SKIPPED_ACKNOWLEDGEMENTS,
    Finding,
    acknowledge,
    acknowledge_grant_policy,
    enable_compliance_gate,
)
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


def test_a_new_wildcard_statement_fails_synth_even_where_iam5_is_acknowledged(tmp_path) -> None:
    """An acknowledged IAM5[Resource::*] on a policy cannot hide a new "*" statement in it."""

    def build(stack: cdk.Stack) -> None:
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["lakeformation:GetDataAccess"], resources=["*"]))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
        acknowledge_grant_policy(role, Finding.APIS_WITHOUT_RESOURCE_PERMISSIONS)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _tiny_app(tmp_path, build).synth()
    assert "s3:GetObject on Resource '*' is not on the allow-list" in (tmp_path / "validation-report.json").read_text()


def test_put_metric_data_on_any_resource_needs_its_namespace_condition(tmp_path) -> None:
    def build(stack: cdk.Stack) -> None:
        role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        role.add_to_principal_policy(iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"]))
        acknowledge_grant_policy(role, Finding.APIS_WITHOUT_RESOURCE_PERMISSIONS)

    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _tiny_app(tmp_path, build).synth()
    assert "needs a cloudwatch:namespace condition" in (tmp_path / "validation-report.json").read_text()


def test_every_wildcard_statement_in_the_app_is_on_the_allow_list(assembly: Assembly) -> None:
    seen: set[str] = set()
    for path in assembly.template_files():
        for resource in json.loads(path.read_text())["Resources"].values():
            props = resource.get("Properties", {})
            kind = resource["Type"]
            docs = [props["PolicyDocument"]] if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") else []
            docs += [p["PolicyDocument"] for p in props.get("Policies", []) if kind == "AWS::IAM::Role"]
            for statement in (s for d in docs for s in d["Statement"]):
                targets = statement["Resource"]
                if "*" in (targets if isinstance(targets, list) else [targets]):
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    seen.update(actions)
    assert seen and seen <= ACTIONS_ALLOWED_ON_ANY_RESOURCE, sorted(seen - ACTIONS_ALLOWED_ON_ANY_RESOURCE)


def test_every_acknowledgement_is_used(tmp_path) -> None:
    """Synthesize with acknowledgements off: every one the app makes must match an open finding."""
    import app as cdk_app
    from infra.config import load_all
    from tests.conftest import ROOT

    SKIPPED_ACKNOWLEDGEMENTS.clear()
    application = cdk_app.new_app(outdir=str(tmp_path))
    application.node.set_context(ACKNOWLEDGEMENTS_CONTEXT, "off")
    stages = cdk_app.add_environments(application, load_all(ROOT / "config"))
    cdk_app.add_delivery_pipeline(application, stages, ROOT / "config" / cdk_app.DELIVERY_FILE)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        application.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {
        (construct["constructPath"].lstrip("/"), violation["ruleName"])
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
    }
    intended = {(path, rule_id.split("::", 1)[1]) for path, rule_id in SKIPPED_ACKNOWLEDGEMENTS}
    assert len(intended) > 50, "the synth recorded no acknowledgements"
    unused = sorted(intended - findings)
    assert not unused, f"acknowledgements that match no finding: {unused}"


def test_cli_synth_fails_on_a_failed_validation_report(tmp_path, capsys) -> None:
    """Under the CDK CLI the jsii process swallows a failed validation; app.py turns it into exit 1."""
    import app as cdk_app

    report = tmp_path / "validation-report.json"
    passing = {"pluginReports": [{"pluginName": "AwsSolutions", "conclusion": "success", "violations": []}]}
    report.write_text(json.dumps(passing))
    assert cdk_app._validation_status(report) == 0
    failing = {
        "pluginReports": [
            *passing["pluginReports"],
            {
                "pluginName": "ResourceWildcardAllowList",
                "conclusion": "failure",
                "violations": [
                    {
                        "ruleName": "ActionOnAnyResource",
                        "description": "P: s3:GetObject on Resource '*' is not on the allow-list",
                        "violatingConstructs": [{"constructPath": "Dev/DataLake/Role/DefaultPolicy/Resource"}],
                    }
                ],
            },
        ]
    }
    report.write_text(json.dumps(failing))
    assert cdk_app._validation_status(report) == 1
    err = capsys.readouterr().err
    assert "ActionOnAnyResource: Dev/DataLake/Role/DefaultPolicy/Resource" in err and "compliance gate failed" in err
