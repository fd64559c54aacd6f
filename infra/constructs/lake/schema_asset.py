"""The dataset schema as a JSON asset for the Glue jobs.

The repo keeps schemas in YAML for people; Glue gets the equivalent JSON so the job needs
nothing beyond the standard library to read it (`dataset.schema` accepts both). The
conversion is a local asset bundling step: deterministic, no Docker, hashed on the YAML source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import jsii
import yaml
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct


@jsii.implements(cdk.ILocalBundling)
class _YamlToJson:
    def __init__(self, source: Path) -> None:
        self._source = source

    def try_bundle(self, output_dir: str, _options: Any) -> bool:
        document = yaml.safe_load(self._source.read_text())
        target = Path(output_dir) / f"{self._source.stem}.json"
        target.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        return True


class SchemaAsset(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, schema_file: Path) -> None:
        super().__init__(scope, construct_id)
        self.asset = s3_assets.Asset(
            self, "Json",
            # Bundling takes a directory; hashing only the schema file keeps the asset stable.
            path=str(schema_file.parent),
            exclude=["*", f"!{schema_file.name}"],
            bundling=cdk.BundlingOptions(
                # Never used: local bundling always succeeds, so no container is started.
                image=cdk.DockerImage.from_registry("local-bundling-only"),
                local=cast(cdk.ILocalBundling, _YamlToJson(schema_file)),
                output_type=cdk.BundlingOutput.SINGLE_FILE,
            ),
        )
