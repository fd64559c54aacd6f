"""A Glue 5.1 (Spark 3.5.6, Python 3.11) PySpark job whose script and library ship from the repo.

The job's role starts empty; the composing stack grants it exactly the buckets, keys and tables
it touches, so every permission is visible where the pieces meet.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.compliance import (
    Finding,
    acknowledge_grant_policy,
    acknowledge_resource_wildcards,
    grant_policy_of,
)
from infra.constructs.lake.glue_network import GlueNetwork
from infra.grants import add_statements, grant_key
from infra.logical_ids import logical_id_of
from infra.runtime_code import REPO_ROOT, runtime_path

GLUE_VERSION = "5.1"
# Glue job entry points live in etl/; --extra-py-files ships what they import: the dataset
# contract (dataset/schema*.py, dataset/inference_ids.py; standard library only) and the etl package, nothing else.
ETL_PACKAGE = "etl"
_LIBRARY_FILES = [
    "*",
    ".*",
    "!dataset",
    "!dataset/__init__.py",
    "!dataset/schema*.py",
    "!dataset/inference_ids.py",
    f"!{ETL_PACKAGE}",
    f"!{ETL_PACKAGE}/*.py",
    # Last, so that no re-included folder brings its bytecode cache (the last matching pattern wins).
    "**/__pycache__",
    "**/*.pyc",
]


class GlueSecurity(Construct):
    """Glue security configuration: KMS for job output to S3, CloudWatch logs and bookmarks."""

    def __init__(
        self, scope: Construct, construct_id: str, *, name: str, data_key: kms.IKey, logs_key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.name = name
        self.configuration = glue.CfnSecurityConfiguration(
            self,
            "Configuration",
            name=name,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=data_key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=logs_key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=data_key.key_arn
                ),
            ),
        )


class GlueJobLibrary(Construct):
    """The dataset contract and the `etl` package every job imports, as one zip for --extra-py-files."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(self, "Zip", path=str(REPO_ROOT), exclude=_LIBRARY_FILES)


class GlueEtlJob(Construct):
    """One Glue job running `etl/<script>`; its role may use its code, its logs and the logs key."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        script: str,
        description: str,
        library: GlueJobLibrary,
        security: GlueSecurity,
        logs_key: kms.IKey,
        arguments: dict[str, str],
        worker_type: str,
        workers: int,
        network: GlueNetwork | None = None,
        timeout_minutes: int = 60,
    ) -> None:
        super().__init__(scope, construct_id)
        self.script = s3_assets.Asset(self, "Script", path=str(runtime_path(f"{ETL_PACKAGE}/{script}")))
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description=f"Glue job {construct_id}: only the data it reads and writes",
        )
        self._grant_code_and_logs(library, security, logs_key)
        if network is not None:
            network.grant_use(self.role)
        self.job = glue.CfnJob(
            self,
            "Job",
            role=self.role.role_arn,
            description=description,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=self.script.s3_object_url
            ),
            default_arguments={
                "--job-language": "python",
                "--extra-py-files": library.asset.s3_object_url,
                "--enable-metrics": "true",
                "--enable-observability-metrics": "true",
                "--enable-continuous-cloudwatch-log": "true",
                "--job-bookmark-option": "job-bookmark-disable",
                **arguments,
            },
            security_configuration=security.name,
            worker_type=worker_type,
            number_of_workers=workers,
            timeout=timeout_minutes,
            max_retries=0,
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=2),
            connections=glue.CfnJob.ConnectionsListProperty(connections=[network.name]) if network else None,
        )
        self.job.add_resource_dependency(security.configuration)
        if network is not None:
            self.job.add_resource_dependency(network.connection)

    def _grant_code_and_logs(self, library: GlueJobLibrary, security: GlueSecurity, logs_key: kms.IKey) -> None:
        code = iam.PolicyStatement(
            sid="JobCode",
            actions=["s3:GetObject"],
            resources=[asset.bucket.arn_for_objects(asset.s3_object_key) for asset in (self.script, library.asset)],
        )
        stack = cdk.Stack.of(self)

        def log_groups_of(role_name: str) -> str:
            # Glue 5 with CloudWatch encryption: /aws-glue/jobs/<security configuration>-role/<role>/{error,output}.
            return stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"/aws-glue/jobs/{security.name}-role/{role_name}/*",
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )

        log_groups = log_groups_of(self.role.role_name)
        logs = iam.PolicyStatement(
            sid="GlueJobLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[log_groups, f"{log_groups}:*"],
        )
        metrics = iam.PolicyStatement(
            sid="GlueJobMetrics",
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        )
        add_statements(self.role, [code, logs, metrics])
        grant_key(self.role, logs_key, via="logs", write=True)
        policy = grant_policy_of(self.role)
        # cdk-nag renders the role name (a Ref) as <logical id>.
        cfn_role = self.role.node.default_child
        assert isinstance(cfn_role, iam.CfnRole)
        as_nag_renders = log_groups_of(f"<{logical_id_of(cfn_role)}>")
        acknowledge_resource_wildcards(
            policy, [stack.resolve(r) for r in (as_nag_renders, f"{as_nag_renders}:*")], Finding.GLUE_JOB_LOG_GROUPS
        )
        acknowledge_grant_policy(self.role, Finding.APIS_WITHOUT_RESOURCE_PERMISSIONS)

    @property
    def job_name(self) -> str:
        return self.job.ref
