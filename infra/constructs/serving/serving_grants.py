"""Every permission of the serving stack, as tables: the deployer's functions and the SageMaker role.

The deployer may touch only this environment's endpoint (fixed name), the models and endpoint
configurations under its name prefix, the packages of its model package group, its own alarms and its
own scaling registration (tagged `telecom-ml:endpoint=<endpoint>`; scalable-target ARNs carry a
service-generated id, so they are scoped by tag). The SageMaker role writes capture and async output
under the endpoint's prefixes of the ML artefact bucket and publishes to the async topics.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import IConstruct

from infra.compliance import (
    Finding,
    acknowledge_grant_policy,
    acknowledge_resource_wildcard,
    acknowledge_resource_wildcards,
    grant_policy_of,
)
from infra.grants import add_statements, grant_key, s3_context
from infra.logical_ids import logical_id_of, logical_ids_in, make_logical_id
from infra.pipeline.churn import BASELINE_PREDICTIONS
from infra.template_hygiene import keep_only_dependencies

if TYPE_CHECKING:
    from infra.config import PromotionConfig
    from stacks.serving_stack import ServingStack

TAG = "telecom-ml:endpoint"
AUTOSCALING_SLR = "sagemaker.application-autoscaling.amazonaws.com"
LEDGER_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
ENI_DESCRIBE = ["ec2:DescribeDhcpOptions", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets", "ec2:DescribeVpcs"]


def sagemaker_arns(stack: ServingStack, group: str) -> dict[str, str]:
    base = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
    name = stack.endpoint_name
    return {
        "endpoint": f"{base}:endpoint/{name}",
        "models": f"{base}:model/{name}-*",
        "configs": f"{base}:endpoint-config/{name}-*",
        "packages": f"{base}:model-package/{group}/*",
    }


def alarm_arns(stack: ServingStack, names: list[str]) -> list[str]:
    prefix = f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:"
    return [prefix + name for name in names]


def monitoring_arns(stack: ServingStack) -> dict[str, list[str]]:
    """The Model Monitor schedules the deployer keeps and the job definitions they may name (lower case: IAM
    matches SageMaker ARNs that way). Job definitions are named by type: data- or model-quality."""
    base = f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}"
    kinds = {"DataQuality": "data-quality-job-definition", "ModelQuality": "model-quality-job-definition"}
    specs = stack.monitoring_schedules
    return {
        "schedules": [f"{base}:monitoring-schedule/{_lower(s['name'])}" for s in specs],
        "job_definitions": [f"{base}:{kinds[s['type']]}/{_lower(s['job_definition_name'])}" for s in specs],
    }


def _lower(name: str) -> str:
    """SageMaker ARNs are lower case; a name that is a deploy-time token is passed through untouched."""
    return name if cdk.Token.is_unresolved(name) else name.lower()


def _grant_follow_up(stack: ServingStack, ml_key: kms.IKey, fn: Mapping[str, iam.IRole]) -> None:
    """Current baseline (read the package's baselines, write one prefix), schedules, the batch scoring start."""
    role, bucket = fn["follow_up"], stack.ml_artifacts
    # The package's baseline predictions: only objects of that one name, under the evaluate steps' outputs.
    predictions = [f"{p}*/{BASELINE_PREDICTIONS}" for p in stack.predictions_source_prefixes]
    add_statements(role, [
        iam.PolicyStatement(actions=["s3:GetObject"],
                            resources=[bucket.arn_for_objects(f"{p}*") for p in stack.baseline_source_prefixes]),
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects(key) for key in predictions]),
        iam.PolicyStatement(actions=["s3:PutObject", "s3:DeleteObject"],
                            resources=[bucket.arn_for_objects(f"{stack.current_baseline_prefix}*")]),
    ])
    grant_key(role, ml_key, via="s3", write=True, context=s3_context(bucket))
    rendered = cross_stack_arn_as_nag_renders(bucket)
    acknowledge_resource_wildcards(
        grant_policy_of(role),
        [*(f"{rendered}/{p}*" for p in (*stack.baseline_source_prefixes, stack.current_baseline_prefix)),
         *(f"{rendered}/{key}" for key in predictions)],
        Finding.DEPLOYER_NAMED_PREFIXES,
    )
    monitoring = monitoring_arns(stack)
    if monitoring["schedules"]:
        keep = ["sagemaker:DescribeMonitoringSchedule", "sagemaker:CreateMonitoringSchedule",
                "sagemaker:UpdateMonitoringSchedule", "sagemaker:AddTags"]
        for name in ("follow_up", "teardown"):
            fn[name].add_to_principal_policy(iam.PolicyStatement(
                actions=keep, resources=[*monitoring["schedules"], *monitoring["job_definitions"]]))
        fn["teardown"].add_to_principal_policy(iam.PolicyStatement(
            actions=["sagemaker:DeleteMonitoringSchedule"], resources=monitoring["schedules"]))
    if stack.batch_scoring_pipeline_name:
        pipeline = (f"arn:{stack.partition}:sagemaker:{stack.region}:{stack.account}:"
                    f"pipeline/{stack.batch_scoring_pipeline_name.lower()}")
        role.add_to_principal_policy(iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"],
                                                         resources=[pipeline]))


