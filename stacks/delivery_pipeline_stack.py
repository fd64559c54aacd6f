"""The delivery pipeline (CDK Pipelines) in the tooling account: GitHub through CodeConnections, `make test`
then `cdk synth`, then each environment's stage in the order config/delivery/pipeline.yaml lists, cross-account.

Imported only when the app is synthesized with `-c delivery=pipeline` (app.py): the plain per-environment synth
never loads aws_cdk.pipelines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import pipelines
from constructs import Construct, IConstruct

from infra.compliance import Finding, acknowledge, acknowledge_action_wildcard, acknowledge_resource_wildcard
from infra.config import LifecycleConfig
from infra.constructs.foundation.encryption_keys import key_policy, logs_of_this_account_statement
from infra.constructs.foundation.log_retention import encrypted_log_group
from infra.constructs.foundation.secure_bucket import SecureBucket
from infra.delivery_config import DELIVERY_CONTEXT, DELIVERY_PIPELINE, DeliveryConfig
from infra.template_hygiene import keep_only_dependencies

PIPELINE_NAME = "telecom-ml-delivery"
# Ubuntu 22.04 CodeBuild image whose runtimes include Python 3.11 and Corretto 17 (the PySpark tests need Java 17);
# the buildspec pins both, so a change of the image's default runtimes cannot change the build.
SYNTH_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
SYNTH_RUNTIMES = {"python": "3.11", "java": "corretto17"}
SYNTH_INSTALL_COMMANDS = ("make setup",)
SYNTH_COMMANDS = (
    "make test",
    "export PATH=$PWD/node_modules/.bin:$PATH JSII_NODE=$PWD/node_modules/.bin/node",
    f"cdk synth --quiet -c {DELIVERY_CONTEXT}={DELIVERY_PIPELINE}",
)
# Pipeline artefacts (source zips, cloud assemblies) are needed only while an execution runs.
ARTIFACT_LIFECYCLE = LifecycleConfig(expire_after_days=30, noncurrent_versions_expire_after_days=7)
ACCESS_LOG_LIFECYCLE = LifecycleConfig(glacier_after_days=90, expire_after_days=730)
ARTIFACTS_ALIAS = "telecom-ml/delivery/artifacts"
# The wildcard actions of the artefact grants CDK Pipelines makes (Bucket.grantRead/grantReadWrite, Key grants).
ARTIFACT_GRANT_ACTIONS = frozenset(
    {
        "s3:Abort*",
        "s3:DeleteObject*",
        "s3:GetBucket*",
        "s3:GetObject*",
        "s3:List*",
        "kms:GenerateDataKey*",
        "kms:ReEncrypt*",
    }
)


def replica_bucket_name(account: str, region: str) -> str:
    """Fixed, so the pipeline stack can name it in another region without a cross-region reference."""
    return f"telecom-ml-delivery-artifacts-{account}-{region}"


def add_delivery_pipeline(
    app: cdk.App, config: DeliveryConfig, stages: Sequence[tuple[cdk.Stage, bool]]
) -> DeliveryPipelineStack:
    """The pipeline stack and, for each other region a stage deploys to, its artefact store's stack."""
    replicas = {}
    for region in sorted({str(s.region) for s, _ in stages if s.region != config.region}):
        deploy_roles = sorted(
            {_deploy_role_arn(stack) for stage, _ in stages if stage.region == region for stack in _stacks_of(stage)}
        )
        replicas[region] = DeliveryArtifactsReplicaStack(
            app, f"DeliveryArtifacts-{region}", config=config, region=region, deploy_role_arns=deploy_roles
        )
    return DeliveryPipelineStack(app, "DeliveryPipeline", config=config, stages=stages, replica_stacks=replicas)


def _stacks_of(stage: cdk.Stage) -> list[cdk.Stack]:
    return [c for c in stage.node.children if isinstance(c, cdk.Stack)]


def _deploy_role_arn(stack: cdk.Stack) -> str:
    synthesizer = stack.synthesizer
    if not isinstance(synthesizer, cdk.DefaultStackSynthesizer):
        raise ValueError(f"{stack.node.path}: CDK Pipelines deploys only stacks of the default synthesizer")
    return synthesizer.deploy_role_arn


