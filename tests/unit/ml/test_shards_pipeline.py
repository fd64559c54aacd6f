"""Scale and spot as config: what an environment may ask for, and the training steps it gets (the pipeline
definition rendered without a synth, its training requests checked against botocore's CreateTrainingJob)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import ConfigError, EnvironmentConfig, load_environment
from infra.pipeline import churn, render
from infra.pipeline.steps import walk
from tests.conftest import ROOT
from tests.infra.pipeline_checks import concrete, fake_values, problems
from training_jobs import preprocess

DEV = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())
SCALED = {
    "ml.pipeline.preprocess_shards": 8,
    "ml.pipeline.train_xgboost": {
        "instance_type": "ml.m5.4xlarge",
        "instance_count": 4,
        "managed_spot": True,
        "max_runtime_minutes": 180,
        "max_wait_minutes": 360,
    },
    "ml.pipeline.train_pytorch": {"managed_spot": True},
}


def load(tmp_path: Path, changes: dict[str, Any]) -> EnvironmentConfig:
    data = yaml.safe_load(yaml.safe_dump(DEV))
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_environment(path)


def definition(config: EnvironmentConfig) -> dict[str, Any]:
    pipeline = churn.build(churn.ChurnPipelineInputs(config, "dataset/schemas/ibm_telco_churn.yaml", "0" * 64 + ".gz"))
    body = render.sub_body(render.definition(pipeline), churn.VARIABLES)
    values = {
        **fake_values(config.region, config.account),
        "CodeBucket": "cdk-hnb659fds-assets-bucket",
        "JobRoleArn": f"arn:aws:iam::{config.account}:role/telecom-ml-dev-sagemaker-execution",
    }
    return dict(json.loads(render.resolve(body, values)))


def steps(config: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    from tests.infra.pipeline_checks import all_steps

    return {s["Name"]: s for s in all_steps(definition(config)["Steps"])}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"ml.pipeline.train_xgboost": {"instance_count": 4}, "ml.pipeline.preprocess_shards": 2},
            "train_xgboost.instance_count 4 needs preprocess_shards >= it (got 2)",
        ),
        ({"ml.pipeline.train_pytorch": {"instance_count": 2}}, "train_pytorch.instance_count must be 1"),
        ({"ml.pipeline.preprocess": {"instance_count": 3}}, "preprocess.instance_count must be 1"),
        (
            {"ml.pipeline.compile_neuron": {"instance_type": "ml.trn1.2xlarge", "managed_spot": True}},
            "compile_neuron.managed_spot is not supported",
        ),
        (
            {"ml.pipeline.train_xgboost": {"managed_spot": True, "max_wait_minutes": 60}},
            "max_wait_minutes must be at least max_runtime_minutes",
        ),
        ({"ml.pipeline.preprocess_shards": 0}, "ml.pipeline.preprocess_shards"),
        ({"ml.pipeline.preprocess_shards": 1001}, "ml.pipeline.preprocess_shards"),
    ],
)
def test_scale_and_spot_settings_fail_with_one_line(tmp_path, changes, expected):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, changes)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_a_scaled_environment_trains_xgboost_distributed_on_shards(tmp_path):
    config = load(tmp_path, SCALED)
    by_name = steps(config)
    arguments = by_name["Preprocess"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--shards") + 1] == "8"
    assert preprocess.parse_args(arguments).shards == 8
    xgb = by_name["TrainXGBoost"]["Arguments"]
    assert xgb["ResourceConfig"]["InstanceCount"] == 4
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in xgb["InputDataConfig"]
    }
    assert channels == {
        "train": "ShardedByS3Key",
        "validation": "FullyReplicated",
        "transformer": "FullyReplicated",
        "code": "FullyReplicated",
    }
    pytorch = by_name["TrainPyTorch"]["Arguments"]
    assert pytorch["ResourceConfig"]["InstanceCount"] == 1
    assert {c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in pytorch["InputDataConfig"]} == {
        "FullyReplicated"
    }


@pytest.mark.parametrize("name", ["TrainXGBoost", "TrainPyTorch"])
def test_managed_spot_steps_checkpoint_and_wait_at_least_their_runtime(tmp_path, name):
    config = load(tmp_path, SCALED)
    definition_ = definition(config)
    step = steps(config)[name]
    args = step["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    stopping = args["StoppingCondition"]
    assert stopping["MaxWaitTimeInSeconds"] >= stopping["MaxRuntimeInSeconds"]
    if name == "TrainXGBoost":
        assert (stopping["MaxRuntimeInSeconds"], stopping["MaxWaitTimeInSeconds"]) == (180 * 60, 360 * 60)
    checkpoint = args["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"  # where the scripts look (training_jobs.checkpoints)
    uri = json.dumps(checkpoint["S3Uri"])
    assert f"/{churn.ARTIFACT_PREFIX}/checkpoints/{name}/" in uri and "SnapshotDate" in uri
    request = {**concrete(definition_, step), "TrainingJobName": "pipelines-abc-" + name}
    assert problems("CreateTrainingJob", request) == []


def test_on_demand_steps_have_no_checkpoints_or_wait(tmp_path):
    config = load(
        tmp_path,
        {"ml.pipeline.train_xgboost": {"managed_spot": False}, "ml.pipeline.train_pytorch": {"managed_spot": False}},
    )
    for name in ("TrainXGBoost", "TrainPyTorch"):
        args = steps(config)[name]["Arguments"]
        assert args["EnableManagedSpotTraining"] is False
        assert "CheckpointConfig" not in args and "MaxWaitTimeInSeconds" not in args["StoppingCondition"]


def test_every_training_step_of_the_shipped_dev_config_is_spot_with_checkpoints():
    config = load_environment(ROOT / "config" / "dev.yaml")
    pipeline = churn.build(churn.ChurnPipelineInputs(config, "dataset/schemas/ibm_telco_churn.yaml", "k.gz"))
    spot = {s.name: s.checkpoint_uri is not None for s in walk(pipeline.steps) if hasattr(s, "checkpoint_uri")}
    assert spot == {"TrainXGBoost": True, "TrainPyTorch": True, "CompileNeuron": False}