def grant_deployer(stack: ServingStack, ml_key: kms.IKey, group: str) -> None:
    deployer = stack.deployer
    fn = {name: f.role for name, f in deployer.functions.items()}
    fn["teardown"] = deployer.teardown.role
    arn = sagemaker_arns(stack, group)
    own_alarms = alarm_arns(stack, [f"TargetTracking-endpoint/{stack.endpoint_name}/*"]
                            + ([stack.wake_alarm_name] if stack.config.mode == "async" else []))
    tagged = {"StringEquals": {f"aws:ResourceTag/{TAG}": stack.endpoint_name}}
    state_machine = deployer.state_machine
    states = f"arn:{stack.partition}:states:{stack.region}:{stack.account}"
    executions = f"{states}:execution:{deployer.state_machine_name}:*"
    # (who, actions, resources, conditions)
    table: list[tuple[tuple[str, ...], list[str], list[str], dict[str, Any] | None]] = [
        (("prepare", "start", "follow_up"), ["sagemaker:DescribeModelPackage"], [arn["packages"]], None),
        (("prepare",), ["sagemaker:DescribeModel", "sagemaker:CreateModel", "sagemaker:AddTags"],
         [arn["models"]], None),
        (("prepare",), ["sagemaker:DescribeEndpointConfig", "sagemaker:CreateEndpointConfig", "sagemaker:AddTags"],
         [arn["configs"]], None),
        (("prepare", "start", "check", "scale", "teardown"), ["sagemaker:DescribeEndpoint"], [arn["endpoint"]], None),
        (("start",), ["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint",
                      "sagemaker:AddTags"], [arn["endpoint"], arn["configs"]], None),
        (("start",), ["cloudwatch:DescribeAlarms"], alarm_arns(stack, stack.rollback.alarm_names), None),
        (("prepare",), ["iam:PassRole"], [stack.sagemaker_role.role_arn],
         {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        (("prepare", "start"), ["kms:DescribeKey"], [ml_key.key_arn],
         {"StringEquals": {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"}}),
        (("prepare", "start"), ["kms:CreateGrant"], [ml_key.key_arn],
         {"StringEquals": {"kms:ViaService": f"sagemaker.{stack.region}.amazonaws.com"},
          "Bool": {"kms:GrantIsForAWSResource": "true"}}),
        (("prepare", "scale", "teardown"), ["application-autoscaling:DescribeScalableTargets",
                                            "application-autoscaling:DescribeScalingPolicies"], ["*"], None),
        (("prepare", "teardown"), ["application-autoscaling:DeregisterScalableTarget"], ["*"], tagged),
        (("scale",), ["application-autoscaling:RegisterScalableTarget"], ["*"],
         {"StringEquals": {f"aws:RequestTag/{TAG}": stack.endpoint_name}}),
        (("scale",), ["application-autoscaling:PutScalingPolicy"], ["*"], tagged),
        (("scale",), ["sagemaker:DescribeEndpointConfig"], [arn["configs"]], None),
        (("scale",), ["sagemaker:UpdateEndpointWeightsAndCapacities"], [arn["endpoint"]], None),
        (("scale",), ["iam:CreateServiceLinkedRole"],
         [f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/{AUTOSCALING_SLR}/*"],
         {"StringEquals": {"iam:AWSServiceName": AUTOSCALING_SLR}}),
        (("scale",), ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
         own_alarms, None),
        (("prepare", "teardown"), ["cloudwatch:DeleteAlarms"], own_alarms, None),
        (("teardown",), ["sagemaker:DeleteEndpoint"], [arn["endpoint"]], None),
        (("teardown",), ["sagemaker:DeleteEndpointConfig"], [arn["configs"]], None),
        (("teardown",), ["sagemaker:DeleteModel"], [arn["models"]], None),
        (("teardown",), ["states:ListExecutions"], [state_machine.state_machine_arn], None),
        (("teardown",), ["states:StopExecution"], [executions], None),
    ]
    statements: dict[str, list[iam.PolicyStatement]] = {name: [] for name in fn}
    for who, actions, resources, conditions in table:
        for name in who:
            statements[name].append(iam.PolicyStatement(actions=actions, resources=resources, conditions=conditions))
    for name, role in fn.items():
        add_statements(role, statements[name])
    _grant_follow_up(stack, ml_key, fn)
    ledger = deployer.ledger
    ledger_key_conditions = {"StringEquals": {"kms:ViaService": f"dynamodb.{stack.region}.amazonaws.com",
                                              "kms:EncryptionContext:aws:dynamodb:tableName": ledger.table_name}}
    for role in fn.values():
        add_statements(role, [
            iam.PolicyStatement(actions=LEDGER_ACTIONS, resources=[ledger.table_arn]),
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[ml_key.key_arn],
                                conditions=ledger_key_conditions),
        ])
    for function in [*deployer.functions.values(), deployer.teardown]:
        # The function already references its role (GetAtt); it waits for the role's policy, nothing else.
        keep_only_dependencies(function.function, grant_policy_of(function.role))
    for role in fn.values():
        acknowledge_grant_policy(role, Finding.DEPLOYER_APIS_WITHOUT_RESOURCE_PERMISSIONS)
        acknowledge_resource_wildcards(grant_policy_of(role), _named_wildcards(stack, role),
                                       Finding.DEPLOYER_NAMED_PREFIXES)


def grant_promotion(stack: ServingStack, ml_key: kms.IKey, promotion: PromotionConfig, group: str) -> None:
    """The promotion role reads the source account's approved packages and pipeline files (the source grants
    them by resource policy, infra/constructs/serving/promotion.py) and registers copies in this group."""
    assert stack.promotion is not None
    role, bucket, partition = stack.promotion.role, stack.ml_artifacts, stack.partition
    source = f"arn:{partition}:sagemaker:{promotion.source_region}:{promotion.source_account}"
    target = f"arn:{partition}:sagemaker:{stack.region}:{stack.account}"
    source_files = f"arn:{partition}:s3:::*/{stack.pipeline_prefix}*"
    source_keys = f"arn:{partition}:kms:{promotion.source_region}:{promotion.source_account}:key/*"
    statements = [
        iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage"],
                            resources=[f"{source}:model-package/{promotion.source_group.lower()}/*"]),
        iam.PolicyStatement(actions=["sagemaker:CreateModelPackage"],
                            resources=[f"{target}:model-package/{group.lower()}/*",
                                       f"{target}:model-package-group/{group.lower()}"]),
        iam.PolicyStatement(actions=["sagemaker:DescribeModelPackage", "sagemaker:UpdateModelPackage"],
                            resources=[f"{target}:model-package/{group.lower()}/*"]),
        # The source bucket's name is generated in its own account: the statement is limited to objects under
        # the pipeline prefix of buckets owned by the source account (whose bucket policy names this role).
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[source_files],
                            conditions={"StringEquals": {"s3:ResourceAccount": promotion.source_account}}),
        iam.PolicyStatement(actions=["kms:Decrypt"], resources=[source_keys], conditions={
            "StringEquals": {"kms:ViaService": f"s3.{promotion.source_region}.amazonaws.com"}}),
        iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
                            resources=[bucket.arn_for_objects(f"{stack.promoted_prefix}*")]),
    ]
    add_statements(role, statements)
    grant_key(role, ml_key, via="s3", write=True, context=s3_context(bucket))
    keep_only_dependencies(stack.promotion.function, grant_policy_of(role))
    policy = grant_policy_of(role)
    acknowledge_grant_policy(role, Finding.DEPLOYER_APIS_WITHOUT_RESOURCE_PERMISSIONS)
    acknowledge_resource_wildcard(policy, f"{cross_stack_arn_as_nag_renders(bucket)}/{stack.promoted_prefix}*",
                                  Finding.PROMOTION_READS_THE_SOURCE_ACCOUNT)
    acknowledge_resource_wildcards(policy, _named_wildcards(stack, role), Finding.PROMOTION_READS_THE_SOURCE_ACCOUNT)


def acknowledge_state_machine_invocations(stack: ServingStack) -> None:
    """Step Functions' LambdaInvoke grants each function and its versions (`<function ARN>:*`)."""
    role = stack.deployer.state_machine.role
    acknowledge_resource_wildcards(grant_policy_of(role), _named_wildcards(stack, role),
                                   Finding.STATE_MACHINE_INVOKES_ITS_FUNCTIONS)


def _named_wildcards(stack: ServingStack, role: iam.IRole) -> list[str]:
    """The wildcard resources in `role`'s policy that name this stack's resources or literal ARNs, as cdk-nag
    renders them (pseudo parameters as <AWS::...>, attributes as <LogicalId.Arn>)."""
    policy = grant_policy_of(role)
    document = stack.resolve(policy.node.default_child.policy_document)  # type: ignore[union-attr]
    local = _local_logical_ids(stack)
    found = []
    for statement in document["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            rendered = _render(resource, local)
            if rendered and rendered != "*" and "*" in rendered and rendered not in found:
                found.append(rendered)
    return found


_LOCAL_IDS: weakref.WeakKeyDictionary[ServingStack, set[str]] = weakref.WeakKeyDictionary()


def _local_logical_ids(stack: ServingStack) -> set[str]:
    """The stack's logical ids, read once, at its first grant: the grants come last in ServingStack and name
    resources built before them. A resource added after that and named in a wildcard would leave its
    acknowledgement out, and the compliance gate would fail the synth on it (never a silent pass)."""
    if stack not in _LOCAL_IDS:
        _LOCAL_IDS[stack] = logical_ids_in(stack)
    return _LOCAL_IDS[stack]


def _render(resource: object, local: set[str]) -> str | None:
    """cdk-nag's rendering of a policy resource; None where it names another stack's resource."""
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Join" in resource:
        separator, parts = resource["Fn::Join"]
        rendered = [_render(p, local) for p in parts]
        return None if None in rendered else separator.join(r for r in rendered if r is not None)
    if isinstance(resource, dict) and "Ref" in resource:
        return f"<{resource['Ref']}>"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        logical_id, attribute = resource["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>" if logical_id in local else None
    return None


def grant_sagemaker_role(stack: ServingStack, ml_key: kms.IKey) -> None:
    """What SageMaker does as the execution role while serving: capture, async I/O, notices, VPC interfaces."""
    role, bucket = stack.sagemaker_role, stack.ml_artifacts
    writes = [f"{stack.capture_prefix}{stack.endpoint_name}/"]
    # Promoted packages' model data lives under promoted/ (the pipeline's own under its prefix, granted there).
    reads: list[str] = [stack.promoted_prefix] if stack.promotion is not None else []
    if stack.async_topics is not None:
        prefixes = stack.async_prefixes
        writes += [prefixes["output"], prefixes["failures"]]
        reads.append(prefixes["input"])
        topics = [stack.async_topics.success.topic_arn, stack.async_topics.error.topic_arn]
        role.add_to_principal_policy(iam.PolicyStatement(actions=["sns:Publish"], resources=topics))
        grant_key(role, ml_key, via="sns", write=True)
    objects = [iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                                   resources=[bucket.arn_for_objects(f"{p}*") for p in writes])]
    if reads:
        objects.append(iam.PolicyStatement(actions=["s3:GetObject"],
                                           resources=[bucket.arn_for_objects(f"{p}*") for p in reads]))
    add_statements(role, objects)
    grant_key(role, ml_key, via="s3", write=True, context=s3_context(bucket))
    if stack.security_group is not None:
        _grant_endpoint_interfaces(stack)
        acknowledge_grant_policy(role, Finding.APIS_WITHOUT_RESOURCE_PERMISSIONS)
    else:
        acknowledge_grant_policy(role)
    policy = grant_policy_of(role)
    rendered_bucket = cross_stack_arn_as_nag_renders(bucket)
    acknowledge_resource_wildcards(
        policy,
        [*(f"{rendered_bucket}/{prefix}*" for prefix in writes + reads), *_named_wildcards(stack, role)],
        Finding.SERVING_PREFIXES_AND_INTERFACES,
    )


def cross_stack_arn_as_nag_renders(resource: IConstruct) -> str:
    """How cdk-nag names the ARN of `resource` (another stack's) in this stack's policies.

    CDK 2.275 references another stack's attribute with Fn::GetStackOutput of an output the producer
    publishes under `Publish/Output<reference as JSON>`; cdk-nag prints that intrinsic as compact JSON."""
    producer = cdk.Stack.of(resource)
    cfn = resource.node.default_child
    assert isinstance(cfn, cdk.CfnResource)
    reference = {"Fn::GetAtt": [logical_id_of(cfn), "Arn"]}
    output = make_logical_id(["Publish", "Output" + json.dumps(reference, separators=(",", ":"))])
    intrinsic = {"Fn::GetStackOutput": {"StackName": producer.stack_name, "Region": producer.region,
                                        "OutputName": output}}
    return json.dumps(intrinsic, separators=(",", ":"))


def _grant_endpoint_interfaces(stack: ServingStack) -> None:
    """SageMaker creates the endpoint's network interfaces in the isolated subnets as the execution role."""
    role, vpc, group = stack.sagemaker_role, stack.network.vpc, stack.security_group
    assert group is not None
    ec2_arn = f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}"
    interfaces = f"{ec2_arn}:network-interface/*"
    subnets = [f"{ec2_arn}:subnet/{s.subnet_id}" for s in vpc.isolated_subnets]
    add_statements(role, [
        iam.PolicyStatement(actions=["ec2:CreateNetworkInterface"],
                            resources=[interfaces, *subnets, f"{ec2_arn}:security-group/{group.security_group_id}"]),
        iam.PolicyStatement(actions=["ec2:CreateNetworkInterfacePermission", "ec2:DeleteNetworkInterface",
                                     "ec2:DeleteNetworkInterfacePermission"],
                            resources=[interfaces],
                            conditions={"ArnEquals": {"ec2:Vpc": f"{ec2_arn}:vpc/{vpc.vpc_id}"}}),
        iam.PolicyStatement(actions=ENI_DESCRIBE, resources=["*"]),
    ])

