"""One deployer Lambda function: its own role, encrypted log group, Powertools layer, settings document.

The code is `lambdas/deployer` (a package shipped with `lambdas/__init__.py`); Powertools (with pydantic
and the X-Ray SDK) comes from the AWS-managed Powertools layer of the version the project pins,
resolved at deploy time from its public SSM parameter, so nothing is bundled or looked up at synth.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.compliance import Finding, acknowledge
from infra.constructs.foundation.log_retention import encrypted_log_group
from infra.runtime_code import runtime_path

POWERTOOLS_VERSION = "3.37.0"  # the version pinned in requirements.txt and requirements/lambdas.txt
# The project's one interpreter: the code is tested on it (same runtime as the training trigger).
RUNTIME = lambda_.Runtime.PYTHON_3_11
CODE_EXCLUDES = ["*", "!__init__.py", "!deployer", "!deployer/**", "**/__pycache__", "**/*.pyc"]


def powertools_layer_parameter(runtime: lambda_.Runtime = RUNTIME) -> str:
    """Public SSM parameter naming the AWS-managed Powertools layer version for this runtime and release."""
    return f"/aws/service/powertools/python/x86_64/{runtime.name}/{POWERTOOLS_VERSION}"


class DeployerFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        settings_json: str,
        logs_key: kms.IKey,
        log_retention_days: int,
        removal: cdk.RemovalPolicy,
        timeout_minutes: int = 2,
        extra_environment: dict[str, str] | None = None,
        settings_variable: str = "DEPLOYER_SETTINGS",
        role_name: str | None = None,
        function_name: str | None = None,
        findings: tuple[Finding, ...] = (
            Finding.DEPLOYER_FUNCTIONS_INVOKED_SYNCHRONOUSLY, Finding.DEPLOYER_FUNCTIONS_OUTSIDE_VPC,
        ),
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = encrypted_log_group(self, logs_key, log_retention_days, removal)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            role_name=role_name,
            description=f"Endpoint deployer: {description}",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[self.log_group.log_group_arn]
            )
        )
        layer_arn = ssm.StringParameter.value_for_string_parameter(self, powertools_layer_parameter())
        layer = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            code=lambda_.Code.from_asset(str(runtime_path("lambdas")), exclude=CODE_EXCLUDES),
            handler=f"deployer.handlers.{handler}.handler",
            function_name=function_name,
            description=f"Endpoint deployer: {description}",
            role=self.role,
            layers=[layer],
            memory_size=256,
            timeout=cdk.Duration.minutes(timeout_minutes),
            reserved_concurrent_executions=2,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                settings_variable: settings_json,
                "POWERTOOLS_SERVICE_NAME": "endpoint-deployer",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(extra_environment or {}),
            },
        )
        acknowledge(self.function, *findings, Finding.LAMBDA_RUNTIME_IS_THE_PROJECT_PYTHON)
