"""One synthesized app (all environments and the delivery pipeline, nag gate on) shared by every infrastructure
test."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.infra.sdk_oracle import SdkOracle


@dataclass(frozen=True)
class Assembly:
    outdir: Path

    def stage_dir(self, stage: str) -> Path:
        return self.outdir / f"assembly-{stage}"

    def template(self, stage: str, stack: str) -> dict[str, Any]:
        manifest = json.loads((self.stage_dir(stage) / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact.get("displayName") == f"{stage}/{stack}":
                path = self.stage_dir(stage) / artifact["properties"]["templateFile"]
                return json.loads(path.read_text())
        raise KeyError(f"no stack {stage}/{stack} in {self.outdir}")

    def app_template(self, stack: str) -> dict[str, Any]:
        """A stack outside the stages (the delivery pipeline's), by its display name."""
        manifest = json.loads((self.outdir / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact.get("type") == "aws:cloudformation:stack" and artifact.get("displayName") == stack:
                return json.loads((self.outdir / artifact["properties"]["templateFile"]).read_text())
        raise KeyError(f"no stack {stack} in {self.outdir}")

    def stage_template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("assembly-*/*.template.json"))

    def template_files(self) -> list[Path]:
        """Every template: the environments' stages and the stacks beside them (the delivery pipeline's)."""
        return sorted([*self.outdir.glob("*.template.json"), *self.stage_template_files()])


def synthesize(outdir: Path, config_dir: Path = ROOT / "config", delivery: bool = True) -> Assembly:
    """All environments; with `delivery` also the delivery pipeline that deploys those same stages
    (what `cdk synth -c delivery=pipeline` builds)."""
    import app as cdk_app
    from infra.config import load_all

    application = cdk_app.new_app(outdir=str(outdir))
    stages = cdk_app.add_environments(application, load_all(config_dir))
    if delivery:
        cdk_app.add_delivery_pipeline(application, stages, config_dir / cdk_app.DELIVERY_FILE)
    application.synth()
    return Assembly(outdir)


@pytest.fixture(scope="session")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Assembly:
    return synthesize(tmp_path_factory.mktemp("cdk") / "cdk.out")


@pytest.fixture(scope="session")
def sdk_oracle() -> Iterator[SdkOracle]:
    """One SageMaker SDK process for every pipeline the tests render with it (tests/infra/sdk_oracle.py)."""
    oracle = SdkOracle()
    yield oracle
    oracle.close()


@pytest.fixture(scope="session")
def resources_of(assembly: Assembly) -> Callable[[str, str, str], dict[str, Any]]:
    """resources_of(stage, stack, type) -> {logical id: resource} for one resource type."""

    def _of(stage: str, stack: str, resource_type: str) -> dict[str, Any]:
        resources = assembly.template(stage, stack)["Resources"]
        return {k: v for k, v in resources.items() if v["Type"] == resource_type}

    return _of


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Which worker runs what is decided in tests/conftest.py (the "synth" group).
    for item in items:
        if "tests/infra/" in str(item.fspath):
            item.add_marker(pytest.mark.infra)
