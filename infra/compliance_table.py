"""The acknowledgement table of docs/security-acknowledgements.md, generated from a synthesized cloud assembly.

Reads what the templates carry (each resource's `Metadata.cdk_nag.rules_to_suppress`, written by the compliance
gate), names each acknowledgement by its `Finding` (matched on the reason), and condenses construct paths across
environments. `make docs` writes the page; a test fails when the committed page differs from a fresh synth.

    python -m infra.compliance_table cdk.out docs/security-acknowledgements.md          # write
    python -m infra.compliance_table --check cdk.out docs/security-acknowledgements.md  # exit 1 when stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.compliance import Finding

DOC = Path("docs/security-acknowledgements.md")
CDK_OWN_HEADING = "## Acknowledgements aws-cdk-lib adds itself"
_CDK_HASH = re.compile(r"(?<=[a-z])[0-9A-F]{8}(?=[A-Z][a-z]|[^0-9A-Za-z]|$)")
_STACK_OUTPUT = re.compile(
    r'\{"Fn::GetStackOutput":\{"StackName":"[^"]*?-(\w+)","Region":"[^"]*","OutputName":"([^"]+)"\}\}'
)


@dataclass(frozen=True)
class Acknowledgement:
    stage: str  # e.g. "Dev"
    path: str  # construct path below the stage, e.g. "Foundation/AccessLogs/Bucket"
    rule: str  # rule id as the report names it, environment details replaced by <account>, <region>, <env>
    reason: str


class AssemblyError(Exception):
    """The folder is not a synthesized cloud assembly this generator can read."""


def stages_of(outdir: Path) -> list[str]:
    """The environment stages the assembly's manifest lists (a stale assembly-* folder beside them is ignored)."""
    manifest_file = outdir / "manifest.json"
    if not manifest_file.is_file():
        raise AssemblyError(f"{outdir}: no manifest.json (synthesize first: cdk synth --quiet)")
    artifacts = json.loads(manifest_file.read_text())["artifacts"]
    stages = [name.removeprefix("assembly-") for name, a in artifacts.items() if a["type"] == "cdk:cloud-assembly"]
    if not stages:
        raise AssemblyError(f"{manifest_file}: no environment stage in the assembly")
    return stages


# Stacks at the top of the assembly (not in an environment stage): the delivery pipeline's, synthesized with
# `-c delivery=pipeline`. Their acknowledgements are listed under this label instead of a stage name.
DELIVERY = "Delivery"


def collect(outdir: Path) -> list[Acknowledgement]:
    """Every acknowledgement in the templates of the assembly's stages and of its top-level (delivery) stacks."""
    found = []
    for stage in stages_of(outdir):
        found += _collect_stacks(outdir / f"assembly-{stage}", stage)
    found += _collect_stacks(outdir, DELIVERY)
    return found


def _collect_stacks(assembly_dir: Path, stage: str) -> list[Acknowledgement]:
    found = []
    artifacts = json.loads((assembly_dir / "manifest.json").read_text())["artifacts"]
    for artifact in artifacts.values():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        template_file = assembly_dir / artifact["properties"]["templateFile"]
        template = json.loads(template_file.read_text())
        account, region = artifact["environment"].removeprefix("aws://").split("/")
        paths = _construct_paths(assembly_dir, artifact)
        for logical_id, resource in template.get("Resources", {}).items():
            metadata = resource.get("Metadata", {})
            rules = metadata.get("cdk_nag", {}).get("rules_to_suppress", [])
            if rules and logical_id not in paths:
                raise AssemblyError(f"{template_file}: no construct path for {logical_id} in the stack metadata")
            path = _below_stage(paths.get(logical_id, ""), stage)
            for rule in rules:
                rule_name = _rule_name(rule["id"], stage, account, region)
                found.append(Acknowledgement(stage, path, rule_name, rule["reason"]))
    return found


def _construct_paths(stage_dir: Path, artifact: dict[str, Any]) -> dict[str, str]:
    """Logical id -> construct path, from the stack's metadata (present whether or not the CLI adds path metadata)."""
    entries = dict(artifact.get("metadata", {}))
    if "additionalMetadataFile" in artifact:
        entries.update(json.loads((stage_dir / artifact["additionalMetadataFile"]).read_text()))
    return {
        entry["data"]: path.lstrip("/")
        for path, path_entries in entries.items()
        for entry in path_entries
        if entry["type"] == "aws:cdk:logicalId"
    }


def _below_stage(path: str, stage: str) -> str:
    parts = path.removeprefix(f"{stage}/").removesuffix("/Resource").split("/")
    stack = parts[0]
    # CDK's generated ids repeat the stage and stack names and end in a hash that differs per stage.
    return "/".join(_CDK_HASH.sub("", re.sub(f"{re.escape(stage)}(?={re.escape(stack)})", "", part)) for part in parts)


def _short(rule_id: str) -> str:
    """The rule as the validation report names it: "AwsSolutions::AwsSolutions-L1" -> "AwsSolutions-L1"."""
    pack, _, name = rule_id.partition("::")
    return name if name.startswith(pack) else rule_id


def _stack_output(match: re.Match[str]) -> str:
    """A cross-stack reference, e.g. <Foundation:MlArtifactsBucketArn> (the stage and CDK's hashes removed)."""
    return f"<{match[1]}:{_CDK_HASH.sub('', match[2].removeprefix('PublishOutputFnGetAtt'))}>"


