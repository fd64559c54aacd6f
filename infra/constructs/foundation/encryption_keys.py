"""Customer-managed KMS keys, one per purpose so that each key policy and audit trail stays narrow.

- data: the data lake (S3 zones, Glue catalog and job output, Athena results, Firehose);
- ml: SageMaker artefacts, training/processing volumes, endpoints and data capture;
- logs: CloudWatch Logs (VPC flow logs, Glue, Lambda, state machines).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class EncryptionKeys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, env_name: str, destroy_on_removal: bool) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self.data_key = self._key("DataKey", f"telecom-ml/{env_name}/data", "Data lake zones, catalog, Athena", removal)
        self.ml_key = self._key(
            "MlKey", f"telecom-ml/{env_name}/ml", "SageMaker artefacts, volumes, endpoints", removal
        )
        self.logs_key = self._key("LogsKey", f"telecom-ml/{env_name}/logs", "CloudWatch Logs", removal)

        stack = cdk.Stack.of(self)
        this_account_log_groups = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:*"
        # CloudWatch Logs encrypts with the key only for log groups of this account and region.
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": this_account_log_groups,
                    }
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
        )
