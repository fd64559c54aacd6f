"""A VPC with private isolated subnets only (no internet path), VPC endpoints and flow logs.

Network mode (config `network.mode`): `vpc` adds the workload security group that SageMaker jobs and
the pipeline's Lambda run behind in the isolated subnets; `isolated` runs them outside the VPC (jobs with
network isolation), so the environment needs no interface endpoints and gets none.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.compliance import Finding, acknowledge, acknowledge_grant_policy
from infra.config import NetworkConfig
from infra.constructs.foundation.log_retention import retention
from infra.template_hygiene import drop_cdk_handler_role_dependency

# Config name -> interface endpoint service. Names are the config contract (docs/configuration.md).
INTERFACE_SERVICES: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "sagemaker_api": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "sagemaker_runtime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "sagemaker_studio": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_STUDIO,
    "glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "cloudwatch_logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "cloudwatch_monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "ecr_api": ec2.InterfaceVpcEndpointAwsService.ECR,
    "ecr_docker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "secrets_manager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "states": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "firehose": ec2.InterfaceVpcEndpointAwsService.KINESIS_FIREHOSE,
    "athena": ec2.InterfaceVpcEndpointAwsService.ATHENA,
    "lakeformation": ec2.InterfaceVpcEndpointAwsService.LAKE_FORMATION,
}


class IsolatedNetwork(Construct):
    """What is placed here (Glue ETL where the VPC has Glue's endpoints, see lake/glue_network.py) reaches
    AWS services only through the S3 gateway endpoint and the configured interface endpoints."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: NetworkConfig,
        availability_zones: tuple[str, str],
        logs_key: kms.IKey,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.vpc_cidr),
            availability_zones=list(availability_zones),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated",
                    subnet_type=ec2.SubnetType.PRIVATE_ISOLATED,
                    cidr_mask=20,
                )
            ],
            restrict_default_security_group=True,
        )
        for subnet in self.vpc.isolated_subnets:
            # Zones are pinned in each environment's config on purpose (Inferentia2 capacity and
            # deterministic synth), so cfn-lint's "hard-coded AZ" advice does not apply here.
            cfn_subnet = subnet.node.default_child
            assert isinstance(cfn_subnet, cdk.CfnResource)
            cfn_subnet.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3010"]}})
        drop_cdk_handler_role_dependency(cdk.Stack.of(self), "Custom::VpcRestrictDefaultSGCustomResourceProvider")
        self._add_flow_logs(config, logs_key, removal_policy)
        self.isolated_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.isolated_subnets]
        )
        self.mode = config.mode
        self.endpoint_security_group: ec2.SecurityGroup | None = None
        self.interface_endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        if config.interface_endpoints:
            self._add_interface_endpoints(config)
        self.workload_security_group = self._workload_security_group() if config.mode == "vpc" else None

    def _workload_security_group(self) -> ec2.SecurityGroup:
        """SageMaker jobs and Lambdas in the VPC: HTTPS out (only the S3 gateway and interface endpoints are
        routable, there is no internet path), and any traffic among themselves (distributed training)."""
        group = ec2.SecurityGroup(
            self,
            "WorkloadSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="SageMaker jobs and Lambdas: HTTPS to VPC and gateway endpoints, peers within the group",
        )
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to the S3 gateway and interface endpoints")
        group.add_ingress_rule(group, ec2.Port.all_traffic(), "Peers of a distributed job")
        group.add_egress_rule(group, ec2.Port.all_traffic(), "Peers of a distributed job")
        for rule in group.node.children:
            if isinstance(rule, ec2.CfnSecurityGroupIngress):
                acknowledge(rule, Finding.PEERS_OF_A_DISTRIBUTED_JOB)
        return group

    def _add_flow_logs(self, config: NetworkConfig, logs_key: kms.IKey, removal_policy: cdk.RemovalPolicy) -> None:
        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=logs_key,
            retention=retention(config.flow_logs_retention_days),
            removal_policy=removal_policy,
        )
        flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        assert isinstance(flow_log.iam_role, iam.Role)
        acknowledge_grant_policy(flow_log.iam_role)

    def _add_interface_endpoints(self, config: NetworkConfig) -> None:
        # One security group for all interface endpoints: HTTPS from inside the VPC only.
        # The CIDR is the literal from config (not a token) so policy checks can read it.
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="VPC interface endpoints: HTTPS from inside the VPC",
        )
        self.endpoint_security_group.add_ingress_rule(
            ec2.Peer.ipv4(config.vpc_cidr), ec2.Port.tcp(443), "HTTPS from the VPC"
        )
        for name in config.interface_endpoints:
            self.interface_endpoints[name] = self.vpc.add_interface_endpoint(
                name.replace("_", "-"),
                service=INTERFACE_SERVICES[name],
                subnets=self.isolated_subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
