"""ml.pipeline and network.mode: what an environment file may say, and the one-line errors when it is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, load_environment
from tests.conftest import ROOT

DEV = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
STAGING = yaml.safe_load((ROOT / "config" / "staging.yaml").read_text())


def load(tmp_path: Path, base: dict[str, Any], changes: dict[str, Any], name: str = "dev") -> Any:
    data = yaml.safe_load(yaml.safe_dump(base))
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_environment(path)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"network.interface_endpoints": ["sts"]}, "interface_endpoints must be empty when mode is 'isolated'"),
        ({"network.mode": "vpc", "network.interface_endpoints": ["sts"]},
         "mode 'vpc' needs interface endpoints ['sagemaker_api']"),
        ({"network.mode": "peered"}, "network.mode: 'peered' is not allowed"),
        ({"ml.pipeline.preprocess": {"instance_type": "ml.inf2.xlarge"}},
         "'ml.inf2.xlarge' is not a processing instance type SageMaker accepts (botocore ProcessingInstanceType)"),
        ({"ml.pipeline.train_pytorch": {"instance_type": "ml.m5.huge"}}, "botocore TrainingInstanceType"),
        ({"ml.pipeline.compile_neuron": {"instance_type": "ml.m5.xlarge"}}, "must be a Trainium type"),
        ({"ml.pipeline.train_xgboost": {"instance_count": 3}},
         "train_xgboost.instance_count 3 needs preprocess_shards >= it (got 1)"),
        ({"ml.pipeline.train_pytorch": {"max_wait_minutes": 300}}, "max_wait_minutes applies to managed_spot"),
        ({"ml.pipeline.images": {"pytorch": "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9.0"}},
         "ml.pipeline.images.pytorch: '763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.9.0' is "
         "not in an AWS image registry of eu-west-1"),
        ({"ml.pipeline.images": {"neuron_serving": "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
                                                   "pytorch-inference-neuronx:2.9.0-neuronx-py312-sdk2.31.1-ubuntu24.04"}},
         "neuron_compile and neuron_serving must name the same Neuron SDK"),
        ({"ml.pipeline.images": {"xgboost": "my-registry/xgboost:latest"}}, "is not an ECR image URI"),
        ({"ml.pipeline.approval": "Rejected"}, "ml.pipeline.approval: 'Rejected' is not allowed"),
        ({"ml.pipeline.model_choice": {"pytorch_tolerance": 0.5}}, "ml.pipeline.model_choice.pytorch_tolerance"),
    ],
)
def test_bad_pipeline_settings_fail_with_one_line(tmp_path: Path, changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(tmp_path, DEV, changes)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_scale_is_config(tmp_path: Path) -> None:
    config = load(tmp_path, STAGING, {
        "ml.pipeline.preprocess_shards": 8,
        "ml.pipeline.train_xgboost": {"instance_type": "ml.m5.4xlarge", "instance_count": 4, "managed_spot": True},
    }, name="staging")
    step = config.ml.pipeline.train_xgboost
    assert config.ml.training_type(step) == "ml.m5.4xlarge" and step.max_wait_seconds == 2 * 120 * 60


def test_images_default_to_the_regions_aws_registries(tmp_path: Path) -> None:
    config = load(tmp_path, DEV, {"region": "eu-south-2", "availability_zones": ["eu-south-2a", "eu-south-2b"]})
    assert config.ml.pipeline.image("pytorch", "eu-south-2").startswith("503227376785.dkr.ecr.eu-south-2.")
    assert config.ml.pipeline.image("xgboost", "eu-south-2").startswith("104374241257.dkr.ecr.eu-south-2.")


def test_shipped_environments_choose_their_network_mode() -> None:
    from infra.config import load_all

    modes = {c.name: (c.network.mode, c.ml.pipeline.approval) for c in load_all(ROOT / "config")}
    assert modes == {"dev": ("isolated", "Approved"), "staging": ("vpc", "PendingManualApproval"),
                     "prod": ("vpc", "PendingManualApproval")}


def test_sharded_preprocess_is_configured_only_where_the_script_takes_shards() -> None:
    """preprocess_shards > 1 passes --shards N to training_jobs.preprocess (docs/pipeline.md "Scale is config"):
    an environment may only ask for it once the script accepts it."""
    from infra.config import load_all
    from training_jobs import preprocess

    for config in load_all(ROOT / "config"):
        shards = config.ml.pipeline.preprocess_shards
        if shards > 1:
            assert preprocess.parse_args(["--shards", str(shards)]).shards == shards, config.name
