"""Glue inside the network where the VPC allows it, and every listing scoped by a prefix condition."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.conftest import Assembly


def resources(assembly: Assembly, stage: str, stack: str, resource_type: str) -> dict[str, Any]:
    all_resources = assembly.template(stage, stack)["Resources"]
    return {k: r for k, r in all_resources.items() if r["Type"] == resource_type}


def role_statements(assembly: Assembly, stage: str, role_prefix: str) -> list[dict[str, Any]]:
    return [
        s
        for p in resources(assembly, stage, "DataLake", "AWS::IAM::Policy").values()
        if role_prefix in json.dumps(p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("stage", ["Staging", "Prod"])
def test_glue_jobs_run_through_a_connection_in_an_isolated_subnet(assembly: Assembly, stage: str) -> None:
    (connection,) = resources(assembly, stage, "DataLake", "AWS::Glue::Connection").values()
    spec = connection["Properties"]["ConnectionInput"]
    assert spec["ConnectionType"] == "NETWORK" and spec["Name"] == f"telecom-ml-{stage.lower()}-etl"
    requirements = json.dumps(spec["PhysicalConnectionRequirements"])
    assert "NetworkVpcisolatedSubnet1" in requirements and "GlueNetworkSecurityGroup" in requirements
    for job in resources(assembly, stage, "DataLake", "AWS::Glue::Job").values():
        assert job["Properties"]["Connections"] == {"Connections": [spec["Name"]]}
    (group,) = resources(assembly, stage, "DataLake", "AWS::EC2::SecurityGroup").values()
    egress = group["Properties"]["SecurityGroupEgress"]
    rules = [(e["IpProtocol"], e["FromPort"], e["ToPort"], e["CidrIp"]) for e in egress]
    assert rules == [("tcp", 443, 443, "0.0.0.0/0")]
    self_rules = list(resources(assembly, stage, "DataLake", "AWS::EC2::SecurityGroupIngress").values()) + list(
        resources(assembly, stage, "DataLake", "AWS::EC2::SecurityGroupEgress").values()
    )
    assert len(self_rules) == 2 and all(r["Properties"]["FromPort"] == 0 for r in self_rules)


def test_dev_without_glue_endpoints_runs_glue_in_its_own_network(assembly: Assembly) -> None:
    assert not resources(assembly, "Dev", "DataLake", "AWS::Glue::Connection")
    for job in resources(assembly, "Dev", "DataLake", "AWS::Glue::Job").values():
        assert "Connections" not in job["Properties"]


def test_glue_role_may_create_interfaces_only_in_its_subnet_and_delete_only_glues(assembly: Assembly) -> None:
    statements = role_statements(assembly, "Prod", "ConformSubscribersRole")
    (create,) = [s for s in statements if s["Action"] == "ec2:CreateNetworkInterface"]
    targets = json.dumps(create["Resource"])
    assert "network-interface/*" in targets and ":subnet/" in targets and ":security-group/" in targets
    (delete,) = [s for s in statements if s["Action"] == "ec2:DeleteNetworkInterface"]
    assert delete["Condition"] == {"Null": {"aws:ResourceTag/aws-glue-service-resource": "false"}}
    assert not [s for s in role_statements(assembly, "Dev", "ConformSubscribersRole") if "ec2:" in json.dumps(s)]


def test_glue_logs_are_limited_to_the_jobs_own_log_groups(assembly: Assembly) -> None:
    (logs,) = [s for s in role_statements(assembly, "Dev", "ConformSubscribersRole") if s.get("Sid") == "GlueJobLogs"]
    rendered = json.dumps(logs["Resource"])
    assert "/aws-glue/jobs/telecom-ml-dev-etl-role/" in rendered and "ConformSubscribersRole" in rendered
    assert "log-group:/aws-glue/*" not in rendered


@pytest.mark.parametrize("stage", ["Dev", "Prod"])
def test_every_bucket_listing_carries_a_prefix_condition(assembly: Assembly, stage: str) -> None:
    listings = [
        s
        for stack in ("Foundation", "DataLake")
        for p in resources(assembly, stage, stack, "AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "s3:ListBucket" in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert len(listings) >= 8
    for statement in listings:
        prefixes = statement["Condition"]["StringLike"]["s3:prefix"]
        assert prefixes and all(p and p != "*" for p in prefixes), statement


def test_lake_formation_registers_the_dataset_folder_not_the_bucket(assembly: Assembly) -> None:
    for location in resources(assembly, "Dev", "DataLake", "AWS::LakeFormation::Resource").values():
        arn = json.dumps(location["Properties"]["ResourceArn"])
        assert arn.endswith(('/ibm_telco_churn"]]}', '/ibm_telco_churn_scores"]]}')), arn  # dataset, its scores
