"""SNS topics an asynchronous endpoint notifies when a request succeeds or fails (KMS: the ML key)."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct


class AsyncTopics(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str, ml_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.success = sns.Topic(
            self, "Success", topic_name=f"{endpoint_name}-async-success", master_key=ml_key, enforce_ssl=True,
            display_name=f"{endpoint_name}: asynchronous inference succeeded",
        )
        self.error = sns.Topic(
            self, "Error", topic_name=f"{endpoint_name}-async-error", master_key=ml_key, enforce_ssl=True,
            display_name=f"{endpoint_name}: asynchronous inference failed",
        )
