"""A stage's templates as a graph a person reads: drawn resources, and the references between them.

Edges point from the resource that uses to the resource used (a Glue job -> the bucket its role may write),
except where the template says who sends to whom the other way round: a resource an EventBridge pattern
matches points at the rule (`event`), and a resource an alarm watches points at the alarm (`metric`). Policies
become edges from the principal they are attached to (`IAM`, `Lake Formation`). Every edge remembers the stack
whose template declares it, so a layer draws what its own stacks declare, including the references they make
to resources of other stacks.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from infra.diagram import layers
from infra.diagram.assembly import StackTemplate, Stage
from infra.diagram.references import KeyPath, References, ResourceKey


@dataclass(frozen=True)
class Node:
    id: str
    stack: str
    name: str  # the construct path under the stack, less generic tails ("Zones/Raw" for Zones/Raw/Bucket/Resource)
    kind: str  # human type label, e.g. "S3 bucket" or "40 CloudWatch alarms"
    colour: str


@dataclass(frozen=True, order=True)
class Edge:
    source: str
    target: str
    kind: str  # "ref", "event", "metric", "env", "access logs", "IAM", "Lake Formation"
    declared_in: str


@dataclass
class StageGraph:
    stage: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: set[Edge] = field(default_factory=set)


@dataclass(frozen=True)
class LayerGraph:
    stage: str
    layer: layers.Layer
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str, tuple[str, ...]], ...]  # (source, target, kinds), sorted
    notes: dict[str, tuple[str, ...]]  # node id -> lines written under its label ("KMS: DataKey")


def _construct_path(stage: str, stack: StackTemplate, logical_id: str, resource: dict[str, Any]) -> list[str]:
    """The construct path under the stack, from the construct tree or else the template's path metadata."""
    path = stack.paths.get(logical_id) or resource.get("Metadata", {}).get("aws:cdk:path")
    if not isinstance(path, str) or not path.startswith(f"{stage}/{stack.name}/"):
        return [logical_id]
    return path.removeprefix(f"{stage}/{stack.name}/").split("/")


def _meaningful(segments: list[str]) -> list[str]:
    kept = list(segments)
    while len(kept) > 1 and kept[-1] in layers.GENERIC_SEGMENTS:
        kept.pop()
    return kept


def _node_id(stack: str, segments: list[str]) -> str:
    """The construct path, with what DOT would read as a port (':') or a quote replaced."""
    return re.sub(r"[^A-Za-z0-9_./-]", "_", "/".join([stack, *segments]))


def _kind_of(path: KeyPath) -> tuple[str, bool]:
    """(edge kind, reversed?) for a reference found under these property keys."""
    if "EventPattern" in path:
        return "event", True
    if "Dimensions" in path or "Metrics" in path:
        return "metric", True
    if "LoggingConfiguration" in path:
        return "access logs", False
    if "Environment" in path and "Variables" in path:
        return "env", False
    return "ref", False


