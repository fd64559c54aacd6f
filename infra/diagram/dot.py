"""A layer's graph as Graphviz DOT source: one cluster per stack, each node labelled with its construct path.

The output depends only on the graph: nodes and edges are written sorted, ids are construct paths, and
nothing carries a path on this machine, a version or a time, so the same templates give byte-identical DOT.
"""

from __future__ import annotations

from collections import defaultdict

import graphviz

from infra.diagram import layers
from infra.diagram.graph import LayerGraph, Node
from infra.diagram.overview import OverviewGraph

FONT = "Helvetica"
LEGEND = (
    "solid arrow: the template refers to it (Ref, GetAtt, Sub, ARN or name); dashed: only access granted by an IAM "
    "policy or Lake Formation\\nevent: a resource an EventBridge rule matches, or that sends the event; metric: "
    "what an alarm watches; dashed outline: a resource of another stack"
)


def _node_attrs(node: Node, own: bool, notes: tuple[str, ...]) -> dict[str, str]:
    attrs = {
        "label": "\\n".join([node.name, node.kind, *notes]),
        "fillcolor": layers.COLOURS[node.colour] if own else "#ffffff",
        "tooltip": node.id,
    }
    if not own:
        attrs.update(style="rounded,filled,dashed", color="#888888", fontcolor="#555555")
    return attrs


def _edge_attrs(kinds: tuple[str, ...], target: Node) -> dict[str, str]:
    attrs: dict[str, str] = {}
    labels = [k for k in kinds if k not in ("ref", "IAM")]  # IAM is the dashed line
    if labels:
        attrs["label"] = ", ".join(labels)
    if "ref" not in kinds and set(kinds) <= {"IAM", "Lake Formation"}:
        attrs["style"] = "dashed"
    if target.kind == "KMS key":
        attrs["color"] = "#999999"
    return attrs


def _stack_cluster(
    parent: graphviz.Digraph, stack: str, nodes: list[Node], own: bool, notes: dict[str, tuple[str, ...]]
) -> None:
    with parent.subgraph(name=f"cluster_{stack}") as cluster:
        cluster.attr(
            label=f"{stack} stack" if own else f"{stack} stack (referenced)",
            style="rounded" if own else "rounded,dashed",
            color="#666666" if own else "#aaaaaa",
            fontsize="13",
        )
        for node in nodes:
            cluster.node(node.id, **_node_attrs(node, own, notes.get(node.id, ())))


def to_dot(view: LayerGraph) -> str:
    title = f"{view.stage} environment: {view.layer.title}\\ngenerated from the synthesized templates (make diagram)"
    graph = graphviz.Digraph(
        name=view.layer.file,
        graph_attr={
            "label": f"{title}\\n{LEGEND}",
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "16",
            "rankdir": "LR",
            "compound": "true",
            "nodesep": "0.25",
            "ranksep": "0.9",
            "newrank": "true",
        },
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT, "fontsize": "11"},
        edge_attr={"fontname": FONT, "fontsize": "9", "color": "#444444"},
    )
    by_stack: dict[str, list[Node]] = defaultdict(list)
    for node in view.nodes:
        by_stack[node.stack].append(node)
    own_first = sorted(by_stack, key=lambda s: (s not in view.layer.stacks, s))
    for stack in own_first:
        _stack_cluster(graph, stack, by_stack[stack], stack in view.layer.stacks, view.notes)
    nodes = {n.id: n for n in view.nodes}
    for source, target, kinds in view.edges:
        graph.edge(source, target, **_edge_attrs(kinds, nodes[target]))
    return graph.source


def overview_to_dot(view: OverviewGraph) -> str:
    """The stacks of one stage and how many references each makes to the others."""
    graph = graphviz.Digraph(
        name="overview",
        graph_attr={
            "label": f"{view.stage} environment: the stacks and the references between them\\n"
            "generated from the synthesized templates (make diagram); one diagram per stack shows each reference",
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "16",
            "rankdir": "LR",
            "nodesep": "0.5",
            "ranksep": "1.2",
        },
        node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#f5f5f5", "fontname": FONT},
        edge_attr={"fontname": FONT, "fontsize": "10", "color": "#444444"},
    )
    for stack, contents in view.stacks:
        graph.node(stack, label="\\n".join([f"{stack} stack", *contents]), tooltip=stack)
    for source, target, summary in view.edges:
        graph.edge(source, target, label=summary)
    return graph.source
