"""What the diagrams draw: the resource types that are nodes, how they are labelled, and the layers.

Every CloudFormation type falls in one of four roles:
- a node of its own (`NODE_TYPES`, with a human label and a colour group);
- one node per construct for all its members (`AGGREGATE_TYPES`: alarms, VPC endpoints, Lake Formation locations);
- transparent (`TRANSPARENT_TYPES`): not drawn, but references pass through it, so a Lambda function that uses a
  role whose policy names a bucket gets an edge to that bucket;
- left out: everything else (policies of buckets/topics/queues, log groups, aliases, route tables, custom
  resource providers, CDK metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# type -> (label, colour group)
NODE_TYPES: dict[str, tuple[str, str]] = {
    "AWS::Athena::WorkGroup": ("Athena workgroup", "data"),
    "AWS::Budgets::Budget": ("AWS Budgets budget", "observe"),
    "AWS::CloudWatch::Dashboard": ("CloudWatch dashboard", "observe"),
    "AWS::DynamoDB::Table": ("DynamoDB table", "data"),
    "AWS::EC2::VPC": ("VPC", "network"),
    "AWS::Events::Rule": ("EventBridge rule", "events"),
    "AWS::Glue::Connection": ("Glue connection", "network"),
    "AWS::Glue::Crawler": ("Glue crawler", "compute"),
    "AWS::Glue::Database": ("Glue database", "data"),
    "AWS::Glue::Job": ("Glue job", "compute"),
    "AWS::Glue::Table": ("Glue table", "data"),
    "AWS::IAM::Role": ("IAM role", "security"),
    "AWS::KMS::Key": ("KMS key", "security"),
    "AWS::KinesisFirehose::DeliveryStream": ("Firehose stream", "compute"),
    "AWS::LakeFormation::DataLakeSettings": ("Lake Formation settings", "security"),
    "AWS::Lambda::Function": ("Lambda function", "compute"),
    "AWS::S3::Bucket": ("S3 bucket", "data"),
    "AWS::SNS::Topic": ("SNS topic", "events"),
    "AWS::SQS::Queue": ("SQS queue", "events"),
    "AWS::SageMaker::DataQualityJobDefinition": ("Model Monitor data-quality job", "compute"),
    "AWS::SageMaker::ModelBiasJobDefinition": ("Model Monitor bias job", "compute"),
    "AWS::SageMaker::ModelPackageGroup": ("model package group", "data"),
    "AWS::SageMaker::ModelQualityJobDefinition": ("Model Monitor model-quality job", "compute"),
    "AWS::SageMaker::MonitoringSchedule": ("Model Monitor schedule", "events"),
    "AWS::SageMaker::Pipeline": ("SageMaker pipeline", "compute"),
    "AWS::Scheduler::Schedule": ("EventBridge schedule", "events"),
    "AWS::SecretsManager::Secret": ("Secrets Manager secret", "security"),
    "AWS::StepFunctions::StateMachine": ("Step Functions state machine", "compute"),
    "Custom::EndpointTeardown": ("custom resource: deletes what the deployer created", "compute"),
}

# type -> (label of the group, colour group): one node per construct holding them, "<n> <label>"
AGGREGATE_TYPES: dict[str, tuple[str, str]] = {
    "AWS::CloudWatch::Alarm": ("CloudWatch alarms", "observe"),
    "AWS::EC2::VPCEndpoint": ("VPC endpoints", "network"),
    "AWS::LakeFormation::Resource": ("Lake Formation locations", "security"),
}

TRANSPARENT_TYPES = frozenset(
    {
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",  # unnamed roles only: a named role is a contract others refer to, drawn as a node
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::Subnet",
    }
)

# Policies that grant a principal access to resources: (keys naming the principals, keys naming the resources).
# Their references become principal -> resource edges instead of policy -> principal and policy -> resource.
GRANT_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "AWS::IAM::Policy": (("Roles", "Users", "Groups"), ("PolicyDocument",), "IAM"),
    "AWS::IAM::ManagedPolicy": (("Roles", "Users", "Groups"), ("PolicyDocument",), "IAM"),
    "AWS::LakeFormation::PrincipalPermissions": (("Principal",), ("Resource",), "Lake Formation"),
}

# Generic construct-path segments that say nothing a label needs ("Raw/Bucket/Resource" -> "Raw").
GENERIC_SEGMENTS = frozenset(
    {
        "Resource",
        "Default",
        "Bucket",
        "Function",
        "Job",
        "Pipeline",
        "Topic",
        "Stream",
        "StateMachine",
        "Schedule",
        "Group",
        "WorkGroup",
        "Dashboard",
        "Dashboards",
        "Budget",
    }
)

# Edges to another stack's resource of these kinds are written on the source node ("KMS: Keys/DataKey").
FOLDED_TARGETS = {"KMS key": "KMS", "VPC": "VPC"}
# Nodes whose references are summarised on the node ("metrics of 12 resources") rather than drawn.
SUMMARISED_SOURCES = {"CloudWatch dashboard": "metrics of {n} resources"}

COLOURS = {
    "compute": "#fff2cc",
    "data": "#dae8fc",
    "events": "#d5e8d4",
    "network": "#eeeeee",
    "observe": "#e1d5e7",
    "security": "#f8cecc",
}


def role_of(resource_type: str, properties: dict[str, Any]) -> str:
    """'node', 'aggregate', 'transparent' or 'hidden'."""
    if resource_type == "AWS::IAM::Role":
        return "node" if isinstance(properties.get("RoleName"), str) else "transparent"
    if resource_type in NODE_TYPES:
        return "node"
    if resource_type in AGGREGATE_TYPES:
        return "aggregate"
    if resource_type in TRANSPARENT_TYPES:
        return "transparent"
    return "hidden"


def type_label(resource_type: str) -> tuple[str, str]:
    return NODE_TYPES.get(resource_type) or AGGREGATE_TYPES[resource_type]


@dataclass(frozen=True)
class Layer:
    """One diagram: its file name (docs/diagrams/<file>.dot), title and the stacks it draws in full."""

    file: str
    title: str
    stacks: tuple[str, ...]


LAYERS: tuple[Layer, ...] = (
    Layer("foundation", "foundation: keys, network, artefacts, ops topic", ("Foundation",)),
    Layer("lake", "data lake: zones, ETL, catalog, CDR ingestion", ("DataLake",)),
    Layer("ml-pipeline", "ML pipeline: training, registry, trigger, batch scoring", ("MlPipeline",)),
    Layer("serving", "serving: approval-driven endpoint deployer", ("Serving",)),
    Layer("monitoring", "monitoring: drift, retraining alarms", ("Monitoring",)),
)

# The environment the committed diagrams show: prod runs in network mode `vpc` (interface endpoints, Glue
# connection, Lambda functions in the VPC) and with the drift job engine that works in any account.
DEFAULT_STAGE = "Prod"