class _Builder:
    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.references = References(stage)
        self.types: dict[ResourceKey, str] = {}
        self.roles: dict[ResourceKey, str] = {}
        self.node_of: dict[ResourceKey, str] = {}
        self.graph = StageGraph(stage.name)
        self.raw: dict[ResourceKey, set[tuple[ResourceKey, str, str]]] = defaultdict(set)

    def build(self) -> StageGraph:
        for stack in self.stage.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                key = (stack.name, logical_id)
                self.types[key] = resource.get("Type", "")
                self.roles[key] = layers.role_of(self.types[key], resource.get("Properties", {}))
        self._hide_providers()
        members: dict[str, list[str]] = defaultdict(list)
        for stack in self.stage.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                self._place(stack, logical_id, resource, members)
        for node_id, names in members.items():  # "<n> CloudWatch alarms", or the one member's own name
            node = self.graph.nodes[node_id]
            if len(names) == 1:
                kind, name = node.kind.removesuffix("s"), names[0]
            else:
                kind, name = f"{len(names)} {node.kind}", node.name
            self.graph.nodes[node_id] = Node(node.id, node.stack, name, kind, node.colour)
        for stack in self.stage.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                self._collect(stack, logical_id, resource)
        self._event_emitters()
        self._resolve_edges()
        return self.graph

    def _hide_providers(self) -> None:
        """Custom resources' providers (the function behind ServiceToken) are CDK plumbing, not architecture."""
        for stack in self.stage.stacks:
            for resource in stack.resources.values():
                if resource.get("Type", "").startswith("Custom::") or resource.get("Type") == (
                    "AWS::CloudFormation::CustomResource"
                ):
                    token = resource.get("Properties", {}).get("ServiceToken")
                    for reference in self.references.in_value(stack, token):
                        self.roles[reference.target] = "hidden"

    def _place(
        self, stack: StackTemplate, logical_id: str, resource: dict[str, Any], members: dict[str, list[str]]
    ) -> None:
        key = (stack.name, logical_id)
        role = self.roles[key]
        if role not in ("node", "aggregate"):
            return
        segments = _construct_path(self.stage.name, stack, logical_id, resource)
        meaningful = _meaningful(segments)
        label, colour = layers.type_label(self.types[key])
        if role == "node":
            node_id = _node_id(stack.name, [s for s in segments if s != "Resource"])
            self.graph.nodes[node_id] = Node(node_id, stack.name, "/".join(meaningful), label, colour)
        else:
            top = segments[0]
            node_id = _node_id(stack.name, [top, label.lower().replace(" ", "-")])
            self.graph.nodes.setdefault(node_id, Node(node_id, stack.name, top, label, colour))
            members[node_id].append("/".join(meaningful))
        self.node_of[key] = node_id

    def _collect(self, stack: StackTemplate, logical_id: str, resource: dict[str, Any]) -> None:
        key = (stack.name, logical_id)
        properties = resource.get("Properties", {})
        grant = layers.GRANT_TYPES.get(self.types[key])
        if grant is not None:
            principal_keys, resource_keys, kind = grant
            principals = {r.target for k in principal_keys for r in self.references.in_value(stack, properties.get(k))}
            if self.types[key] == "AWS::IAM::ManagedPolicy":
                principals.add(key)  # roles reach it through ManagedPolicyArns
            targets = {r.target for k in resource_keys for r in self.references.in_value(stack, properties.get(k))}
            for principal in principals:
                for target in targets:
                    self._add_raw(principal, target, kind, stack.name)
            return
        for reference in self.references.in_value(stack, properties):
            kind, reverse = _kind_of(reference.path)
            source, target = (reference.target, key) if reverse else (key, reference.target)
            self._add_raw(source, target, kind, stack.name)
            if kind == "event":  # also drawn in the layer of the resource the rule listens to
                self._add_raw(source, target, kind, reference.target[0])

    def _add_raw(self, source: ResourceKey, target: ResourceKey, kind: str, declared_in: str) -> None:
        if source != target:
            self.raw[source].add((target, kind, declared_in))

    def _event_emitters(self) -> None:
        """Custom events: a resource whose definition names a rule's source and detail type sends to that rule."""
        for stack in self.stage.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                if self.types[(stack.name, logical_id)] != "AWS::Events::Rule":
                    continue
                pattern = resource.get("Properties", {}).get("EventPattern", {})
                sources = [s for s in pattern.get("source", []) if isinstance(s, str) and not s.startswith("aws.")]
                detail_types = [d for d in pattern.get("detail-type", []) if isinstance(d, str)]
                if sources and detail_types:
                    for emitter in self._emitters_of(sources, detail_types):  # drawn in the sender's layer too
                        self._add_raw(emitter, (stack.name, logical_id), "event", stack.name)
                        self._add_raw(emitter, (stack.name, logical_id), "event", emitter[0])

    def _emitters_of(self, sources: list[str], detail_types: list[str]) -> Iterable[ResourceKey]:
        for stack in self.stage.stacks:
            for logical_id, resource in sorted(stack.resources.items()):
                key = (stack.name, logical_id)
                if self.types[key] == "AWS::Events::Rule" or self.roles[key] != "node":
                    continue
                texts = list(self.references.strings(resource.get("Properties", {})))
                if any(any(s in t for s in sources) and any(d in t for d in detail_types) for t in texts):
                    yield key

    def _resolve_edges(self) -> None:
        """Edges between drawn nodes, following references through transparent resources (roles, policies).

        A path keeps the first kind that is not a plain reference (function -> role -> (policy) bucket is `IAM`)
        and the stack that declares its first step: a Serving function whose security group lives in Foundation
        is wired to the VPC by the Serving template.
        """
        for start in sorted(self.node_of):
            pending: list[tuple[ResourceKey, str, str | None]] = [(start, "ref", None)]
            seen = {start}
            while pending:
                current, path_kind, path_declared_in = pending.pop()
                for target, kind, declared_in in sorted(self.raw.get(current, ())):
                    edge_kind = kind if path_kind == "ref" else path_kind
                    edge_declared_in = path_declared_in or declared_in
                    if target in self.node_of:
                        source_id, target_id = self.node_of[start], self.node_of[target]
                        if source_id != target_id:
                            self.graph.edges.add(Edge(source_id, target_id, edge_kind, edge_declared_in))
                    elif self.roles.get(target) == "transparent" and target not in seen:
                        seen.add(target)
                        pending.append((target, edge_kind, edge_declared_in))


def build(stage: Stage) -> StageGraph:
    return _Builder(stage).build()


def layer_view(graph: StageGraph, layer: layers.Layer) -> LayerGraph:
    """What one layer draws: its stacks' nodes, the edges they declare, and the other stacks' nodes at their ends.

    Some edges are written on their source node instead of drawn, because nearly every resource has one and,
    drawn, they hide the rest: to another stack's KMS key ("KMS: Keys/DataKey") or VPC, to another stack's bucket
    that receives access logs, and a dashboard's references to the resources whose metrics it shows.
    """
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    notes: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for edge in graph.edges:
        if edge.declared_in not in layer.stacks:
            continue
        source, target = graph.nodes[edge.source], graph.nodes[edge.target]
        if source.kind in layers.SUMMARISED_SOURCES:
            notes[edge.source][layers.SUMMARISED_SOURCES[source.kind]].add(target.id)
            continue
        note = _folded_as(edge, target)
        if note is not None and target.stack not in layer.stacks:
            notes[edge.source][note].add(target.name)
        else:
            kinds[(edge.source, edge.target)].add(edge.kind)
    node_ids = {n.id for n in graph.nodes.values() if n.stack in layer.stacks}
    node_ids.update(end for pair in kinds for end in pair)
    return LayerGraph(
        stage=graph.stage,
        layer=layer,
        nodes=tuple(graph.nodes[i] for i in sorted(node_ids)),
        edges=tuple((s, t, tuple(sorted(k))) for (s, t), k in sorted(kinds.items())),
        notes={node_id: _note_lines(by_label) for node_id, by_label in sorted(notes.items()) if node_id in node_ids},
    )


def _folded_as(edge: Edge, target: Node) -> str | None:
    if edge.kind == "access logs":
        return "access logs"
    return layers.FOLDED_TARGETS.get(target.kind)


def _note_lines(by_label: dict[str, set[str]]) -> tuple[str, ...]:
    lines = []
    for label, names in sorted(by_label.items()):
        if "{n}" in label:
            lines.append(label.format(n=len(names)))
        else:
            lines.append(f"{label}: {', '.join(sorted(names))}")
    return tuple(lines)
