"""The job code as one content-addressed file asset (infra/pipeline/code_bundle.py builds the archive)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from infra.pipeline import code_bundle
from infra.runtime_code import runtime_path


def assembly_root(scope: Construct) -> Path:
    """The cloud assembly's top-level directory (cdk.out under the CLI)."""
    root = scope.node.root
    if not isinstance(root, cdk.Stage):
        raise TypeError(f"{scope.node.path}: the construct tree's root is not an App")
    return Path(root.outdir)


def stage_files(scope: Construct, folder: str, files: tuple[str, ...]) -> Path:
    """Copy `files` (repository-relative) to <cloud assembly>/pipelines/<folder>/ once, keeping their paths:
    an asset made from that folder hashes those files, not the repository."""
    target = assembly_root(scope) / "pipelines" / folder
    for relative in files:
        source, copy = runtime_path(relative), target / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        if not copy.exists() or copy.read_bytes() != source.read_bytes():
            copy.write_bytes(source.read_bytes())
    return target


class PipelineCode(Construct):
    """training_jobs/, serving/ and dataset/ as `<hash>.gz` in the CDK assets bucket; one per app."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        bundle, _ = code_bundle.write(assembly_root(self) / "pipelines" / "code-bundle.tar.gz")
        self.asset = s3_assets.Asset(self, "Bundle", path=str(bundle))
        self.bucket_name = self.asset.s3_bucket_name
        self.object_key = self.asset.s3_object_key

    def grant_read(self, role: iam.IRole) -> None:
        """The bundle object, and listing exactly its key (jobs download it as an S3Prefix input)."""
        bundle = self.asset.bucket.arn_for_objects(self.object_key)
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[bundle]))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[self.asset.bucket.bucket_arn],
                conditions={"StringEquals": {"s3:prefix": self.object_key}},
            )
        )
