"""One stage of a synthesized cloud assembly, read from cdk.out as JSON (no CDK import)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DiagramError(Exception):
    """A cloud assembly or template the diagram generator cannot read; the message says what and where."""


@dataclass(frozen=True)
class StackTemplate:
    """One stack: its id inside the stage (`DataLake`), its CloudFormation name, its template, and the construct
    path of each resource (`Prod/DataLake/Zones/Raw/Bucket/Resource`) from the construct tree (tree.json)."""

    name: str
    stack_name: str
    template: dict[str, Any]
    paths: dict[str, str] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template.get("Resources", {})
        return resources


@dataclass(frozen=True)
class Stage:
    name: str
    account: str
    region: str
    stacks: tuple[StackTemplate, ...]

    def stack(self, name: str) -> StackTemplate:
        for stack in self.stacks:
            if name in (stack.name, stack.stack_name):
                return stack
        raise DiagramError(f"stage {self.name}: no stack {name!r} (stacks: {', '.join(s.name for s in self.stacks)})")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DiagramError(f"{path}: missing; run `make synth` (or `make diagram`) first") from None
    except json.JSONDecodeError as error:
        raise DiagramError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise DiagramError(f"{path}: expected a JSON object")
    return data


def stage_names(outdir: Path) -> list[str]:
    manifest = _read_json(outdir / "manifest.json")
    return sorted(
        a["properties"]["displayName"]
        for a in manifest.get("artifacts", {}).values()
        if a.get("type") == "cdk:cloud-assembly"
    )


def load_stage(outdir: Path, stage: str) -> Stage:
    """The stacks of `stage` (e.g. `Prod`) in cdk.out, in the stage manifest's order."""
    if stage not in (names := stage_names(outdir)):
        raise DiagramError(f"{outdir}: no stage {stage!r} (stages: {', '.join(names) or 'none'})")
    stage_dir = outdir / f"assembly-{stage}"
    manifest = _read_json(stage_dir / "manifest.json")
    stacks: list[StackTemplate] = []
    environments: set[str] = set()
    for artifact in manifest.get("artifacts", {}).values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        properties = artifact["properties"]
        environments.add(artifact.get("environment", ""))
        display = artifact.get("displayName", "")
        stacks.append(
            StackTemplate(
                name=display.removeprefix(f"{stage}/"),
                stack_name=properties.get("stackName", display),
                template=_read_json(stage_dir / properties["templateFile"]),
            )
        )
    if not stacks:
        raise DiagramError(f"{stage_dir}: no CloudFormation stacks in the stage manifest")
    paths = _construct_paths(outdir, stage)
    stacks = [StackTemplate(s.name, s.stack_name, s.template, paths.get(s.name, {})) for s in stacks]
    if len(environments) != 1 or not (env := environments.pop()).startswith("aws://"):
        raise DiagramError(f"{stage_dir}: expected one aws://<account>/<region> environment for every stack")
    account, _, region = env.removeprefix("aws://").partition("/")
    return Stage(name=stage, account=account, region=region, stacks=tuple(stacks))


def _construct_paths(outdir: Path, stage: str) -> dict[str, dict[str, str]]:
    """{stack: {logical id: construct path}} from the construct tree. Templates carry the path as metadata only
    when the CDK CLI synthesizes them; the tree is written by every synth (the CLI's and a test's)."""
    manifest = _read_json(outdir / "manifest.json")
    tree_file = next(
        (a["properties"]["file"] for a in manifest.get("artifacts", {}).values() if a.get("type") == "cdk:tree"), None
    )
    if tree_file is None:
        return {}
    paths: dict[str, dict[str, str]] = {}
    pending = [_read_json(outdir / tree_file).get("tree", {})]
    while pending:
        node = pending.pop()
        pending.extend((node.get("children") or {}).values())
        parts = node.get("path", "").split("/")
        if len(parts) < 3 or parts[0] != stage:
            continue
        logical_id = (node.get("attributes") or {}).get("aws:cdk:cloudformation:logicalId")
        if logical_id is None and node.get("constructInfo", {}).get("fqn") == "aws-cdk-lib.CfnResource":
            logical_id = _default_logical_id(parts[2:])  # a plain CfnResource (custom resources) has no attribute
        if isinstance(logical_id, str):
            paths.setdefault(parts[1], {})[logical_id] = node["path"]
    return paths


def _default_logical_id(components: list[str]) -> str:
    """CDK's logical id for a path under a stack (aws-cdk-lib core/lib/private/uniqueid.ts, makeUniqueId):
    the readable components plus the first 8 hex digits of the path's MD5. Used only where the tree states
    no id; an id that is not in the template is never used (callers look ids up in the template)."""
    components = [c for c in components if c != "Default"]
    if len(components) == 1:
        return re.sub(r"[^A-Za-z0-9]", "", components[0])
    digest = hashlib.md5("/".join(components).encode(), usedforsecurity=False).hexdigest()[:8].upper()
    readable: list[str] = []
    for component in components:
        if not readable or not readable[-1].endswith(component):
            readable.append(component)
    human = "".join(re.sub(r"[^A-Za-z0-9]", "", c) for c in readable if c != "Resource")[:240]
    return human + digest
