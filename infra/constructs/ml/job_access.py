"""What a SageMaker job (or a Lambda in the VPC) needs beyond its data: images, logs, metrics, volume
encryption and network interfaces. Each grant names its resources; the few actions without
resource-level permissions are on infra.compliance's allow-list, each with its reason.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from infra.config import IMAGE_URI
from infra.grants import add_statements

JOB_KINDS = ("ProcessingJobs", "TrainingJobs")


def repository_arn(stack: cdk.Stack, image_uri: str) -> str:
    match = IMAGE_URI.match(image_uri)
    if match is None:
        raise ValueError(f"'{image_uri}' is not an ECR image URI")
    return stack.format_arn(service="ecr", region=match["region"], account=match["account"], resource="repository",
                            resource_name=match["repository"])


def grant_image_pull(role: iam.IRole, image_uris: list[str]) -> None:
    """Pull exactly these images' repositories (AWS's image registries); the token call has no resource."""
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=sorted({repository_arn(cdk.Stack.of(role), uri) for uri in image_uris}),
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))


def job_log_group_arns(stack: cdk.Stack) -> list[str]:
    """SageMaker names its job log groups /aws/sagemaker/<Kind>Jobs and one stream per job and instance."""
    arns = []
    for kind in JOB_KINDS:
        group = stack.format_arn(service="logs", resource="log-group", resource_name=f"/aws/sagemaker/{kind}",
                                 arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        arns += [group, f"{group}:log-stream:*"]
    return arns


def grant_job_logs_and_metrics(role: iam.IRole) -> None:
    stack = cdk.Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            resources=job_log_group_arns(stack),
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": [f"/aws/sagemaker/{k}" for k in JOB_KINDS]}},
        )
    )


def grant_volume_encryption(role: iam.IRole, key: kms.IKey) -> None:
    """SageMaker encrypts job volumes with `key` through a grant it creates for the role (AWS resources only)."""
    region = cdk.Stack.of(role).region
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:CreateGrant", "kms:DescribeKey"],
            resources=[key.key_arn],
            conditions={
                "Bool": {"kms:GrantIsForAWSResource": "true"},
                "StringEquals": {
                    "kms:ViaService": [f"sagemaker.{region}.amazonaws.com", f"ec2.{region}.amazonaws.com"]
                },
            },
        )
    )


def network_interfaces_arn(stack: cdk.Stack) -> str:
    """Network interfaces get their ids when SageMaker or Lambda creates them."""
    return stack.format_arn(service="ec2", resource="network-interface", resource_name="*")


def grant_network_interfaces(role: iam.IRole, vpc: ec2.IVpc, security_group: ec2.ISecurityGroup, *,
                             lambda_service: bool = False) -> None:
    """Network interfaces in `vpc`'s isolated subnets behind `security_group` (SageMaker jobs or Lambda)."""
    stack = cdk.Stack.of(role)
    subnets = [stack.format_arn(service="ec2", resource="subnet", resource_name=s.subnet_id)
               for s in vpc.isolated_subnets]
    group = stack.format_arn(service="ec2", resource="security-group", resource_name=security_group.security_group_id)
    interfaces = network_interfaces_arn(stack)
    in_vpc = {"ArnEquals": {"ec2:Vpc": stack.format_arn(service="ec2", resource="vpc", resource_name=vpc.vpc_id)}}
    changes = ["ec2:DeleteNetworkInterface"]
    changes += (["ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"] if lambda_service else
                ["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterfacePermission"])
    describe = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    if not lambda_service:
        describe += ["ec2:DescribeDhcpOptions", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"]
    add_statements(role, [
        iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"], resources=[*subnets, group, interfaces]),
        iam.PolicyStatement(actions=changes, resources=[interfaces], conditions=in_vpc),
        iam.PolicyStatement(actions=describe, resources=["*"]),
    ])
