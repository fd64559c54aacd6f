"""SageMaker instances an environment's config needs at once, per Service Quotas usage (pure, no AWS calls).

SageMaker counts instances per type and per usage, each a quota named `<type> for <usage> usage`
(e.g. `ml.inf2.xlarge for endpoint usage`). The need of one quota is the largest number of instances of
that type the environment runs at the same time in one activity:

- endpoint: twice `ml.endpoint.max_instances`, because a blue/green update (the deployer's canary) runs the
  new fleet beside the old one; the PyTorch package serves on `ml.endpoint.instance_type`, the XGBoost package
  on `ml.pipeline.xgboost_serving_instance_type`, and either may ship;
- training: TrainXGBoost and TrainPyTorch run at the same time (spot ones count against the spot quota);
  CompileNeuron runs alone;
- processing: Preprocess; the three evaluations at once; Baseline beside PackageXGBoost; batch scoring's
  prepare and publish; the monitoring job(s);
- transform: the batch-scoring transform of either package.

Activities of different pipelines (training, batch scoring, monitoring) may also overlap; the need here is the
largest single activity, so a quota that passes can still be short when they coincide.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from infra.config import EnvironmentConfig, ProcessingStepConfig, TrainingStepConfig

ENDPOINT = "endpoint"
TRAINING = "training job"
SPOT_TRAINING = "spot training job"
PROCESSING = "processing job"
TRANSFORM = "transform job"


@dataclass(frozen=True)
class InstanceNeed:
    usage: str
    instance_type: str
    count: int
    why: str  # what in the config needs this many, as a reader of the config would find it

    @property
    def quota_name(self) -> str:
        return f"{self.instance_type} for {self.usage} usage"


# One activity: (usage, instance type, count, what runs) of everything that runs at the same time.
_Activity = list[tuple[str, str, int, str]]


def _training(config: EnvironmentConfig, step: TrainingStepConfig, name: str) -> tuple[str, str, int, str]:
    usage = SPOT_TRAINING if step.managed_spot else TRAINING
    return usage, config.ml.training_type(step), step.instance_count, name


def _processing(
    config: EnvironmentConfig, step: ProcessingStepConfig, name: str, times: int = 1
) -> tuple[str, str, int, str]:
    return PROCESSING, config.ml.processing_type(step), times * step.instance_count, name


def _activities(config: EnvironmentConfig) -> list[_Activity]:
    ml, pipeline, scoring, monitoring = config.ml, config.ml.pipeline, config.ml.batch_scoring, config.monitoring
    endpoint_count = 2 * ml.endpoint.max_instances
    fleets = f"2 x ml.endpoint.max_instances {ml.endpoint.max_instances} (a blue/green update runs two fleets)"
    monitoring_jobs = 2 if monitoring.engine == "model_monitor" and monitoring.model_quality else 1
    transform = (TRANSFORM, scoring.instance_count, "ml.batch_scoring.instance_count")
    return [
        [(ENDPOINT, ml.endpoint.instance_type, endpoint_count, f"PyTorch package: {fleets}")],
        [(ENDPOINT, pipeline.xgboost_serving_instance_type, endpoint_count, f"XGBoost package: {fleets}")],
        [
            _training(config, pipeline.train_xgboost, "ml.pipeline.train_xgboost"),
            _training(config, pipeline.train_pytorch, "ml.pipeline.train_pytorch"),
        ],
        [_training(config, pipeline.compile_neuron, "ml.pipeline.compile_neuron")],
        [_processing(config, pipeline.preprocess, "ml.pipeline.preprocess")],
        [_processing(config, pipeline.evaluate, "ml.pipeline.evaluate x 3 (three evaluations at once)", times=3)],
        [
            _processing(config, pipeline.baseline, "ml.pipeline.baseline"),
            _processing(config, pipeline.evaluate, "PackageXGBoost (ml.pipeline.evaluate)"),
        ],
        [_processing(config, scoring.prepare, "ml.batch_scoring.prepare")],
        [_processing(config, scoring.publish, "ml.batch_scoring.publish")],
        [(PROCESSING, monitoring.instance_type, monitoring_jobs, f"monitoring ({monitoring.engine}), jobs per run")],
        [(transform[0], scoring.instance_type("pytorch", ml), transform[1], f"{transform[2]} (PyTorch package)")],
        [(transform[0], scoring.instance_type("xgboost", ml), transform[1], f"{transform[2]} (XGBoost package)")],
    ]


def instance_needs(config: EnvironmentConfig) -> list[InstanceNeed]:
    """One need per quota, the largest over the activities, sorted by quota name."""
    best: dict[tuple[str, str], InstanceNeed] = {}
    for activity in _activities(config):
        counts: dict[tuple[str, str], int] = defaultdict(int)
        reasons: dict[tuple[str, str], list[str]] = defaultdict(list)
        for usage, instance_type, count, why in activity:
            counts[usage, instance_type] += count
            reasons[usage, instance_type].append(why)
        for key, count in counts.items():
            if key not in best or count > best[key].count:
                best[key] = InstanceNeed(key[0], key[1], count, " + ".join(reasons[key]))
    return sorted(best.values(), key=lambda need: need.quota_name)
