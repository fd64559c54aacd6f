"""Streaming CDR ingestion: Firehose direct PUT -> raw CDR zone, partitioned by event date.

Records are newline-delimited JSON (docs/dataset-schema.md). The event date is read from each
record's `event_time` (dynamic partitioning), so late events land in the right partition; a
record without a usable event_time goes to the error prefix, never nowhere.

L1 rather than the L2 DeliveryStream: the L2 grants its role read/write/delete on the whole
bucket, while Firehose only needs to put objects under two prefixes of the raw CDR zone.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import acknowledge_grant_policy, grant_policy_of
from infra.constructs.foundation.log_retention import retention
from infra.grants import acknowledge_objects_under

CDR_PREFIX = "cdr/"
ERROR_ROOT = "cdr-errors/"
DATA_PREFIX = CDR_PREFIX + "event_date=!{partitionKeyFromQuery:event_date}/"
ERROR_PREFIX = ERROR_ROOT + "!{firehose:error-output-type}/delivery_date=!{timestamp:yyyy-MM-dd}/"
EVENT_DATE_QUERY = "{event_date: .event_time[0:10]}"


class CdrStream(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.IBucket,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
        buffer_seconds: int,
        buffer_mib: int,
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self,
            "DeliveryLogs",
            encryption_key=logs_key,
            retention=retention(log_retention_days),
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
        )
        log_stream = log_group.add_stream("S3Delivery")
        self.role = self._delivery_role(bucket, data_key, log_group, log_stream)
        self.delivery_stream = self._delivery_stream(
            bucket, data_key, log_group, log_stream, buffer_seconds, buffer_mib
        )

    def _delivery_role(
        self, bucket: s3.IBucket, data_key: kms.IKey, log_group: logs.LogGroup, log_stream: logs.LogStream
    ) -> iam.Role:
        stack = cdk.Stack.of(self)
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
            description="Firehose puts CDR objects under cdr/ and cdr-errors/ of the raw CDR zone",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"], resources=[bucket.bucket_arn]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in (CDR_PREFIX, ERROR_ROOT)]}},
            )
        )
        object_arns = [bucket.arn_for_objects(f"{p}*") for p in (CDR_PREFIX, ERROR_ROOT)]
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=object_arns)
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[data_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:PutLogEvents"],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"{log_group.log_group_name}:log-stream:{log_stream.log_stream_name}",
                        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        for prefix in (CDR_PREFIX, ERROR_ROOT):
            acknowledge_objects_under(role, bucket, prefix)
        acknowledge_grant_policy(role)
        return role

    def _delivery_stream(
        self,
        bucket: s3.IBucket,
        data_key: kms.IKey,
        log_group: logs.LogGroup,
        log_stream: logs.LogStream,
        buffer_seconds: int,
        buffer_mib: int,
    ) -> firehose.CfnDeliveryStream:
        processors = [
            _processor("MetadataExtraction", MetadataExtractionQuery=EVENT_DATE_QUERY, JsonParsingEngine="JQ-1.6"),
            _processor("AppendDelimiterToRecord", Delimiter="\\n"),
        ]
        stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="CUSTOMER_MANAGED_CMK", key_arn=data_key.key_arn
                )
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=DATA_PREFIX,
                error_output_prefix=ERROR_PREFIX,
                compression_format="GZIP",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=buffer_seconds, size_in_m_bs=buffer_mib
                ),
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=data_key.key_arn
                    )
                ),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True, retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(duration_in_seconds=300)
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True, processors=processors
                ),
            ),
        )
        stream.node.add_dependency(grant_policy_of(self.role))
        return stream


def _processor(kind: str, **parameters: str) -> firehose.CfnDeliveryStream.ProcessorProperty:
    return firehose.CfnDeliveryStream.ProcessorProperty(
        type=kind,
        parameters=[
            firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=k, parameter_value=v)
            for k, v in parameters.items()
        ],
    )
