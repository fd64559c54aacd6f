"""Print a table of the stages, stacks and resource counts in a synthesized cloud assembly.

Reads cdk.out only (no CDK import), so it is fast and works on any synthesized output.
Usage: python -m infra.assembly_summary cdk.out
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def summarize(outdir: Path) -> list[tuple[str, str, int, str]]:
    """Rows of (stage, stack, resource count, top resource types)."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    rows = []
    for name, artifact in sorted(manifest.get("artifacts", {}).items()):
        if artifact.get("type") != "cdk:cloud-assembly":
            continue
        stage_dir = outdir / artifact["properties"]["directoryName"]
        stage = artifact["properties"].get("displayName", name)
        stage_manifest = json.loads((stage_dir / "manifest.json").read_text())
        for stack_artifact in sorted(stage_manifest["artifacts"].values(), key=lambda a: a.get("displayName", "")):
            if stack_artifact.get("type") != "aws:cloudformation:stack":
                continue
            template = json.loads((stage_dir / stack_artifact["properties"]["templateFile"]).read_text())
            types = Counter(r["Type"].removeprefix("AWS::") for r in template.get("Resources", {}).values())
            top = ", ".join(f"{t} {n}" for t, n in types.most_common(3))
            rows.append((stage, stack_artifact.get("displayName", ""), sum(types.values()), top))
    return rows


def main(argv: list[str]) -> int:
    outdir = Path(argv[0] if argv else "cdk.out")
    if not (outdir / "manifest.json").exists():
        print(f"{outdir}: no cloud assembly here; run `make synth` first", file=sys.stderr)
        return 1
    rows = summarize(outdir)
    headers = ("Stage", "Stack", "Resources", "Most common types")
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(4)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*headers))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))
    stages = sorted({r[0] for r in rows})
    print(f"\n{len(stages)} stages, {len(rows)} stacks, {sum(r[2] for r in rows)} resources")
    report = outdir / "validation-report.json"
    if report.exists():
        plugins = json.loads(report.read_text()).get("pluginReports", [])
        open_findings = sum(len(p.get("violations", [])) for p in plugins)
        print(f"compliance gate (cdk-nag AwsSolutions, NIST 800-53 R5, HIPAA Security): {open_findings} open findings")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
