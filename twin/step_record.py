"""What each twin step ran, kept so it can be compared with the SageMaker pipeline definition.

One StepRecord per step, in run order, written to <out>/steps.json and to summary.json["steps"].
For a job step, `entry_point` is the module whose `main(argv)` ran and `argv` the exact list it got;
`environment` holds the SM_* variables set around the call (training jobs); `container_paths` maps
each SageMaker container path (/opt/ml/...) to the local directory that stood in for it, so
`container_argv` / `container_environment` are the arguments as the container would see them.
In-process steps (conform, gate, register, serve, batch-score, the loop's traffic and retrain decision, report)
record the function that stands in for the cloud step, with no argv.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# What a step stands in for in the cloud.
GLUE_JOBS = "glue-jobs"
PROCESSING_JOB = "processing-job"
TRAINING_JOB = "training-job"
CONDITION = "condition"
MODEL_REGISTRY = "model-registry"
ENDPOINT = "endpoint"
LAMBDA = "lambda"
BATCH_TRANSFORM = "batch-transform"
LOCAL = "local"
JOB_KINDS = (PROCESSING_JOB, TRAINING_JOB)


@dataclass(frozen=True)
class StepRecord:
    name: str
    kind: str
    entry_point: str
    argv: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    container_paths: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None
    seconds: float = 0.0

    def to_container(self, value: str) -> str:
        """`value` with a local stand-in directory replaced by its container path."""
        for container, local in sorted(self.container_paths.items(), key=lambda kv: -len(kv[1])):
            if value == local or value.startswith(local + "/"):
                return container + value[len(local):]
        return value

    @property
    def container_argv(self) -> list[str]:
        return [self.to_container(a) for a in self.argv]

    @property
    def container_environment(self) -> dict[str, str]:
        return {k: self.to_container(v) for k, v in self.environment.items()}

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 3), "container_argv": self.container_argv,
                "container_environment": self.container_environment}


def write_steps(records: list[StepRecord], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"steps": [r.to_json() for r in records]}, indent=2) + "\n")
    return path