def _artifact_key(scope: Construct, config: DeliveryConfig, purpose: str) -> kms.Key:
    return kms.Key(
        scope,
        "ArtifactsKey",
        alias=ARTIFACTS_ALIAS,
        description=f"Telecom ML reference solution: delivery pipeline {purpose}",
        enable_key_rotation=True,
        rotation_period=cdk.Duration.days(365),
        pending_window=cdk.Duration.days(30),
        removal_policy=cdk.RemovalPolicy.RETAIN,
        policy=key_policy(cdk.Stack.of(scope), config.key_admin_role_names),
    )


def _artifact_buckets(scope: Construct, key: kms.IKey) -> s3.Bucket:
    access_logs = SecureBucket(
        scope,
        "AccessLogs",
        encryption_key=None,
        access_logs=None,
        access_log_destination=True,
        lifecycle=ACCESS_LOG_LIFECYCLE,
        destroy_on_removal=False,
    )
    return SecureBucket(
        scope,
        "Artifacts",
        encryption_key=key,
        access_logs=access_logs.bucket,
        lifecycle=ARTIFACT_LIFECYCLE,
        destroy_on_removal=False,
    ).bucket


class DeliveryArtifactsReplicaStack(cdk.Stack):
    """The pipeline's artefact store in another region (tooling account): CodePipeline copies each execution's
    artefacts here for the deploy actions of that region. Of the target accounts, only their CDK deploy roles
    may read it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeliveryConfig,
        region: str,
        deploy_role_arns: Sequence[str],
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=region),
            description=f"Telecom ML reference solution: delivery pipeline artefacts in {region}",
            termination_protection=True,
        )
        self.key = _artifact_key(self, config, f"artefacts in {region}")
        self.bucket = _artifact_buckets(self, self.key)
        cfn_bucket = self.bucket.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.bucket_name = replica_bucket_name(config.account, region)
        readers = [iam.ArnPrincipal(cdk.Fn.sub(arn)) for arn in deploy_role_arns]
        # What CodePipeline's grants would add for an owned bucket in the pipeline's own region.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TargetDeployRolesReadArtifacts",
                principals=readers,
                actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketLocation", "s3:ListBucket"],
                resources=[self.bucket.bucket_arn, self.bucket.arn_for_objects("*")],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="TargetDeployRolesDecryptArtifacts",
                principals=readers,
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            )
        )

    def imported_in(self, scope: Construct) -> s3.IBucket:
        """The bucket as the pipeline stack names it: by its fixed name, its key by alias (no cross-region token)."""
        return s3.Bucket.from_bucket_attributes(
            scope,
            f"Replica-{self.region}",
            bucket_name=replica_bucket_name(self.account, self.region),
            region=self.region,
            account=self.account,
            encryption_key=kms.Alias.from_alias_name(self, "ArtifactsKeyByAlias", f"alias/{ARTIFACTS_ALIAS}"),
        )


class DeliveryPipelineStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeliveryConfig,
        stages: Sequence[tuple[cdk.Stage, bool]],
        replica_stacks: dict[str, DeliveryArtifactsReplicaStack],
    ) -> None:
        """`stages`: (stage, needs manual approval) in deployment order."""
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
            description="Telecom ML reference solution: delivery pipeline (CDK Pipelines) in the tooling account",
            termination_protection=True,
        )
        self.key = _artifact_key(self, config, "artefacts and build logs")
        self._allow_log_groups_of_this_account()
        self.artifacts = _artifact_buckets(self, self.key)
        build_logs = encrypted_log_group(
            self, self.key, config.log_retention_days, cdk.RemovalPolicy.RETAIN, "BuildLogs"
        )
        stores: dict[str, s3.IBucket] = {config.region: self.artifacts}
        stores.update({region: replica.imported_in(self) for region, replica in replica_stacks.items()})

        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=PIPELINE_NAME,
            pipeline_type=codepipeline.PipelineType.V2,
            cross_region_replication_buckets=stores,
            cross_account_keys=True,
            enable_key_rotation=True,
            # Changes to this stack are deployed by a person (docs/delivery.md): the pipeline never widens its
            # own permissions, and its roles need no read access to every stack and bucket.
            self_mutation=False,
            publish_assets_in_parallel=False,
            synth=self._synth_step(config),
            code_build_defaults=pipelines.CodeBuildOptions(
                logging=codebuild.LoggingOptions(cloud_watch=codebuild.CloudWatchLoggingOptions(log_group=build_logs)),
            ),
        )
        for stage, needs_approval in stages:
            pre = [pipelines.ManualApprovalStep(f"Approve{stage.stage_name}")] if needs_approval else None
            self.pipeline.add_stage(stage, pre=pre)
        # Built now rather than at synth, so that the constructs CDK Pipelines creates exist for the
        # compliance gate's acknowledgements below.
        self.pipeline.build_pipeline()
        self._scope_asset_role_builds()
        self._keep_template_lint_clean()
        self._acknowledge_generated_policies(
            {_as_nag_renders(self.resolve(bucket.arn_for_objects("*"))) for bucket in stores.values()}, replica_stacks
        )

    def _synth_step(self, config: DeliveryConfig) -> pipelines.CodeBuildStep:
        source = config.source
        return pipelines.CodeBuildStep(
            "Synth",
            input=pipelines.CodePipelineSource.connection(
                source.repository_id, source.branch, connection_arn=source.connection_arn
            ),
            install_commands=list(SYNTH_INSTALL_COMMANDS),
            commands=list(SYNTH_COMMANDS),
            primary_output_directory="cdk.out",
            build_environment=codebuild.BuildEnvironment(
                build_image=SYNTH_IMAGE,
                compute_type=getattr(codebuild.ComputeType, config.synth_compute),
            ),
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": SYNTH_RUNTIMES}}}
            ),
            timeout=cdk.Duration.minutes(config.synth_timeout_minutes),
        )

    def _allow_log_groups_of_this_account(self) -> None:
        self.key.add_to_resource_policy(logs_of_this_account_statement(self))

    def _keep_template_lint_clean(self) -> None:
        """cfn-lint: the target accounts' role ARNs CDK Pipelines writes as Fn::Join become Fn::Sub (E3703), and the
        pipeline depends on its role through RoleArn already, so only the policy stays in DependsOn (W3005)."""
        cfn_pipeline = self.pipeline.pipeline.node.default_child
        assert isinstance(cfn_pipeline, codepipeline.CfnPipeline)
        # The L1 holds its stages in the construct library's casing; overrides take CloudFormation paths.
        for i, stage in enumerate(self.resolve(cfn_pipeline.stages)):
            for j, action in enumerate(stage["actions"]):
                values = {f"Stages.{i}.Actions.{j}.RoleArn": action.get("roleArn")}
                values.update(
                    {
                        f"Stages.{i}.Actions.{j}.Configuration.{key}": value
                        for key, value in action.get("configuration", {}).items()
                    }
                )
                for path, value in values.items():
                    if value is not None and _joins_as_subs(value) != value:
                        cfn_pipeline.add_property_override(path, _joins_as_subs(value))
        keep_only_dependencies(cfn_pipeline, _default_policy(self.pipeline.pipeline.role))

    def _asset_projects(self) -> list[codebuild.Project]:
        assets = self.pipeline.node.find_child("Assets")
        return [c for c in assets.node.children if isinstance(c, codebuild.Project)]

    def _scope_asset_role_builds(self) -> None:
        """CDK Pipelines gives its asset role codebuild:StartBuild/BatchGetBuilds/StopBuild on every project
        ("*"); the only builds it runs are this pipeline's asset projects, so the statement names them. The policy
        is final once the pipeline is built: its resource gets the narrowed document, which cdk-nag reads too."""
        policy = _default_policy(self.pipeline.node.find_child("Assets").node.find_child("FileRole"))
        document = self.resolve(policy.document)
        projects = [self.resolve(p.project_arn) for p in self._asset_projects()]
        narrowed = 0
        for statement in document["Statement"]:
            if statement.get("Resource") == "*" and "codebuild:StartBuild" in statement["Action"]:
                statement["Resource"] = projects
                narrowed += 1
        if narrowed != 1:
            raise ValueError(
                f"{policy.node.path}: expected one codebuild:StartBuild statement on '*', found {narrowed}"
            )
        cfn_policy = policy.node.default_child
        assert isinstance(cfn_policy, iam.CfnPolicy)
        cfn_policy.policy_document = document

    def _acknowledge_generated_policies(
        self, artifact_objects: set[str], replica_stacks: dict[str, DeliveryArtifactsReplicaStack]
    ) -> None:
        """Acknowledge on each generated policy exactly the findings of the kinds listed here; anything else
        (another bucket, a new wildcard action, Resource '*') stays open and fails synth."""
        for project in [*self._projects(), *self._asset_projects()]:
            acknowledge(project, Finding.CODEBUILD_SOURCE_FROM_PIPELINE)
        replica_keys = {f"arn:aws:kms:{r}:{self.account}:key/*" for r in replica_stacks}
        for policy in _generated_policies(self.pipeline):
            acknowledge(policy, Finding.CDK_PIPELINES_ROLE_POLICY)
            for statement in self.resolve(policy.document)["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                for action in sorted(a for a in actions if "*" in a and a in ARTIFACT_GRANT_ACTIONS):
                    acknowledge_action_wildcard(policy, action, Finding.PIPELINE_ARTIFACT_GRANT_ACTIONS)
                targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for target in (_as_nag_renders(t) for t in targets):
                    if "*" not in target:
                        continue
                    if target in artifact_objects:
                        acknowledge_resource_wildcard(policy, target, Finding.PIPELINE_ARTIFACT_OBJECTS)
                    elif target in replica_keys:
                        acknowledge_resource_wildcard(policy, target, Finding.PIPELINE_REPLICA_KEY_BY_ALIAS)
                    elif ":log-group:/aws/codebuild/" in target or ":report-group/" in target:
                        acknowledge_resource_wildcard(policy, target, Finding.CODEBUILD_LOGS_AND_REPORTS)

    def _projects(self) -> list[codebuild.Project]:
        return [
            c
            for c in self.pipeline.node.find_all()
            if isinstance(c, codebuild.Project)
            and not c.node.path.startswith(self.pipeline.node.find_child("Assets").node.path)
        ]


def _default_policy(role: IConstruct) -> iam.Policy:
    policy = role.node.find_child("DefaultPolicy")
    assert isinstance(policy, iam.Policy), role.node.path
    return policy


def _generated_policies(pipeline: pipelines.CodePipeline) -> list[iam.Policy]:
    """The policy CDK Pipelines generates for each role it creates (pipeline, actions, CodeBuild projects)."""
    return [c for c in pipeline.node.find_all() if isinstance(c, iam.Policy) and c.node.id == "DefaultPolicy"]


def _joins_as_subs(value: Any) -> Any:
    """{"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::x"]]} -> {"Fn::Sub": "arn:${AWS::Partition}:iam::x"}
    wherever the parts are only strings and pseudo-parameter references; everything else is left as it is."""
    if isinstance(value, list):
        return [_joins_as_subs(v) for v in value]
    if not isinstance(value, dict):
        return value
    join = value.get("Fn::Join")
    if (
        len(value) == 1
        and join
        and join[0] == ""
        and all(
            isinstance(p, str) or (isinstance(p, dict) and str(p.get("Ref", "")).startswith("AWS::")) for p in join[1]
        )
    ):
        return {"Fn::Sub": "".join(p if isinstance(p, str) else "${" + p["Ref"] + "}" for p in join[1])}
    return {k: _joins_as_subs(v) for k, v in value.items()}


def _as_nag_renders(value: Any) -> str:
    """A resolved ARN as cdk-nag writes it in an IAM5 finding id: <LogicalId>, <LogicalId.Attr>, joins inlined."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", r"<\1>", value["Fn::Sub"])
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_as_nag_renders(p) for p in parts)
    raise ValueError(f"cannot render {value} as cdk-nag does")
