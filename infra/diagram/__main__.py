"""Write one DOT file per layer from a synthesized cloud assembly.

Usage: python -m infra.diagram [cdk.out] [docs/diagrams] [--stage Prod]
(`make diagram` runs it after synth, then renders the DOT to SVG with tools/render_svg.mjs.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.diagram.assembly import DiagramError, load_stage
from infra.diagram.dot import overview_to_dot, to_dot
from infra.diagram.graph import build, layer_view
from infra.diagram.layers import DEFAULT_STAGE, LAYERS
from infra.diagram.overview import overview


def render_all(outdir: Path, stage: str = DEFAULT_STAGE) -> dict[str, str]:
    """{file name (`lake.dot`): DOT source} for every layer of `stage` in the assembly at `outdir`, and the
    stack-level overview (`overview.dot`)."""
    loaded = load_stage(outdir, stage)
    graph = build(loaded)
    sources = {f"{layer.file}.dot": to_dot(layer_view(graph, layer)) for layer in LAYERS}
    sources["overview.dot"] = overview_to_dot(overview(graph, tuple(s.name for s in loaded.stacks)))
    return sources


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.diagram", description=__doc__.splitlines()[0])
    parser.add_argument("assembly", nargs="?", default="cdk.out", type=Path, help="cloud assembly (cdk.out)")
    parser.add_argument("dest", nargs="?", default="docs/diagrams", type=Path, help="where the .dot files go")
    parser.add_argument("--stage", default=DEFAULT_STAGE, help=f"stage to draw (default {DEFAULT_STAGE})")
    args = parser.parse_args(argv)
    try:
        sources = render_all(args.assembly, args.stage)
    except DiagramError as error:
        print(f"diagram: {error}", file=sys.stderr)
        return 1
    args.dest.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        (args.dest / name).write_text(source)
        print(args.dest / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
