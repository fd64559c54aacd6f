"""The endpoint deployer: ledger table, decision functions, state machine, approval rule, teardown.

An approval of a package in this environment's group (EventBridge, "SageMaker Model Package State
Change", ModelApprovalStatus Approved) starts the state machine; events it cannot deliver are kept in
an encrypted dead-letter queue. Deleting the stack deletes the `Teardown` custom resource first (the
rule depends on it, so no approval starts a deployment meanwhile), whose function removes everything
the deployer created. Permissions are granted by the composing stack (stacks/serving_stack.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.compliance import Finding, acknowledge, acknowledge_grant_policy, grant_policy_of
from infra.constructs.foundation.log_retention import retention
from infra.constructs.serving.deployer_flow import DeployerFlow
from infra.constructs.serving.deployer_function import DeployerFunction
from infra.template_hygiene import keep_only_dependencies
from infra.trust import condition_trust

APPROVAL_SOURCE = "aws.sagemaker"
APPROVAL_DETAIL_TYPE = "SageMaker Model Package State Change"
# (function, handler module, what it decides)
FUNCTIONS = (
    ("receive", "receive", "validate an approval; dedupe; deploy now or queue"),
    ("prepare", "prepare", "re-check approval; create model and endpoint configuration"),
    ("start", "start", "create or canary-update the endpoint"),
    ("check", "check", "in service, rolled back or failed"),
    ("scale", "scale", "register autoscaling"),
    ("follow_up", "follow_up", "current baseline, monitoring schedules, batch scoring"),
    ("finish", "finish", "record the outcome; hand the endpoint to the next approval"),
)


@dataclass(frozen=True)
class DeployerLogging:
    logs_key: kms.IKey
    retention_days: int
    removal: cdk.RemovalPolicy


class EndpointDeployer(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        model_package_group_name: str,
        settings: dict[str, object],
        table_key: kms.IKey,
        dead_letter_key: kms.IKey,
        ops_topic: sns.ITopic,
        logging: DeployerLogging,
        timeout: cdk.Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self.state_machine_name = f"{endpoint_name}-deployer"
        self.ledger = dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=table_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=logging.removal,
        )
        acknowledge(self.ledger, Finding.DEPLOYMENT_LEDGER_BACKUP)
        settings_json = cdk.Stack.of(self).to_json_string({**settings, "ledger_table": self.ledger.table_name})
        self.functions: dict[str, DeployerFunction] = {
            name: DeployerFunction(
                self, name.title().replace("_", ""), handler=module, description=what, settings_json=settings_json,
                logs_key=logging.logs_key, log_retention_days=logging.retention_days, removal=logging.removal,
            )
            for name, module, what in FUNCTIONS
        }
        flow = DeployerFlow(self, "Flow", functions={k: f.function for k, f in self.functions.items()},
                            ops_topic=ops_topic, endpoint_name=endpoint_name)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(flow.definition),
            timeout=timeout,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "ExecutionLogs", encryption_key=logging.logs_key,
                                          retention=retention(logging.retention_days), removal_policy=logging.removal),
                level=sfn.LogLevel.ALL,
                include_execution_data=True,
            ),
        )
        condition_trust(self.state_machine.role, "states", "stateMachine:*")
        self.teardown = DeployerFunction(
            self, "TeardownFunction", handler="teardown", description="delete what the deployer created",
            settings_json=settings_json, logs_key=logging.logs_key, log_retention_days=logging.retention_days,
            removal=logging.removal, timeout_minutes=10,
            extra_environment={"STATE_MACHINE_ARN": self.state_machine.state_machine_arn},
        )
        self.teardown_resource = cdk.CustomResource(
            self, "Teardown", service_token=self.teardown.function.function_arn,
            resource_type="Custom::EndpointTeardown",
            # A change of the schedules (new job definition names) updates this resource: its handler moves the
            # live schedules before CloudFormation deletes the old job definitions.
            properties={"EndpointName": endpoint_name, "StateMachine": self.state_machine_name,
                        "MonitoringSchedules": settings.get("monitoring_schedules") or []},
        )
        self._start_on_approval(model_package_group_name, dead_letter_key, logging.removal)

    def _start_on_approval(self, group: str, dead_letter_key: kms.IKey, removal: cdk.RemovalPolicy) -> None:
        self.dead_letters = sqs.Queue(
            self, "UndeliveredApprovals", encryption=sqs.QueueEncryption.KMS, encryption_master_key=dead_letter_key,
            enforce_ssl=True, retention_period=cdk.Duration.days(14), removal_policy=removal,
        )
        acknowledge(self.dead_letters, Finding.QUEUE_IS_A_DEAD_LETTER_QUEUE)
        self.rule = events.Rule(
            self,
            "OnApproval",
            description=f"An approved model package of {group} starts the endpoint deployer",
            event_pattern=events.EventPattern(
                source=[APPROVAL_SOURCE],
                detail_type=[APPROVAL_DETAIL_TYPE],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": ["Approved"]},
            ),
            targets=[targets.SfnStateMachine(self.state_machine, dead_letter_queue=self.dead_letters,
                                             retry_attempts=8, max_event_age=cdk.Duration.hours(24))],
        )
        # Stack deletion removes the rule before the teardown runs: no approval starts a deployment then.
        self.rule.node.add_dependency(self.teardown_resource)
        events_role = self.state_machine.node.find_child("EventsRole")
        assert isinstance(events_role, iam.Role)
        condition_trust(events_role, "events", "rule/*")
        acknowledge_grant_policy(events_role)

    def finalize_grants(self) -> None:
        """Acknowledge what the generated policies hold, once the composing stack made its grants."""
        acknowledge_grant_policy(self.state_machine.role, Finding.XRAY_AND_LOG_DELIVERY_WILDCARDS)
        keep_only_dependencies(self.state_machine, grant_policy_of(self.state_machine.role))
