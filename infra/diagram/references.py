"""Which resources a template value refers to: Ref, Fn::GetAtt, Fn::Sub, cross-stack outputs and physical names.

A reference is found where CloudFormation would resolve it (`Ref`, `Fn::GetAtt`, `${X}` in `Fn::Sub`), through
the producing stack's output (`Fn::GetStackOutput`, `Fn::ImportValue`), or where a literal string names a
resource that has a fixed physical name: the bare name (`telecom-ml-prod-churn` in an event pattern or an
environment variable), its ARN (`arn:aws:sagemaker:<region>:<account>:pipeline/<name>`), or a name prefix in
an EventBridge pattern (`{"prefix": "telecom-ml-prod-retrain-"}`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from infra.diagram.assembly import DiagramError, StackTemplate, Stage

ResourceKey = tuple[str, str]  # (stack name inside the stage, logical id)
KeyPath = tuple[str, ...]  # the property keys from the resource's Properties down to the reference

# Keys whose values describe or condition rather than use, and every key ending in Tags or Description: tags,
# descriptions, IAM conditions and trust, key policies (who may use a key is drawn from the principals' own policies).
SKIPPED_KEYS = frozenset(
    {"Tags", "Description", "DisplayName", "Condition", "AssumeRolePolicyDocument", "KeyPolicy", "Metadata"}
)
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
# Stands for a value only known at deploy time: no name or ARN contains it, and it keeps flattened JSON valid.
_PLACEHOLDER = "{unresolved}"


def _name(properties: dict[str, Any], *keys: str) -> str | None:
    value: Any = properties
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


# type -> (bare name, ARN resource parts "<service>:<resource>" with {name}, "<service>::<resource>" for a global
# one); a part ending in / or : is a prefix
_NAMED: dict[str, tuple[Callable[[dict[str, Any]], str | None], tuple[str, ...]]] = {
    "AWS::Athena::WorkGroup": (lambda p: _name(p, "Name"), ("athena:workgroup/{name}",)),
    "AWS::CloudWatch::Alarm": (lambda p: _name(p, "AlarmName"), ("cloudwatch:alarm:{name}",)),
    "AWS::CloudWatch::Dashboard": (lambda p: _name(p, "DashboardName"), ("cloudwatch::dashboard/{name}",)),
    "AWS::DynamoDB::Table": (lambda p: _name(p, "TableName"), ("dynamodb:table/{name}",)),
    "AWS::Glue::Connection": (lambda p: _name(p, "ConnectionInput", "Name"), ("glue:connection/{name}",)),
    "AWS::Glue::Database": (lambda p: _name(p, "DatabaseInput", "Name"), ("glue:database/{name}",)),
    "AWS::Glue::Job": (lambda p: _name(p, "Name"), ("glue:job/{name}",)),
    # not drawn, but indexed so that a name it shares with a connection is not taken for the connection's
    "AWS::Glue::SecurityConfiguration": (lambda p: _name(p, "Name"), ()),
    "AWS::IAM::Role": (lambda p: _name(p, "RoleName"), ("iam:role/{name}",)),
    "AWS::Lambda::Function": (lambda p: _name(p, "FunctionName"), ("lambda:function:{name}",)),
    "AWS::SNS::Topic": (lambda p: _name(p, "TopicName"), ("sns:{name}",)),
    "AWS::SQS::Queue": (lambda p: _name(p, "QueueName"), ("sqs:{name}",)),
    "AWS::SageMaker::ModelPackageGroup": (
        lambda p: _name(p, "ModelPackageGroupName"),
        ("sagemaker:model-package-group/{name}", "sagemaker:model-package/{name}/"),
    ),
    "AWS::SageMaker::Pipeline": (lambda p: _name(p, "PipelineName"), ("sagemaker:pipeline/{name}",)),
    "AWS::Scheduler::Schedule": (lambda p: _name(p, "Name"), ("scheduler:schedule/default/{name}",)),
    "AWS::StepFunctions::StateMachine": (
        lambda p: _name(p, "StateMachineName"),
        ("states:stateMachine:{name}", "states:execution:{name}:"),
    ),
}


def _embedded_json(text: str) -> Any:
    if not text.startswith(("{", "[")):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


@dataclass(frozen=True)
class Reference:
    target: ResourceKey
    path: KeyPath


class References:
    """Finds the resources a value refers to, for every stack of one stage."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self._by_stack_name = {s.stack_name: s for s in stage.stacks}
        self._exports: dict[str, tuple[StackTemplate, Any]] = {}
        self._bare: dict[str, list[ResourceKey]] = {}
        self._arns: list[tuple[str, bool, ResourceKey]] = []
        self._types: dict[ResourceKey, str] = {}
        for stack in stage.stacks:
            for output in stack.template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if isinstance(export, str):
                    self._exports[export] = (stack, output.get("Value"))
            for logical_id, resource in sorted(stack.resources.items()):
                self._index(stack, logical_id, resource)

    def _index(self, stack: StackTemplate, logical_id: str, resource: dict[str, Any]) -> None:
        named = _NAMED.get(resource.get("Type", ""))
        if named is None:
            return
        name = named[0](resource.get("Properties", {}))
        if not name:
            return
        key = (stack.name, logical_id)
        self._types[key] = resource["Type"]
        self._bare.setdefault(name, []).append(key)
        for part in named[1]:
            service, _, rest = part.partition(":")
            region = self.stage.region
            if service == "iam" or rest.startswith(":"):  # global: IAM, CloudWatch dashboards ("service::...")
                region, rest = "", rest.removeprefix(":")
            arn = f"arn:aws:{service}:{region}:{self.stage.account}:{rest.format(name=name)}"
            self._arns.append((arn, arn.endswith(("/", ":")), key))

    def in_value(self, stack: StackTemplate, value: Any, path: KeyPath = ()) -> Iterator[Reference]:
        if isinstance(value, dict):
            yield from self._in_dict(stack, value, path)
        elif isinstance(value, list):
            for item in value:
                yield from self.in_value(stack, item, path)
        elif isinstance(value, str):
            yield from self._named_by(value, path)
            embedded = _embedded_json(value)
            if embedded is not None:  # e.g. a schedule's Input: {"PipelineName": "<name>", ...}
                yield from self.in_value(stack, embedded, path)

    def _in_dict(self, stack: StackTemplate, value: dict[str, Any], path: KeyPath) -> Iterator[Reference]:
        if len(value) == 1:
            ((key, argument),) = value.items()
            intrinsic = self._intrinsic(stack, key, argument, path)
            if intrinsic is not None:
                yield from intrinsic
                return
        for key, item in sorted(value.items()):
            if key not in SKIPPED_KEYS and not key.endswith(("Description", "Tags")):
                yield from self.in_value(stack, item, (*path, key))

    def _intrinsic(self, stack: StackTemplate, key: str, argument: Any, path: KeyPath) -> Iterator[Reference] | None:
        if key == "Ref":
            return self._local(stack, argument, path)
        if key == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else str(argument).split(".")[0]
            return self._local(stack, target, path)
        if key == "Fn::Sub":
            return self._in_sub(stack, argument, path)
        if key == "Fn::Join":
            return self._in_join(stack, argument, path)
        if key == "Fn::GetStackOutput":
            return self._stack_output(stack, argument, path)
        if key == "Fn::ImportValue":
            return self._import(stack, argument, path)
        if key == "prefix" and isinstance(argument, str) and "EventPattern" in path:
            return self._named_with_prefix(argument, path)
        return None

    def _local(self, stack: StackTemplate, logical_id: Any, path: KeyPath) -> Iterator[Reference]:
        if isinstance(logical_id, str) and logical_id in stack.resources:
            yield Reference((stack.name, logical_id), path)

    def _in_sub(self, stack: StackTemplate, argument: Any, path: KeyPath) -> Iterator[Reference]:
        template, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        for variable in _SUB_VARIABLE.findall(template):
            base = variable.split(".")[0]
            if base not in variables:
                yield from self._local(stack, base, path)
        yield from self.in_value(stack, variables, path)
        flat = self.flatten_sub(template)
        yield from self._named_by(flat, path)
        embedded = _embedded_json(flat)
        if embedded is not None:  # e.g. a pipeline definition: {"Arguments": {"ModelPackageGroupName": "<name>"}}
            yield from self.in_value(stack, embedded, path)

    def _in_join(self, stack: StackTemplate, argument: Any, path: KeyPath) -> Iterator[Reference]:
        yield from self.in_value(stack, argument[1], path)
        yield from self._named_by(self.flatten(argument[0], argument[1]), path)

    def _stack_output(self, stack: StackTemplate, argument: Any, path: KeyPath) -> Iterator[Reference]:
        producer = self._by_stack_name.get(argument.get("StackName", ""))
        output = producer.template.get("Outputs", {}).get(argument.get("OutputName", "")) if producer else None
        if producer is None or output is None:
            raise DiagramError(
                f"stage {self.stage.name}, stack {stack.name}: Fn::GetStackOutput {argument} names no output of a "
                "stack in this stage"
            )
        yield from self.in_value(producer, output.get("Value"), path)

    def _import(self, stack: StackTemplate, argument: Any, path: KeyPath) -> Iterator[Reference]:
        if not isinstance(argument, str):
            return  # an import whose name is computed: not resolvable from the templates alone
        if argument not in self._exports:
            raise DiagramError(
                f"stage {self.stage.name}, stack {stack.name}: Fn::ImportValue {argument!r} is exported "
                "by no stack in this stage"
            )
        producer, value = self._exports[argument]
        yield from self.in_value(producer, value, path)

    def _named_by(self, text: str, path: KeyPath) -> Iterator[Reference]:
        candidates = self._bare.get(text, [])
        if len(candidates) > 1 and path:  # a shared name: the key may say which type it names ("PipelineName")
            candidates = [c for c in candidates if self._types[c].split("::")[-1].lower() in path[-1].lower()]
        if len(candidates) == 1:  # otherwise nothing says which of the resources that share the name is meant
            yield Reference(candidates[0], path)
        if not text.startswith("arn:"):
            return
        for arn, is_prefix, key in self._arns:
            if text == arn or text.startswith(arn if is_prefix else (f"{arn}/", f"{arn}:")):
                yield Reference(key, path)

    def _named_with_prefix(self, prefix: str, path: KeyPath) -> Iterator[Reference]:
        for name, keys in sorted(self._bare.items()):
            if name.startswith(prefix) and len(keys) == 1:
                yield Reference(keys[0], path)

    def flatten(self, separator: str, parts: list[Any]) -> str:
        """A joined string with pseudo parameters filled in and every other intrinsic as a placeholder."""
        return separator.join(self._flat_part(part) for part in parts)

    def _flat_part(self, part: Any) -> str:
        if isinstance(part, str):
            return part
        if isinstance(part, dict) and set(part) == {"Ref"}:
            return self._pseudo(part["Ref"])
        if isinstance(part, dict) and set(part) == {"Fn::Join"}:
            return self.flatten(part["Fn::Join"][0], part["Fn::Join"][1])
        return _PLACEHOLDER

    def flatten_sub(self, template: str) -> str:
        return _SUB_VARIABLE.sub(lambda match: self._pseudo(match.group(1)), template)

    def _pseudo(self, name: Any) -> str:
        pseudo = {
            "AWS::Region": self.stage.region,
            "AWS::AccountId": self.stage.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        return pseudo.get(name, _PLACEHOLDER) if isinstance(name, str) else _PLACEHOLDER

    def strings(self, value: Any) -> Iterator[str]:
        """Every literal string in a value, joins and substitutions flattened (for event sources and types)."""
        if isinstance(value, dict):
            if set(value) == {"Fn::Join"}:
                yield self.flatten(value["Fn::Join"][0], value["Fn::Join"][1])
            elif set(value) == {"Fn::Sub"}:
                argument = value["Fn::Sub"]
                yield self.flatten_sub(argument if isinstance(argument, str) else argument[0])
            for key, item in value.items():
                if key not in SKIPPED_KEYS and not key.endswith(("Description", "Tags")):
                    yield from self.strings(item)
        elif isinstance(value, list):
            for item in value:
                yield from self.strings(item)
        elif isinstance(value, str):
            yield value
