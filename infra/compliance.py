"""Compliance gate: cdk-nag 3 packs on the whole app, and every acknowledgement in one place.

Each acknowledgement names its rule(s), applies to the narrowest construct that needs it and
carries the reason a security reviewer reads in the validation report and the template
metadata. Constructs call `acknowledge(construct, Finding.X)`; they never write reasons.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam
from cdk_nag import (
    AwsSolutionsChecks,
    HIPAASecurityChecks,
    NIST80053R5Checks,
    WriteNagSuppressionsToCloudFormationAspect,
)
from constructs import IConstruct

from infra.logical_ids import resource_of

# App context key: "off" synthesizes without acknowledgements, so a test can prove each one fires;
# each would-be acknowledgement is then recorded here as (construct path, rule id) instead.
ACKNOWLEDGEMENTS_CONTEXT = "compliance:acknowledgements"
SKIPPED_ACKNOWLEDGEMENTS: list[tuple[str, str]] = []

# The only actions any identity policy may allow on Resource "*": APIs without resource-level
# permissions (IAM service authorization reference). A statement outside this list fails synth,
# whatever the nag acknowledgements on its policy say.
ACTIONS_ALLOWED_ON_ANY_RESOURCE = frozenset(
    {
        "cloudwatch:PutMetricData",  # only with a cloudwatch:namespace condition (checked below)
        # EC2 Describe calls Glue, SageMaker and Lambda make to place network interfaces in the VPC.
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcAttribute",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeVpcs",
        # Application Auto Scaling: Describe* have no resource-level permissions; scalable-target ARNs carry a
        # service-generated id, so registration and changes are scoped by the endpoint tag (checked below).
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
        "ecr:GetAuthorizationToken",  # the registry login token; image reads name their repositories
        "lakeformation:GetDataAccess",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        "sagemaker:ListModelPackages",  # the champion lookup; package reads name the group
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
)
CONDITION_REQUIRED_ON_ANY_RESOURCE = {
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "application-autoscaling:RegisterScalableTarget": "aws:RequestTag/telecom-ml:endpoint",
    "application-autoscaling:PutScalingPolicy": "aws:ResourceTag/telecom-ml:endpoint",
    "application-autoscaling:DeregisterScalableTarget": "aws:ResourceTag/telecom-ml:endpoint",
}

_NIST = "NIST.800.53.R5::NIST.800.53.R5-"
_HIPAA = "HIPAA.Security::HIPAA.Security-"
_AWS = "AwsSolutions::AwsSolutions-"


def enable_compliance_gate(app: cdk.App) -> None:
    """Synth fails (ValidationFailed) on any finding of these packs that is not acknowledged."""
    cdk.Validations.of(app).add_plugins(
        AwsSolutionsChecks(app),
        NIST80053R5Checks(app),
        HIPAASecurityChecks(app),
        ResourceWildcardAllowList(),
    )
    # Copy every acknowledgement, with its reason, into the template metadata (audit trail).
    # Aspects do not cross stage boundaries, so each stage gets its own.
    for scope in [app, *(c for c in app.node.children if cdk.Stage.is_stage(c))]:
        cdk.Aspects.of(scope).add(WriteNagSuppressionsToCloudFormationAspect())


@jsii.implements(cdk.IPolicyValidationPlugin)
class ResourceWildcardAllowList:
    """A validation plugin beside the nag packs: an identity policy may allow an action on Resource "*"
    only if the action is on the allow-list, so an acknowledged IAM5[Resource::*] cannot hide a new one."""

    @property
    def name(self) -> str:
        return "ResourceWildcardAllowList"

    @property
    def rule_ids(self) -> list[str]:
        return ["ActionOnAnyResource"]

    @property
    def version(self) -> str:
        return "1"

    def validate(self, context: cdk.IPolicyValidationContext) -> cdk.PolicyValidationPluginReport:
        violations = []
        for template_path in context.template_paths:
            resources = json.loads(Path(template_path).read_text()).get("Resources", {})
            for logical_id, resource in resources.items():
                for problem in _wildcard_problems(resource):
                    violations.append(
                        cdk.PolicyViolation(
                            rule_name="ActionOnAnyResource",
                            description=f"{logical_id}: {problem} (allow-list in infra/compliance.py)",
                            severity="error",
                            violating_resources=[
                                cdk.PolicyViolatingResource(
                                    resource_logical_id=logical_id,
                                    template_path=template_path,
                                    locations=["Properties"],
                                )
                            ],
                        )
                    )
        return cdk.PolicyValidationPluginReport(success=not violations, violations=violations)


def _wildcard_problems(resource: dict[str, Any]) -> list[str]:
    properties = resource.get("Properties", {})
    documents = []
    if resource.get("Type") in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        documents.append(properties.get("PolicyDocument", {}))
    if resource.get("Type") == "AWS::IAM::Role":
        documents += [p.get("PolicyDocument", {}) for p in properties.get("Policies", [])]
    problems = []
    for statement in (s for d in documents for s in d.get("Statement", [])):
        targets = statement.get("Resource", [])
        if statement.get("Effect") != "Allow" or "*" not in (targets if isinstance(targets, list) else [targets]):
            continue
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            if action not in ACTIONS_ALLOWED_ON_ANY_RESOURCE:
                problems.append(f"{action} on Resource '*' is not on the allow-list")
            required = CONDITION_REQUIRED_ON_ANY_RESOURCE.get(action)
            if required and required not in json.dumps(statement.get("Condition", {})):
                problems.append(f"{action} on Resource '*' needs a {required} condition")
    return problems


class Finding(Enum):
    """(rule ids, reason). The reason states the control and how it is met or why it does not apply."""

    BUCKET_REPLICATION = (
        (f"{_NIST}S3BucketReplicationEnabled", f"{_HIPAA}S3BucketReplicationEnabled"),
        "Cross-region replication is an operator disaster-recovery choice, off by default: subscriber "
        "data residency rules often forbid a copy in another region. Recoverability (CP-9, 164.308(a)(7)) "
        "is met by versioning with noncurrent-version retention and RETAIN removal policy outside dev.",
    )
    ACCESS_LOG_BUCKET_SSE_S3 = (
        (f"{_NIST}S3DefaultEncryptionKMS", f"{_HIPAA}S3DefaultEncryptionKMS"),
        "S3 server access log delivery only supports SSE-S3 on the destination bucket (documented S3 "
        "limitation); the bucket holds request metadata only, is TLS-only and blocks public access.",
    )
    GRANT_POLICY_ON_SINGLE_ROLE = (
        (f"{_NIST}IAMNoInlinePolicy", f"{_HIPAA}IAMNoInlinePolicy"),
        "The policy is the one CDK generates from explicit grants for this single role (AWS::IAM::Policy "
        "attached to it alone). Every statement names its resources (Resource '*' only for the allow-listed "
        "APIs without resource-level permissions, enforced at synth) and is reviewed where the grant is made; "
        "a customer-managed policy attached to the same one role would add no control.",
    )
    XRAY_AND_LOG_DELIVERY_WILDCARDS = (
        (f"{_AWS}IAM5[Resource::*]",),
        "Only the X-Ray trace upload and CloudWatch Logs vended-delivery actions that CDK adds for state "
        "machine tracing and logging use Resource '*': those APIs do not support resource-level "
        "permissions (IAM service authorization reference). All other statements name their resources.",
    )
    QUEUE_IS_A_DEAD_LETTER_QUEUE = (
        (f"{_AWS}SQS3",),
        "This queue is itself the dead-letter queue of an EventBridge rule target (the rule's "
        "DeadLetterConfig, which the check cannot see); a dead-letter queue of a dead-letter queue "
        "would only move the same messages. It is KMS-encrypted, TLS-only and alarmed on depth.",
    )
    PSEUDONYMISATION_KEY_NOT_ROTATED = (
        (f"{_AWS}SMG4", f"{_NIST}SecretsManagerRotationEnabled", f"{_HIPAA}SecretsManagerRotationEnabled"),
        "The secret is the HMAC key that pseudonymises subscriber ids; automatic rotation would give every "
        "subscriber a new pseudonym and silently break joins with all history. It is rotated only by a "
        "planned re-pseudonymisation run. It is KMS-encrypted and readable only by the two ETL job roles.",
    )
    GLUE_JOB_LOG_GROUPS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "With a security configuration that encrypts CloudWatch Logs, Glue 5 writes a job's logs to "
        "/aws-glue/jobs/<security configuration>-role/<job role>/error and /output and names the streams per "
        "run; the wildcard covers only those two groups of this one job role and their streams.",
    )
    OBJECTS_UNDER_ONE_PREFIX = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "Object-level S3 actions must name object ARNs, and the objects under this key prefix are written "
        "at run time, so the ARN ends in a wildcard. Access is limited to one bucket, one key prefix and the "
        "named actions (no s3:* or s3:Get*); listing carries an s3:prefix condition.",
    )
    APIS_WITHOUT_RESOURCE_PERMISSIONS = (
        (f"{_AWS}IAM5[Resource::*]",),
        "Only actions without resource-level permissions in the IAM service authorization reference are "
        "allowed on Resource '*' here, and a validation plugin (ResourceWildcardAllowList) fails synth on any "
        "other: lakeformation:GetDataAccess (Lake Formation table grants scope the data), "
        "cloudwatch:PutMetricData (only with a cloudwatch:namespace condition) and, for Glue jobs that run in "
        "the VPC, the EC2 Describe calls Glue makes to place its workers.",
    )
    GLUE_WORKER_INTERFACES = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "Glue creates the network interfaces of a job's workers at run time, so their ids are unknown: creation "
        "is limited to this environment's Glue subnet and security group, deletion to interfaces carrying "
        "Glue's aws-glue-service-resource tag, and tagging to that one tag key.",
    )
    LAMBDA_XRAY_TRACING = (
        (f"{_AWS}IAM5[Resource::*]",),
        "Only xray:PutTraceSegments and xray:PutTelemetryRecords, which CDK adds for Lambda active tracing, use "
        "Resource '*': they have no resource-level permissions (IAM service authorization reference). All other "
        "statements of this policy name their resources.",
    )
    PIPELINE_EXECUTIONS_OF_ONE_PIPELINE = (
        (),  # names its resource: IAM5[Resource::<pipeline ARN>/execution/*]
        "sagemaker:DescribePipelineExecution must name execution ARNs, which SageMaker creates at run time; the "
        "wildcard is limited to the executions of one named pipeline of this environment, for one read-only action.",
    )
    LAMBDA_RUNTIME_IS_THE_PROJECT_PYTHON = (
        (f"{_AWS}L1",),
        "The function runs on Python 3.11, the one interpreter of this project (Glue 5.1, SageMaker jobs, the lock "
        "file and every test run on it) and the Powertools layer variant it loads; 3.11 is a supported Lambda runtime. "
        "The runtime moves with the project's Python, in one reviewed change.",
    )
    TRIGGER_STATE_TABLE_RECOVERY = (
        (f"{_NIST}DynamoDBInBackupPlan", f"{_HIPAA}DynamoDBInBackupPlan"),
        "Recovery (CP-9, 164.308(a)(7)) is met by point-in-time recovery (continuous backups, 35 days) and deletion "
        "protection outside dev. The table holds the training lock, daily counters and the decision audit, which "
        "is also written to a KMS-encrypted log group; an AWS Backup plan is an account-level operator choice.",
    )
    LAMBDA_OUTSIDE_VPC_IN_ISOLATED_MODE = (
        (f"{_NIST}LambdaInsideVPC", f"{_HIPAA}LambdaInsideVPC"),
        "Only in network mode 'isolated' (no interface endpoints): the function is invoked only by EventBridge "
        "rules of this account, has no inbound network path, handles event metadata and S3 URIs but no subscriber "
        "data, and calls AWS APIs only (DynamoDB, SageMaker, SQS, CloudWatch Logs, X-Ray) over TLS with IAM "
        "permissions scoped to named resources.",
    )
    LAMBDA_VPC_ACCESS_MANAGED_POLICY = (
        (f"{_AWS}IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]",),
        "Only in network mode 'vpc': Lambda needs ec2:CreateNetworkInterface, DescribeNetworkInterfaces and "
        "DeleteNetworkInterface, which have no resource-level permissions, to attach the function to its subnets; "
        "AWS's managed policy is the documented, AWS-maintained grant for exactly that.",
    )
    DEPLOYMENT_LEDGER_BACKUP = (
        (f"{_NIST}DynamoDBInBackupPlan", f"{_HIPAA}DynamoDBInBackupPlan"),
        "The table is the endpoint deployer's ledger (approvals seen, the endpoint lock and queue, names of the "
        "models and configurations it created): control metadata, no subscriber data. Point-in-time recovery "
        "(35 days) and the customer-managed ML key protect it; the registry and SageMaker hold the authoritative "
        "state, so an AWS Backup plan would add cost without recoverability the PITR window lacks.",
    )
    DEPLOYER_FUNCTIONS_INVOKED_SYNCHRONOUSLY = (
        (f"{_NIST}LambdaDLQ", f"{_HIPAA}LambdaDLQ"),
        "The endpoint deployer's functions are invoked synchronously: by its Step Functions state machine, which "
        "retries and catches every failure, notifies the ops topic and records it in the ledger, and (teardown) by "
        "CloudFormation, which reports a failure itself. A dead-letter queue only receives asynchronous invocations.",
    )
    DEPLOYER_FUNCTIONS_OUTSIDE_VPC = (
        (f"{_NIST}LambdaInsideVPC", f"{_HIPAA}LambdaInsideVPC"),
        "The endpoint deployer's functions make control-plane calls only (SageMaker, Application Auto Scaling, "
        "CloudWatch, DynamoDB, Step Functions) and handle no subscriber data; the isolated VPC has no route to "
        "DynamoDB or Application Auto Scaling. Each role is limited to this environment's endpoint, its name "
        "prefix and its ledger table.",
    )
    DEPLOYER_APIS_WITHOUT_RESOURCE_PERMISSIONS = (
        (f"{_AWS}IAM5[Resource::*]",),
        "Only actions without resource-level permissions use Resource '*' in this endpoint deployer function's "
        "policy, and ResourceWildcardAllowList fails synth on any other: the X-Ray trace upload of Lambda active "
        "tracing, Application Auto Scaling Describe calls and, where the function manages scaling, registration "
        "and policy changes conditioned on the telecom-ml:endpoint tag (scalable-target ARNs carry a "
        "service-generated id).",
    )
    DEPLOYER_NAMED_PREFIXES = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The endpoint deployer creates models and endpoint configurations at run time with content-derived names "
        "under the environment's endpoint name prefix, reads the versions of one model package group, and manages "
        "the target-tracking alarms Application Auto Scaling names after the endpoint and the executions of its "
        "own state machine, reads the deployed package's drift baselines under the pipeline's baseline and the "
        "promotion prefixes of the ML artefact bucket (its baseline predictions: only objects named "
        "baseline_predictions.csv under the pipeline's execution and the promotion prefixes) and writes only the "
        "endpoint's current-baseline prefix: each wildcard is the run-time suffix under one fixed prefix.",
    )
    PROMOTION_INVOKED_BY_AN_OPERATOR = (
        (f"{_NIST}LambdaDLQ", f"{_HIPAA}LambdaDLQ"),
        "The promotion function is invoked synchronously by an operator or a release pipeline (Lambda Invoke, "
        "RequestResponse), who receives its result or its error naming the refused field; a dead-letter queue "
        "only receives asynchronous invocations.",
    )
    PROMOTION_OUTSIDE_VPC = (
        (f"{_NIST}LambdaInsideVPC", f"{_HIPAA}LambdaInsideVPC"),
        "The promotion function reads SageMaker and S3 in the source environment's region, which the isolated "
        "VPC's endpoints (this region's services only) cannot reach. It copies model artefacts, evaluation "
        "metrics and aggregate baseline statistics of one approved package, never subscriber records, and its "
        "role is limited to one source group, the source pipeline's prefix and this environment's promoted/ prefix.",
    )
    PROMOTION_READS_THE_SOURCE_ACCOUNT = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The promotion function copies one approved model package from the configured source environment: it "
        "reads the versions of the source's one package group, the objects under the source pipeline's prefix "
        "of buckets owned by the source account (the bucket name is generated in that account; the statement is "
        "conditioned on s3:ResourceAccount and the source's bucket and key policies admit only this role) "
        "through that account's keys via S3 in the source region, and writes the copies under the promoted/ "
        "prefix of this environment's artefact bucket and the versions of its own package group.",
    )
    STATE_MACHINE_INVOKES_ITS_FUNCTIONS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The endpoint deployer's state machine may invoke each of its own decision functions, and CDK's Lambda "
        "task grants the function ARN and its versions and aliases (`<function ARN>:*`): the wildcard is the "
        "qualifier of one named function of this stack.",
    )
    SERVING_PREFIXES_AND_INTERFACES = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "SageMaker writes data capture and asynchronous results as the execution role under the endpoint's key "
        "prefixes of the ML artefact bucket (and, where the environment promotes, reads the promoted packages' "
        "model data under promoted/), with object names chosen at run time, and creates the endpoint's "
        "network interfaces at run time: creation is limited to the isolated subnets and the endpoint security "
        "group, deletion and permissions to interfaces in this environment's VPC.",
    )
    CDK_NOTIFICATIONS_HANDLER_ROLE = (
        (f"{_AWS}IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",),
        "Role of CDK's own deploy-time handler that turns on S3 -> EventBridge notifications for the raw zone. The "
        "AWS managed policy only lets it write its own CloudWatch Logs; it handles no data and runs only during "
        "deployment.",
    )
    CDK_NOTIFICATIONS_HANDLER_POLICY = (
        (f"{_NIST}IAMNoInlinePolicy", f"{_HIPAA}IAMNoInlinePolicy"),
        "The one inline policy CDK generates for its deploy-time notifications handler: it allows only "
        "s3:PutBucketNotification on the raw zone bucket, attached to that handler's role alone.",
    )

    PIPELINE_LAMBDA_STEP_IS_SYNCHRONOUS = (
        (f"{_NIST}LambdaDLQ", f"{_HIPAA}LambdaDLQ"),
        "SageMaker Pipelines invokes this function synchronously as a Lambda step and records its error as the "
        "step's failure reason; a dead-letter queue only receives failed asynchronous invocations, which never "
        "happen here. A failed execution notifies the ops topic (EventBridge rule).",
    )
    PIPELINE_LAMBDA_OUTSIDE_VPC_IN_ISOLATED_MODE = (
        (f"{_NIST}LambdaInsideVPC", f"{_HIPAA}LambdaInsideVPC"),
        "network.mode is 'isolated' in this environment: it has no interface endpoints, so a function in the "
        "isolated subnets could not reach the SageMaker API it calls. It handles no customer data (model "
        "registry metadata only) and its role allows only reading this environment's model package group. "
        "In 'vpc' mode the function runs in the isolated subnets.",
    )
    DRIFT_WINDOW_OUTSIDE_VPC_IN_ISOLATED_MODE = (
        (f"{_NIST}LambdaInsideVPC", f"{_HIPAA}LambdaInsideVPC"),
        "network.mode is 'isolated' in this environment: the drift pipeline's WindowGuard step runs outside the "
        "VPC, as the drift job it guards does there. It reads no object: it lists key names under the endpoint's "
        "capture, current-baseline and labels prefixes (SageMaker-generated file names, no subscriber data) and "
        "writes one manifest of key names per execution; its role allows exactly that, over TLS. In 'vpc' mode "
        "the function runs in the isolated subnets.",
    )
    DRIFT_WINDOW_VPC_NETWORK_INTERFACES = (
        (f"{_AWS}IAM5[Resource::*]",),
        "Only ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets, which Lambda calls to attach the WindowGuard "
        "function to the isolated subnets, use Resource '*': they have no resource-level permissions (IAM service "
        "authorization reference). Interface changes are scoped to this VPC, listing to the endpoint's prefixes.",
    )
    DRIFT_WINDOW_MANIFESTS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The drift pipeline's WindowGuard writes one manifest per execution, named by the execution id chosen at "
        "run time, under the endpoint's reports/manifests/ prefix of the ML artefact bucket; s3:PutObject only, no "
        "read or delete.",
    )
    REGISTRY_LISTING_AND_VPC_NETWORK_INTERFACES = (
        (f"{_AWS}IAM5[Resource::*]",),
        "sagemaker:ListModelPackages and the ec2:Describe* calls Lambda makes to attach a function to subnets "
        "have no resource-level permissions (IAM service authorization reference); the package reads, network "
        "interface changes and log writes are scoped to this group, VPC and log group.",
    )
    JOB_ROLE_SERVICE_WIDE_ACTIONS = (
        (f"{_AWS}IAM5[Resource::*]",),
        "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (limited to the /aws/sagemaker/*Jobs namespaces by "
        "condition) and, in 'vpc' mode, the ec2:Describe* calls SageMaker makes for job network interfaces have "
        "no resource-level permissions (IAM service authorization reference). Image pulls name the repositories "
        "of the configured AWS images; every other statement names its resources.",
    )
    SAGEMAKER_JOB_LOG_STREAMS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "SageMaker writes each job's logs to the log groups /aws/sagemaker/ProcessingJobs and "
        "/aws/sagemaker/TrainingJobs, one stream per job and instance named at run time; the wildcard covers "
        "only the streams of those two groups in this account and region.",
    )
    PIPELINE_JOBS_NAMED_AT_RUN_TIME = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "SageMaker Pipelines names the processing and training jobs it starts pipelines-<execution>-<step>-<id> "
        "at run time; the role may create, describe, stop and tag only jobs with that prefix, and pass only the "
        "job role.",
    )
    PIPELINE_MODELS_AND_TRANSFORMS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The batch-scoring pipeline's model step and Batch Transform step create a model and a transform job "
        "that SageMaker Pipelines names pipelines-<execution>-<step>-<id> at run time; the pipeline role may "
        "create, describe, stop and tag only models and transform jobs with that prefix.",
    )
    NETWORK_INTERFACES_CREATED_AT_RUN_TIME = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "In 'vpc' mode SageMaker jobs and the pipeline's Lambda attach network interfaces that get their ids "
        "when created. Creating one also requires naming the isolated subnets and the workload security group; "
        "deleting one and changing its permissions is limited to interfaces in this VPC (ec2:Vpc condition).",
    )
    PEERS_OF_A_DISTRIBUTED_JOB = (
        (f"{_NIST}EC2RestrictedCommonPorts", f"{_HIPAA}EC2RestrictedCommonPorts"),
        "The rule admits all traffic only from the same security group (the instances of one distributed "
        "SageMaker job, e.g. XGBoost on S3 shards or PyTorch collectives, which choose their ports at run "
        "time), never from an address range; the VPC has no internet path and its traffic is in flow logs.",
    )
    MODEL_PACKAGE_VERSIONS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "Model package versions are model-package/<group>/<version>, the version numbered by SageMaker when a "
        "package is registered; the wildcard covers the versions of this environment's one group only.",
    )

    SCHEDULE_DEAD_LETTER_QUEUE = (
        (f"{_AWS}SQS3",),
        "This queue is itself the dead-letter queue of the drift pipeline's EventBridge Scheduler schedule (the "
        "schedule target's DeadLetterConfig, which the check cannot see); a dead-letter queue of a dead-letter "
        "queue would only move the same messages. It is KMS-encrypted, TLS-only and alarmed on depth.",
    )
    MONITORING_JOB_SERVICE_WIDE_ACTIONS = (
        (f"{_AWS}IAM5[Resource::*]",),
        "cloudwatch:PutMetricData (limited by condition to the two monitoring namespaces "
        "aws/sagemaker/Endpoints/data-metrics and model-metrics) and, for Model Monitor, ecr:GetAuthorizationToken "
        "have no resource-level permissions (IAM service authorization reference). The analyzer image pull names "
        "its repository; every other statement names its bucket prefix or key.",
    )
    MONITORING_PREFIXES = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "Monitoring jobs read the endpoint's data capture, its current baseline (and ground truth) and write "
        "reports, all under the endpoint's key prefixes of the ML artefact bucket (labels: the lake's churn_labels "
        "prefix), with object names chosen at run time; reads are s3:GetObject only, writes s3:PutObject and "
        "s3:AbortMultipartUpload only, listing carries an s3:prefix condition.",
    )

    CDK_PIPELINES_ROLE_POLICY = (
        (f"{_NIST}IAMNoInlinePolicy", f"{_HIPAA}IAMNoInlinePolicy"),
        "The policy CDK Pipelines generates for one role it creates for the delivery pipeline (the pipeline, its "
        "source and build actions, a CodeBuild project), attached to that role alone. Its statements name the "
        "pipeline's artefact buckets and key, its own projects and log groups; Resource '*' only where the "
        "allow-list admits it (enforced at synth). A customer-managed policy for the same one role adds no control.",
    )
    PIPELINE_ARTIFACT_GRANT_ACTIONS = (
        (),  # the rule id names the action; see acknowledge_action_wildcard
        "CDK Pipelines grants its roles the artefact bucket and key with the S3 and KMS grant helpers, whose "
        "action sets are written with wildcards (s3:GetObject*, s3:List*, kms:GenerateDataKey* ...). Every such "
        "statement names the pipeline's own artefact bucket or key; the bucket holds only source and cloud-assembly "
        "archives of pipeline executions and expires them after 30 days.",
    )
    PIPELINE_ARTIFACT_OBJECTS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "CodePipeline names each execution's artefact objects at run time; the wildcard covers the objects of the "
        "pipeline's own KMS-encrypted, TLS-only, access-logged artefact bucket (one per region it deploys to) and "
        "nothing else.",
    )
    PIPELINE_REPLICA_KEY_BY_ALIAS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "The artefact store of another region is encrypted with a key created in that region's stack, whose id the "
        "pipeline stack cannot reference across regions; the grant names keys of that region in the tooling account "
        "and is limited by a kms:ResourceAliases condition to the one alias of the pipeline's artefact key.",
    )
    CODEBUILD_LOGS_AND_REPORTS = (
        (),  # the rule id names the resource; see acknowledge_resource_wildcard
        "CodeBuild names each build's log stream and report at run time: the grant covers the log group "
        "/aws/codebuild/<project> and report groups <project>-* of the pipeline's own projects (for the shared asset "
        "role, CodeBuild log groups and report groups of this account and region). Build output itself goes to the "
        "pipeline's KMS-encrypted log group.",
    )
    CODEBUILD_SOURCE_FROM_PIPELINE = (
        (f"{_HIPAA}CodeBuildProjectSourceRepoUrl",),
        "The project's source is CODEPIPELINE (the execution's artefact in the encrypted artefact bucket): it holds "
        "no repository URL and no credentials. GitHub is read by the pipeline's source action through a "
        "CodeConnections connection (an installed GitHub App), so no OAuth token or personal access token is stored.",
    )

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return self.value[0]

    @property
    def reason(self) -> str:
        return self.value[1]


def acknowledge(construct: IConstruct, *findings: Finding) -> None:
    """Acknowledge on the CloudFormation resource itself (an L2's default child, recursively)."""
    for finding in findings:
        if not finding.rule_ids:
            raise ValueError(f"{finding.name} names its resource: use acknowledge_resource_wildcard")
    _acknowledge(construct, [(rule_id, f) for f in findings for rule_id in f.rule_ids])


@dataclass(frozen=True)
class _Target:
    """Where a construct's acknowledgements go: its CloudFormation resource's validations, or (acknowledgements
    switched off) that resource's path for SKIPPED_ACKNOWLEDGEMENTS."""

    validations: cdk.Validations | None
    path: str


# Found once per construct and per stack: each step (default child, stack, context) is a call into jsii, and a
# grant policy collects dozens of acknowledgements.
_TARGETS: weakref.WeakKeyDictionary[IConstruct, _Target] = weakref.WeakKeyDictionary()
_ACKNOWLEDGEMENTS_OFF: weakref.WeakKeyDictionary[cdk.Stack, bool] = weakref.WeakKeyDictionary()


def _target_of(construct: IConstruct) -> _Target:
    if construct in _TARGETS:
        return _TARGETS[construct]
    resource = resource_of(construct)
    stack = cdk.Stack.of(resource)
    if stack not in _ACKNOWLEDGEMENTS_OFF:
        _ACKNOWLEDGEMENTS_OFF[stack] = stack.node.try_get_context(ACKNOWLEDGEMENTS_CONTEXT) == "off"
    off = _ACKNOWLEDGEMENTS_OFF[stack]
    target = _Target(None, resource.node.path) if off else _Target(cdk.Validations.of(resource), "")
    _TARGETS[construct] = target
    return target


def _acknowledge(construct: IConstruct, rules: list[tuple[str, Finding]]) -> None:
    if not rules:
        return
    target = _target_of(construct)
    if target.validations is None:
        SKIPPED_ACKNOWLEDGEMENTS.extend((target.path, rule_id) for rule_id, _ in rules)
        return
    # One call into jsii for all of them (the method takes any number).
    target.validations.acknowledge(*(cdk.Acknowledgment(id=rule_id, reason=f.reason) for rule_id, f in rules))


_GRANT_POLICIES: weakref.WeakKeyDictionary[iam.IRole, IConstruct] = weakref.WeakKeyDictionary()


def find_grant_policy(role: iam.IRole) -> IConstruct | None:
    """The policy CDK generated from grants to `role` (own role: DefaultPolicy; imported: Policy*), None while
    there is none. Remembered once found: CDK adds every later grant to that same policy."""
    if role in _GRANT_POLICIES:
        return _GRANT_POLICIES[role]
    policy = role.node.try_find_child("DefaultPolicy")
    if policy is None:
        policy = next((child for child in role.node.children if isinstance(child, iam.Policy)), None)
    if policy is not None:
        _GRANT_POLICIES[role] = policy
    return policy


def grant_policy_of(role: iam.IRole) -> IConstruct:
    """find_grant_policy, for a role that has been granted something already."""
    policy = find_grant_policy(role)
    if policy is None:
        raise ValueError(f"{role.node.path}: no grant policy yet (make the grants first)")
    return policy


def has_grant_policy(role: iam.IRole) -> bool:
    """Whether grant_policy_of(role) has been found already (then it costs nothing)."""
    return role in _GRANT_POLICIES


def acknowledge_grant_policy(role: iam.IRole, *extra: Finding) -> None:
    """Acknowledge IAMNoInlinePolicy (and `extra`) on the policy CDK generates from grants."""
    acknowledge(grant_policy_of(role), Finding.GRANT_POLICY_ON_SINGLE_ROLE, *extra)


def acknowledge_resource_wildcard(policy: IConstruct, resource: str, finding: Finding) -> None:
    """AwsSolutions-IAM5 is acknowledged per resource string, exactly as cdk-nag renders it."""
    _acknowledge(policy, [(f"{_AWS}IAM5[Resource::{resource}]", finding)])


def acknowledge_resource_wildcards(policy: IConstruct, resources: Iterable[str], finding: Finding) -> None:
    """acknowledge_resource_wildcard for each of `resources` (one call into jsii for all)."""
    _acknowledge(policy, [(f"{_AWS}IAM5[Resource::{resource}]", finding) for resource in resources])


def acknowledge_action_wildcard(policy: IConstruct, action: str, finding: Finding) -> None:
    """AwsSolutions-IAM5 is acknowledged per wildcard action, exactly as cdk-nag renders it."""
    _acknowledge(policy, [(f"{_AWS}IAM5[Action::{action}]", finding)])


def acknowledge_bucket_notifications(bucket: IConstruct) -> None:
    """CDK's singleton notifications handler (fixed construct id) and the policy it adds for `bucket`."""
    stack = cdk.Stack.of(bucket)
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            acknowledge(child.node.find_child("Role"), Finding.CDK_NOTIFICATIONS_HANDLER_ROLE)
    notifications = bucket.node.find_child("Notifications")
    acknowledge(notifications.node.find_child("HandlerPolicy"), Finding.CDK_NOTIFICATIONS_HANDLER_POLICY)
