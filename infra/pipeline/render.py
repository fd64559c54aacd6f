"""The pipeline definition document, and the Fn::Sub body CloudFormation stores it as.

Deploy-time values (bucket, key and role ARNs, the Lambda's ARN) appear in the document as
`${Name}` variables of the Fn::Sub, with CloudFormation's pseudo parameters (`${AWS::Region}`);
any other `${` in the document is escaped as `${!` so CloudFormation leaves it as written.
Rendering is pure and ordered: the same steps give the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from infra.pipeline.expressions import Parameter
from infra.pipeline.steps import Step, walk

FORMAT_VERSION = "2020-12-01"
PSEUDO_PARAMETERS = ("AWS::AccountId", "AWS::Partition", "AWS::Region", "AWS::URLSuffix")
# CloudFormation limit of PipelineDefinitionBody (characters).
MAX_BODY_CHARS = 1_048_576
_VARIABLE = re.compile(r"\$\{([^}!]*)\}")


@dataclass(frozen=True)
class Pipeline:
    name: str
    parameters: tuple[Parameter, ...]
    steps: tuple[Step, ...]
    # The Fn::Sub variables the steps refer to as `${Name}`; whoever deploys the pipeline must fill each.
    variables: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [s.name for s in walk(self.steps)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pipeline {self.name}: step names used twice: {duplicates}")

    def step(self, name: str) -> Step:
        for step in walk(self.steps):
            if step.name == name:
                return step
        raise KeyError(name)


def definition(pipeline: Pipeline) -> dict[str, Any]:
    """The definition document, as the SageMaker Python SDK's Pipeline.definition() writes it."""
    return {
        "Version": FORMAT_VERSION,
        "Metadata": {},
        "Parameters": [p.declaration() for p in pipeline.parameters],
        "PipelineExperimentConfig": None,
        "MlflowConfig": None,
        "Steps": [s.to_request() for s in pipeline.steps],
    }


def sub_body(document: dict[str, Any], variables: Iterable[str]) -> str:
    """Compact JSON for Fn::Sub: every `${` that is not one of `variables` (or a pseudo parameter) escaped."""
    allowed = sorted({*variables, *PSEUDO_PARAMETERS})
    text = json.dumps(document, separators=(",", ":"), ensure_ascii=True)
    known = "|".join(re.escape(name) for name in allowed)
    body = re.sub(r"\$\{(?!(?:" + known + r")\})", "${!", text)
    if len(body) > MAX_BODY_CHARS:
        raise ValueError(f"pipeline definition has {len(body)} characters; CloudFormation takes {MAX_BODY_CHARS}")
    return body


def variables_used(body: str) -> set[str]:
    """The Fn::Sub variables `body` refers to (escaped `${!...}` literals excluded)."""
    return set(_VARIABLE.findall(body))


def pretty(body: str) -> str:
    """The same document, indented for people (its Fn::Sub variables left as they are)."""
    return json.dumps(json.loads(body), indent=2, ensure_ascii=False) + "\n"


def resolve(body: str, values: dict[str, str]) -> str:
    """What CloudFormation makes of `body`: each `${Name}` replaced, `${!` unescaped."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"no value for Fn::Sub variable ${{{name}}}")
        return values[name]

    return _VARIABLE.sub(value, body).replace("${!", "${")
