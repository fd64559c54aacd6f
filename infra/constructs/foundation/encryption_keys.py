"""Customer-managed KMS keys, one per purpose so that each key policy and audit trail stays narrow.

- data: the data lake (S3 zones, Glue job output, Athena results, Firehose, the ETL dead-letter queue);
- secrets: the pseudonymisation secret only, so reading lake data never implies reading the key
  that links pseudonyms to subscribers;
- ml: SageMaker artefacts, training/processing volumes, endpoints and data capture;
- logs: CloudWatch Logs (VPC flow logs, Glue, Lambda, state machines).

Every key policy separates administration from use: the admin roles named in config (and the
CloudFormation execution role, so deployments can update the policy) may manage the key but not
use it; the account may grant use (never administration) through IAM, and every such grant in
this project names the key by ARN and the service it may be used through.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
]
USE_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]


def logs_of_this_account_statement(stack: cdk.Stack) -> iam.PolicyStatement:
    """Key policy statement: CloudWatch Logs encrypts with the key only for log groups of this account and region."""
    this_account_log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
    return iam.PolicyStatement(
        sid="AllowCloudWatchLogsForThisAccount",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        resources=["*"],
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": this_account_log_groups}},
    )


def key_policy(stack: cdk.Stack, admin_role_names: tuple[str, ...]) -> iam.PolicyDocument:
    """Administration for the named roles and the deployment role; use only through IAM grants."""
    admins: list[iam.IPrincipal] = [
        iam.ArnPrincipal(stack.format_arn(service="iam", region="", resource="role", resource_name=name))
        for name in admin_role_names
    ]
    synthesizer = stack.synthesizer
    if isinstance(synthesizer, cdk.DefaultStackSynthesizer):
        admins.append(iam.ArnPrincipal(cdk.Fn.sub(synthesizer.cloud_formation_execution_role_arn)))
    account = iam.AccountRootPrincipal()
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(sid="KeyAdministration", principals=admins, actions=ADMIN_ACTIONS, resources=["*"]),
            iam.PolicyStatement(
                sid="KeyUseGrantedThroughIam", principals=[account], actions=USE_ACTIONS, resources=["*"]
            ),
            iam.PolicyStatement(
                sid="GrantsForAwsServicesOnly",
                principals=[account],
                actions=GRANT_ACTIONS,
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        ]
    )


class EncryptionKeys(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        admin_role_names: tuple[str, ...],
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self._admins = admin_role_names
        self.data_key = self._key("DataKey", f"telecom-ml/{env_name}/data", "Data lake zones, catalog, Athena", removal)
        self.ml_key = self._key(
            "MlKey", f"telecom-ml/{env_name}/ml", "SageMaker artefacts, volumes, endpoints", removal
        )
        self.logs_key = self._key("LogsKey", f"telecom-ml/{env_name}/logs", "CloudWatch Logs", removal)
        self.secrets_key = self._key("SecretsKey", f"telecom-ml/{env_name}/secrets", "Pseudonymisation secret", removal)
        self._allow_log_groups_of_this_account()
        self._allow_event_rules_to_dead_letter()

    def _allow_log_groups_of_this_account(self) -> None:
        self.logs_key.add_to_resource_policy(logs_of_this_account_statement(cdk.Stack.of(self)))

    def _allow_event_rules_to_dead_letter(self) -> None:
        """EventBridge writes undeliverable events to the lake's encrypted dead-letter queue: only for
        rules of this account and region."""
        stack = cdk.Stack.of(self)
        rules = f"arn:{stack.partition}:events:{stack.region}:{stack.account}:rule/*"
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventRulesOfThisAccountDeadLetter",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": rules},
                },
            )
        )

    def _key(self, construct_id: str, alias: str, purpose: str, removal: cdk.RemovalPolicy) -> kms.Key:
        return kms.Key(
            self,
            construct_id,
            alias=alias,
            description=f"Telecom ML reference solution: {purpose}",
            enable_key_rotation=True,
            rotation_period=cdk.Duration.days(365),
            pending_window=cdk.Duration.days(30),
            removal_policy=removal,
            policy=key_policy(cdk.Stack.of(self), self._admins),
        )
