"""Whole-template checks: cfn-lint clean, deterministic synth, no credentials or lookups needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.infra.conftest import Assembly, synthesize


def test_cfn_lint_reports_nothing_on_any_template(assembly: Assembly) -> None:
    templates = assembly.template_files()
    assert len(templates) >= 3
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "parseable", *map(str, templates)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout == "" and result.returncode == 0, result.stdout + result.stderr


def test_synth_is_deterministic(assembly: Assembly, tmp_path) -> None:
    """The second synth is the plain per-environment one (no -c delivery=pipeline): the same environment templates
    byte for byte, so handing the stages to the delivery pipeline changes none of them, and no pipeline stack."""
    again = synthesize(tmp_path / "cdk.out", delivery=False)
    first = {p.relative_to(assembly.outdir): p.read_bytes() for p in assembly.stage_template_files()}
    second = {p.relative_to(again.outdir): p.read_bytes() for p in again.stage_template_files()}
    assert len(first) >= 15 and first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], f"{name} differs between two synths"
    assert [p.name for p in assembly.template_files() if p.parent == assembly.outdir]
    assert [p.name for p in again.template_files() if p.parent == again.outdir] == []


def test_no_code_asset_ships_bytecode(assembly: Assembly) -> None:
    """Tests and the Makefile's targets cache the repository's modules in __pycache__ beside the code (by the
    time the session synth runs, collection has written them): no asset may pick them up."""
    import tarfile

    shipped: list[str] = []
    for asset in sorted(assembly.outdir.glob("asset.*")):
        if asset.is_dir():
            shipped += [f"{asset.name}/{p.relative_to(asset)}" for p in asset.rglob("*")]
        elif tarfile.is_tarfile(asset):
            with tarfile.open(asset) as tar:
                shipped += [f"{asset.name}:{name}" for name in tar.getnames()]
    assert len(shipped) > 50, "the assembly holds no code assets"
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")]


def test_no_lookups_were_needed(assembly: Assembly) -> None:
    import json

    for stage in ("Dev", "Staging", "Prod"):
        manifest = json.loads((assembly.stage_dir(stage) / "manifest.json").read_text())
        assert not manifest.get("missing"), f"{stage} needed context lookups: {manifest['missing']}"
