"""Glue jobs inside the environment's VPC: a NETWORK connection in an isolated subnet.

The ETL jobs handle raw PII and read the pseudonymisation key. Where the environment's VPC has
every interface endpoint Glue needs (`GLUE_ENDPOINTS`), the jobs run through this connection:
their workers get network interfaces in an isolated subnet, talk to each other (Spark needs it)
and reach AWS services only through the VPC endpoints (the subnets have no other route out).
Environments without those endpoints run the jobs in Glue's own network (see docs/security.md).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.compliance import Finding, acknowledge_resource_wildcard, grant_policy_of
from infra.grants import add_statements

# What a Glue 5 job of this lake calls besides S3 (gateway endpoint, always present).
GLUE_ENDPOINTS = (
    "glue",
    "secrets_manager",
    "cloudwatch_logs",
    "cloudwatch_monitoring",
    "kms",
    "sts",
    "lakeformation",
)
# Describe calls Glue makes with the job role to place workers; EC2 offers no resource-level permissions for them.
NETWORK_DESCRIBE_ACTIONS = [
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeVpcEndpoints",
]
GLUE_TAG_KEY = "aws-glue-service-resource"


def glue_can_run_in_vpc(interface_endpoints: tuple[str, ...]) -> bool:
    return set(GLUE_ENDPOINTS) <= set(interface_endpoints)


class GlueNetwork(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str, vpc: ec2.IVpc, subnet: ec2.ISubnet) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self._subnet = subnet
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            allow_all_outbound=False,
            description="Glue ETL workers: Spark traffic among themselves, HTTPS to AWS services via VPC endpoints",
        )
        sg = self.security_group
        sg.add_ingress_rule(sg, ec2.Port.all_tcp(), "Spark driver and executors of the same jobs (Glue requirement)")
        sg.add_egress_rule(sg, ec2.Port.all_tcp(), "Spark driver and executors of the same jobs (Glue requirement)")
        # Isolated subnets route only to the S3 gateway endpoint and the interface endpoints.
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS services through VPC endpoints")
        stack = cdk.Stack.of(self)
        self.connection = glue.CfnConnection(
            self,
            "Connection",
            catalog_id=stack.account,
            connection_input=glue.CfnConnection.ConnectionInputProperty(
                connection_type="NETWORK",
                name=name,
                description="Glue ETL jobs run in the environment's isolated subnets",
                physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                    availability_zone=subnet.availability_zone,
                    security_group_id_list=[sg.security_group_id],
                    subnet_id=subnet.subnet_id,
                ),
            ),
        )
        # The zone is the subnet's, pinned in each environment's config on purpose (see IsolatedNetwork).
        self.connection.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})

    def grant_use(self, role: iam.IRole) -> None:
        """What Glue needs from the job role to place its workers in the subnet (and nothing else)."""
        stack = cdk.Stack.of(self)
        interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
        subnet = stack.format_arn(service="ec2", resource="subnet", resource_name=self._subnet.subnet_id)
        group = stack.format_arn(
            service="ec2", resource="security-group", resource_name=self.security_group.security_group_id
        )
        connection = stack.format_arn(service="glue", resource="connection", resource_name=self.name)
        catalog = stack.format_arn(service="glue", resource="catalog")
        statements = [
            iam.PolicyStatement(actions=["glue:GetConnection"], resources=[catalog, connection]),
            iam.PolicyStatement(actions=NETWORK_DESCRIBE_ACTIONS, resources=["*"]),
            iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[interfaces, subnet, group]),
            iam.PolicyStatement(
                actions=["ec2:DeleteNetworkInterface"],
                resources=[interfaces],
                conditions={"Null": {f"aws:ResourceTag/{GLUE_TAG_KEY}": "false"}},
            ),
            iam.PolicyStatement(
                actions=["ec2:CreateTags", "ec2:DeleteTags"],
                resources=[interfaces],
                conditions={"ForAllValues:StringEquals": {"aws:TagKeys": [GLUE_TAG_KEY]}},
            ),
        ]
        add_statements(role, statements)
        acknowledge_resource_wildcard(grant_policy_of(role), stack.resolve(interfaces), Finding.GLUE_WORKER_INTERFACES)
