"""Pipeline expressions, rendered exactly as the pipeline definition format (2020-12-01) writes them.

A value in a step's arguments is a plain JSON value or one of these; `render` turns a whole argument
tree into JSON. Values fixed at deploy time (bucket, key, role) are not expressions: they are
`${Name}` variables of the CloudFormation Fn::Sub that wraps the definition (see render.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class Expression:
    """A value the pipeline resolves at run time."""

    def render(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Parameter(Expression):
    """A pipeline parameter (String): what an execution is started with."""

    name: str
    default: str
    description: str = ""

    def render(self) -> dict[str, Any]:
        return {"Get": f"Parameters.{self.name}"}

    def declaration(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "String", "DefaultValue": self.default}


@dataclass(frozen=True)
class ExecutionVariable(Expression):
    """A property of the running execution, e.g. PipelineExecutionId."""

    name: str

    def render(self) -> dict[str, Any]:
        return {"Get": f"Execution.{self.name}"}


EXECUTION_ID = ExecutionVariable("PipelineExecutionId")


@dataclass(frozen=True)
class StepProperty(Expression):
    """A property of an earlier step, by its path in the Describe*/Lambda response."""

    step: str
    path: str

    def render(self) -> dict[str, Any]:
        return {"Get": f"Steps.{self.step}.{self.path}"}


@dataclass(frozen=True)
class JsonGet(Expression):
    """A value read from a property file (JSON) a processing step wrote."""

    step: str
    property_file: str
    path: str

    def render(self) -> dict[str, Any]:
        return {
            "Std:JsonGet": {
                "PropertyFile": {"Get": f"Steps.{self.step}.PropertyFiles.{self.property_file}"},
                "Path": self.path,
            }
        }


@dataclass(frozen=True)
class Join(Expression):
    """Values joined with `on` at run time (the only string function the format has)."""

    on: str
    values: tuple[Any, ...]

    def render(self) -> dict[str, Any]:
        return {"Std:Join": {"On": self.on, "Values": [render(v) for v in self.values]}}


def render(value: Any) -> Any:
    """`value` as definition JSON: expressions rendered, tuples as lists, None-valued keys left out."""
    if isinstance(value, Expression):
        return value.render()
    if isinstance(value, Mapping):
        return {str(k): render(v) for k, v in value.items() if v is not None}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [render(v) for v in value]
    return value

