"""The stack-level overview: what each stack holds, by kind, and how many references each makes to the others."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from infra.diagram.graph import StageGraph


@dataclass(frozen=True)
class OverviewGraph:
    """One node per stack (what it holds, by kind) and one edge per pair of stacks that refer to each other."""

    stage: str
    stacks: tuple[tuple[str, tuple[str, ...]], ...]  # (stack, "6 S3 buckets" ...), in the stage's order
    edges: tuple[tuple[str, str, str], ...]  # (source stack, target stack, "12 references: 8 IAM, 2 event")


def overview(graph: StageGraph, stack_order: tuple[str, ...], kinds_shown: int = 5) -> OverviewGraph:
    contents: dict[str, dict[str, int]] = {stack: defaultdict(int) for stack in stack_order}
    for node in graph.nodes.values():
        count, _, label = node.kind.partition(" ")
        if count.isdigit():  # an aggregate: "39 CloudWatch alarms"
            contents[node.stack][label.removesuffix("s")] += int(count)
        else:
            contents[node.stack][node.kind] += 1
    between: dict[tuple[str, str], dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    for edge in graph.edges:
        source, target = graph.nodes[edge.source].stack, graph.nodes[edge.target].stack
        if source != target:
            between[(source, target)][edge.kind].add((edge.source, edge.target))
    return OverviewGraph(
        stage=graph.stage,
        stacks=tuple((stack, _top_kinds(contents[stack], kinds_shown)) for stack in stack_order),
        edges=tuple((source, target, _edge_summary(by_kind)) for (source, target), by_kind in sorted(between.items())),
    )


def _top_kinds(counts: dict[str, int], shown: int) -> tuple[str, ...]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    lines = [f"{n} {kind}" if n == 1 or kind.endswith("s") else f"{n} {kind}s" for kind, n in ranked[:shown]]
    if len(ranked) > shown:
        lines.append(f"and {sum(n for _, n in ranked[shown:])} more")
    return tuple(lines)


def _edge_summary(by_kind: dict[str, set[tuple[str, str]]]) -> str:
    pairs = set().union(*by_kind.values())
    kinds = ", ".join(f"{len(p)} {kind}" for kind, p in sorted(by_kind.items()) if kind != "ref")
    noun = "reference" if len(pairs) == 1 else "references"
    return f"{len(pairs)} {noun}" + (f" ({kinds})" if kinds else "")
