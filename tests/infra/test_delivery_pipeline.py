"""The delivery pipeline as synthesized with the environments (the shared session synth has the flag on)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import load_all
from infra.delivery_config import load_delivery
from tests.conftest import ROOT
from tests.infra.conftest import Assembly

SETTINGS = load_delivery(ROOT / "config" / "delivery" / "pipeline.yaml")
ACCOUNTS = {c.name: c.account for c in load_all(ROOT / "config")}
REGIONS = {c.name: c.region for c in load_all(ROOT / "config")}


@pytest.fixture(scope="module")
def template(assembly: Assembly) -> dict[str, Any]:
    return assembly.app_template("DeliveryPipeline")


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _pipeline(template: dict[str, Any]) -> dict[str, Any]:
    [pipeline] = _of_type(template, "AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


def _stage(template: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in _pipeline(template)["Stages"] if s["Name"] == name)


def test_the_pipeline_stack_is_in_the_tooling_account(assembly: Assembly) -> None:
    manifest = json.loads((assembly.outdir / "manifest.json").read_text())
    stacks = {a["displayName"]: a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}
    assert stacks["DeliveryPipeline"]["environment"] == f"aws://{SETTINGS.account}/{SETTINGS.region}"
    # Prod deploys to another region: its artefact store is a stack of the tooling account in that region,
    # made here (never CDK's unreviewed cross-region support stack).
    assert stacks[f"DeliveryArtifacts-{REGIONS['prod']}"]["environment"] == (
        f"aws://{SETTINGS.account}/{REGIONS['prod']}"
    )
    assert not [name for name in stacks if name.startswith("cross-region-stack")]


def test_source_is_the_codeconnections_connection_of_the_settings_file(template: dict[str, Any]) -> None:
    [action] = _stage(template, "Source")["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"]["ConnectionArn"] == SETTINGS.source.connection_arn
    assert action["Configuration"]["FullRepositoryId"] == f"{SETTINGS.source.owner}/{SETTINGS.source.repository}"
    assert action["Configuration"]["BranchName"] == SETTINGS.source.branch


def test_synth_step_runs_make_test_then_cdk_synth_with_the_flag(template: dict[str, Any]) -> None:
    [action] = _stage(template, "Build")["Actions"]
    project = template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]["Properties"]
    spec = yaml.safe_load(project["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11", "java": "corretto17"}
    assert spec["phases"]["install"]["commands"] == ["make setup"]
    commands = spec["phases"]["build"]["commands"]
    test = commands.index("make test")
    synth = next(i for i, c in enumerate(commands) if c.startswith("cdk synth"))
    assert test < synth and "-c delivery=pipeline" in commands[synth]
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    assert project["Environment"]["Image"] == "aws/codebuild/standard:7.0"
    assert project["Environment"]["ComputeType"] == f"BUILD_GENERAL1_{SETTINGS.synth_compute}"
    assert project["TimeoutInMinutes"] == SETTINGS.synth_timeout_minutes


def test_stages_deploy_dev_then_staging_then_prod_behind_a_manual_approval(template: dict[str, Any]) -> None:
    names = [s["Name"] for s in _pipeline(template)["Stages"]]
    assert names == ["Source", "Build", "Assets", "Dev", "Staging", "Prod"]
    for stage in ("Dev", "Staging"):
        assert all(a["ActionTypeId"]["Category"] != "Approval" for a in _stage(template, stage)["Actions"])
    actions = _stage(template, "Prod")["Actions"]
    [approval] = [a for a in actions if a["ActionTypeId"]["Category"] == "Approval"]
    assert approval["ActionTypeId"]["Provider"] == "Manual"
    assert all(approval["RunOrder"] < a["RunOrder"] for a in actions if a is not approval)


def test_each_stage_deploys_into_its_environment_account_with_its_bootstrap_roles(template: dict[str, Any]) -> None:
    for name in ("dev", "staging", "prod"):
        deploys = [
            a for a in _stage(template, name.capitalize())["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"
        ]
        assert {a["Configuration"]["StackName"] for a in deploys} == {
            f"{name.capitalize()}-{s}" for s in ("Foundation", "DataLake", "MlPipeline", "Monitoring", "Serving")
        }
        account, region = ACCOUNTS[name], REGIONS[name]
        exec_role = {
            "Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-cfn-exec-role-{account}-{region}"
        }
        # Each change set is created (and so its stack changed) by the target's CloudFormation execution role.
        assert sum(a["Configuration"].get("RoleArn") == exec_role for a in deploys) == 5
        for action in deploys:
            assert action["RoleArn"] == {
                "Fn::Sub": f"arn:${{AWS::Partition}}:iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-{region}"
            }
            assert action["Configuration"].get("RoleArn", exec_role) == exec_role
            assert action.get("Region", SETTINGS.region) == region


def test_artefacts_are_encrypted_with_keys_the_target_deploy_roles_may_use(
    assembly: Assembly, template: dict[str, Any]
) -> None:
    stores = {s["Region"]: s["ArtifactStore"] for s in _pipeline(template)["ArtifactStores"]}
    assert set(stores) == {SETTINGS.region, REGIONS["prod"]}
    assert all(store["EncryptionKey"]["Type"] == "KMS" for store in stores.values())
    [key] = _of_type(template, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    readers = json.dumps([s for s in key["Properties"]["KeyPolicy"]["Statement"] if "kms:Decrypt" in s["Action"]])
    assert all(f"deploy-role-{ACCOUNTS[n]}-{REGIONS[n]}" in readers for n in ("dev", "staging"))
    replica = assembly.app_template(f"DeliveryArtifacts-{REGIONS['prod']}")
    policies = json.dumps(
        [*_of_type(replica, "AWS::S3::BucketPolicy").values(), *_of_type(replica, "AWS::KMS::Key").values()]
    )
    assert f"deploy-role-{ACCOUNTS['prod']}-{REGIONS['prod']}" in policies
    assert "dev" not in {n for n in ACCOUNTS if f"deploy-role-{ACCOUNTS[n]}-" in policies}


def test_every_build_writes_to_the_encrypted_log_group_and_uses_the_artefact_key(template: dict[str, Any]) -> None:
    [group_id] = _of_type(template, "AWS::Logs::LogGroup")
    assert "KmsKeyId" in template["Resources"][group_id]["Properties"]
    projects = _of_type(template, "AWS::CodeBuild::Project").values()
    assert len(projects) == 2  # synth and the one file-asset publisher (the pipeline does not mutate itself)
    for project in projects:
        assert project["Properties"]["LogsConfig"]["CloudWatchLogs"]["GroupName"] == {"Ref": group_id}
        assert project["Properties"]["EncryptionKey"]["Fn::GetAtt"][1] == "Arn"


def test_no_pipeline_role_may_act_on_any_resource(assembly: Assembly) -> None:
    """CDK Pipelines writes codebuild:StartBuild on '*' for its asset role: the stack narrows it to its projects."""
    for stack in ("DeliveryPipeline", f"DeliveryArtifacts-{REGIONS['prod']}"):
        for policy in _of_type(assembly.app_template(stack), "AWS::IAM::Policy").values():
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                assert "*" not in targets, statement


def test_acknowledgements_on_pipeline_resources_are_recorded(template: dict[str, Any]) -> None:
    acknowledged = {
        rule["id"].split("::", 1)[1]
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    }
    assert "HIPAA.Security-CodeBuildProjectSourceRepoUrl" in acknowledged
    assert "AwsSolutions-IAM5[Action::s3:GetObject*]" in acknowledged
    assert not any("Resource::*]" in rule for rule in acknowledged)


def test_the_asset_role_keeps_every_grant_made_while_the_pipeline_was_built(template: dict[str, Any]) -> None:
    """Its narrowed policy document is fixed after the build: it must still carry the publishing roles it assumes."""
    [policy] = [v for k, v in _of_type(template, "AWS::IAM::Policy").items() if k.startswith("PipelineAssetsFileRole")]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    [assume] = [s for s in statements if s["Action"] == "sts:AssumeRole"]
    assert {json.dumps(r) for r in assume["Resource"]} == {
        json.dumps({"Fn::Sub": f"arn:${{AWS::Partition}}:iam::{a}:role/cdk-hnb659fds-file-publishing-role-{a}-{r}"})
        for a, r in ((ACCOUNTS[n], REGIONS[n]) for n in ("dev", "staging", "prod"))
    }
    [builds] = [s for s in statements if "codebuild:StartBuild" in s["Action"]]
    assert builds["Resource"] == [{"Fn::GetAtt": [_asset_project(template), "Arn"]}]


def _asset_project(template: dict[str, Any]) -> str:
    [action] = _stage(template, "Assets")["Actions"]
    return action["Configuration"]["ProjectName"]["Ref"]


def test_role_arns_are_rewritten_as_sub_only_when_made_of_strings_and_pseudo_parameters() -> None:
    from stacks.delivery_pipeline_stack import _as_nag_renders, _joins_as_subs

    partition = {"Ref": "AWS::Partition"}
    assert _joins_as_subs({"Fn::Join": ["", ["arn:", partition, ":iam::1:role/x"]]}) == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::1:role/x"
    }
    with_resource = {"Fn::Join": ["", [{"Fn::GetAtt": ["Bucket", "Arn"]}, "/*"]]}
    assert _joins_as_subs({"List": [with_resource]}) == {"List": [with_resource]}
    assert _joins_as_subs({"Fn::Join": [",", ["a", partition]]}) == {"Fn::Join": [",", ["a", partition]]}
    assert _as_nag_renders(with_resource) == "<Bucket.Arn>/*"
    assert _as_nag_renders({"Fn::Sub": "arn:${AWS::Partition}:s3:::b/*"}) == "arn:<AWS::Partition>:s3:::b/*"
    with pytest.raises(ValueError, match="cannot render"):
        _as_nag_renders({"Fn::If": ["C", "a", "b"]})