def _rule_name(rule_id: str, stage: str, account: str, region: str) -> str:
    name = _STACK_OUTPUT.sub(_stack_output, _short(rule_id))
    name = name.replace(f":{account}:", ":<account>:").replace(f":{region}:", ":<region>:")
    if stage != DELIVERY:
        env = re.sub(r"(?<!^)(?=[A-Z])", "-", stage).lower()  # stage "SandboxEu" is environment "sandbox-eu"
        name = re.sub(f"(?<=-){re.escape(env)}(?=-)", "<env>", name)
    return _CDK_HASH.sub("", name)


def render(acknowledgements: list[Acknowledgement], stages: list[str]) -> str:
    by_reason = {finding.reason: finding for finding in Finding}
    ours: dict[Finding, list[Acknowledgement]] = defaultdict(list)
    cdk_own: dict[tuple[str, str], list[Acknowledgement]] = defaultdict(list)
    for ack in acknowledgements:
        finding = by_reason.get(ack.reason)
        if finding is None:
            cdk_own[(ack.rule, ack.reason)].append(ack)
        else:
            ours[finding].append(ack)
    lines = [
        "<!-- Generated by `make docs` (python -m infra.compliance_table) from the synthesized templates. Do not edit:",
        "     change the Finding in infra/compliance.py or where it is applied, then run `make docs`. -->",
        "# cdk-nag acknowledgements",
        "",
        "Every acknowledgement the synthesized templates carry (resource `Metadata.cdk_nag.rules_to_suppress`),",
        f"across the environments synthesized from `config/` ({', '.join(stages)}) and the delivery pipeline's",
        "stacks (`-c delivery=pipeline`, docs/delivery.md). Each is a `Finding` in `infra/compliance.py`; its",
        "reason is copied from the code. *Where* lists construct paths below each environment's stage (CDK's",
        'per-stage hashes removed), with the stages it applies to when not all, or "(delivery pipeline)".',
        "See [security.md](security.md) for the security model around them.",
        "",
        "| Finding | Rules | Where | Reason |",
        "| --- | --- | --- | --- |",
    ]
    for finding in Finding:
        applied = ours.get(finding, [])
        rules = sorted({a.rule for a in applied}) or sorted(_short(r) for r in finding.rule_ids)
        where = _where(applied, stages) or "applied in no environment of `config/` or the delivery pipeline today"
        lines.append(f"| `{finding.name}` | {_codes(rules)} | {where} | {_cell(finding.reason)} |")
    if cdk_own:
        lines += [
            "",
            CDK_OWN_HEADING,
            "",
            "Not in `infra/compliance.py`: aws-cdk-lib adds these itself, with its own reasons, to resources of the",
            "stacks named (counted over all stages). `CloudFormation-Validate::` rules belong to CDK's built-in",
            "template validator, which this app turns off: cfn-lint is the template gate",
            "([decision](decisions/cfn-lint-is-the-template-gate.md)).",
            "",
            "| Rule | Where | Reason |",
            "| --- | --- | --- |",
        ]
        for (rule, reason), applied in sorted(cdk_own.items()):
            stacks = sorted({(a.path.split("/")[0], a.stage) for a in applied})
            count = f"{len(applied)} resource{'s' if len(applied) > 1 else ''}"
            where = _where([Acknowledgement(stage, stack, rule, reason) for stack, stage in stacks], stages)
            lines.append(f"| `{rule}` | {count} in {where} | {_cell(reason)} |")
    return "\n".join(lines) + "\n"


def _where(applied: list[Acknowledgement], stages: list[str]) -> str:
    stages_of: dict[str, set[str]] = defaultdict(set)
    for ack in applied:
        stages_of[ack.path].add(ack.stage)
    entries = []
    for path, present in sorted(stages_of.items()):
        if present == {DELIVERY}:
            suffix = " (delivery pipeline)"
        elif present == set(stages):
            suffix = ""
        else:
            suffix = f" ({', '.join(s for s in stages if s in present)})"
        entries.append(f"`{path}`{suffix}")
    return "<br>".join(entries)


def _codes(items: list[str]) -> str:
    return "<br>".join(f"`{item}`" for item in items)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generate(outdir: Path) -> str:
    return render(collect(outdir), stages_of(outdir))


def staleness(committed: str, generated: str, doc: Path) -> str | None:
    """None when equal, else a message naming the page, the first differing line and the fix."""
    if committed == generated:
        return None
    old, new = committed.splitlines(), generated.splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    was = old[line] if line < len(old) else "<end of file>"
    wants = new[line] if line < len(new) else "<end of file>"
    column = next((i for i, (a, b) in enumerate(zip(was, wants, strict=False)) if a != b), min(len(was), len(wants)))
    start = max(0, column - 40)
    return (
        f"{doc}: acknowledgement table is stale, run `make docs` (line {line + 1}, column {column + 1}: "
        f"has {was[start : column + 80]!r}, expected {wants[start : column + 80]!r})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.compliance_table", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page differs from the assembly")
    parser.add_argument("outdir", type=Path, help="the synthesized cloud assembly (cdk.out)")
    parser.add_argument("doc", type=Path, nargs="?", default=DOC)
    args = parser.parse_args(argv)
    try:
        generated = generate(args.outdir)
    except AssemblyError as error:
        print(error, file=sys.stderr)
        return 2
    if args.check:
        problem = staleness(args.doc.read_text() if args.doc.is_file() else "", generated, args.doc)
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(generated)
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
