"""Security properties of the foundation stack, asserted on the synthesized templates."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from tests.infra.conftest import Assembly

STAGES = ["Dev", "Staging", "Prod"]


def foundation(assembly: Assembly, stage: str) -> Template:
    return Template.from_json(assembly.template(stage, "Foundation"))


@pytest.mark.parametrize("stage", STAGES)
def test_rotating_customer_managed_keys_one_per_purpose(assembly: Assembly, stage: str) -> None:
    template = foundation(assembly, stage)
    template.resource_count_is("AWS::KMS::Key", 5)
    template.all_resources_properties("AWS::KMS::Key", {"EnableKeyRotation": True, "RotationPeriodInDays": 365})
    env = stage.lower()
    for purpose in ("data", "secrets", "ml", "logs", "ops"):
        template.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/telecom-ml/{env}/{purpose}"})


def test_logs_key_only_serves_this_accounts_log_groups(assembly: Assembly) -> None:
    foundation(assembly, "Prod").has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "logs.eu-central-1.amazonaws.com"},
                                "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": Match.any_value()}},
                            }
                        )
                    ]
                )
            },
        },
    )


@pytest.mark.parametrize("stage", STAGES)
def test_vpc_is_isolated_in_two_configured_zones(assembly: Assembly, stage: str, resources_of) -> None:
    template = foundation(assembly, stage)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    subnets = resources_of(stage, "Foundation", "AWS::EC2::Subnet").values()
    zones = sorted(s["Properties"]["AvailabilityZone"] for s in subnets)
    region = {"Dev": "eu-west-1", "Staging": "eu-west-1", "Prod": "eu-central-1"}[stage]
    assert zones == [f"{region}a", f"{region}b"]
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets)


@pytest.mark.parametrize("stage", STAGES)
def test_flow_logs_go_to_an_encrypted_log_group(assembly: Assembly, stage: str) -> None:
    template = foundation(assembly, stage)
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value()})


def test_interface_endpoints_follow_config(resources_of) -> None:
    from infra.config import load_all
    from tests.conftest import ROOT

    for config in load_all(ROOT / "config"):
        endpoints = resources_of(config.stage_name, "Foundation", "AWS::EC2::VPCEndpoint").values()
        interface = [e for e in endpoints if e["Properties"].get("VpcEndpointType") == "Interface"]
        gateway = [e for e in endpoints if e["Properties"].get("VpcEndpointType") == "Gateway"]
        assert len(interface) == len(config.network.interface_endpoints)
        assert len(gateway) == 1  # S3
        assert all(e["Properties"]["PrivateDnsEnabled"] for e in interface)


def test_endpoint_security_group_allows_only_https_from_the_vpc(resources_of) -> None:
    # Dev runs in network mode 'isolated': no interface endpoints, so no endpoint security group either.
    dev = resources_of("Dev", "Foundation", "AWS::EC2::SecurityGroup").values()
    assert not [g for g in dev if "interface endpoints" in g["Properties"]["GroupDescription"]]
    groups = resources_of("Staging", "Foundation", "AWS::EC2::SecurityGroup").values()
    (group,) = [g for g in groups if "interface endpoints" in g["Properties"]["GroupDescription"]]
    assert group["Properties"]["SecurityGroupIngress"] == [
        {
            "CidrIp": "10.20.0.0/16",
            "Description": "HTTPS from the VPC",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    # No egress from endpoints: CDK renders "deny all" as a rule to an unroutable address.
    assert group["Properties"]["SecurityGroupEgress"][0]["CidrIp"] == "255.255.255.255/32"


@pytest.mark.parametrize("stage", STAGES)
def test_every_bucket_is_secure(stage: str, resources_of) -> None:
    buckets = resources_of(stage, "Foundation", "AWS::S3::Bucket")
    policies = resources_of(stage, "Foundation", "AWS::S3::BucketPolicy").values()
    assert buckets
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
        assert rules["AbortIncompleteMultipartUploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
        sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        if "LoggingConfiguration" in props:
            assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
            assert sse["BucketKeyEnabled"] is True
        else:  # the access-log destination itself: S3 log delivery supports SSE-S3 only
            assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        expected_deletion = "Delete" if stage == "Dev" else "Retain"
        assert bucket["DeletionPolicy"] == expected_deletion, logical_id
        (policy,) = [p for p in policies if p["Properties"]["Bucket"] == {"Ref": logical_id}]
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ), logical_id
        assert any(
            s["Effect"] == "Deny" and "s3:TlsVersion" in s["Condition"].get("NumericLessThan", {}) for s in statements
        ), logical_id


def test_access_logs_bucket_lifecycle_from_config(resources_of) -> None:
    buckets = resources_of("Prod", "Foundation", "AWS::S3::Bucket").values()
    (logs_bucket,) = [b for b in buckets if "LoggingConfiguration" not in b["Properties"]]
    rules = {r["Id"]: r for r in logs_bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["CurrentVersions"]["ExpirationInDays"] == 730
    assert rules["CurrentVersions"]["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]


def test_prod_stacks_are_termination_protected(assembly: Assembly) -> None:
    import json

    for stage, protected in (("Dev", False), ("Prod", True)):
        manifest = json.loads((assembly.stage_dir(stage) / "manifest.json").read_text())
        (stack,) = [a for a in manifest["artifacts"].values() if a.get("displayName") == f"{stage}/Foundation"]
        assert stack["properties"].get("terminationProtection", False) is protected
