#!/usr/bin/env python3
"""CDK entry point: one stage per config/<env>.yaml; `-c env=<name>` synthesizes only that one;
`-c delivery=pipeline` adds the CDK Pipelines delivery pipeline that deploys those stages (docs/delivery.md)."""

from __future__ import annotations

import gc

if __name__ == "__main__":
    # Run as a program (`cdk synth`), this is a short-lived process: it imports and creates a quarter of a
    # million objects (jsii's generated bindings and proxies) and almost no reference cycles. The cyclic
    # collector passed over them about 600 times per synth of all environments, for about 0.4 s, and reclaimed
    # a few thousand objects. Imported (the tests), the collector stays on.
    gc.disable()

import json
import sys
from pathlib import Path

import aws_cdk as cdk

from dataset.schema import SchemaError, load_schema
from infra.compliance import enable_compliance_gate
from infra.config import ConfigError, EnvironmentConfig, load_all
from infra.delivery_config import DELIVERY_CONTEXT, DELIVERY_FILE, DELIVERY_PIPELINE, load_delivery
from stacks.environment_stage import EnvironmentStage

ROOT = Path(__file__).parent
CONFIG_DIR = ROOT / "config"


def new_app(outdir: str | None = None) -> cdk.App:
    """An App with cdk.json's feature flags, whether the CLI, a test or `python app.py` runs it.

    CDK's built-in template validator is off: cfn-lint checks every synthesized template in the test suite
    and CI with zero findings allowed, while the built-in one only warns (CDK downgrades its errors) and
    costs about 3 s of each synth of all environments (docs/decisions/cfn-lint-is-the-template-gate.md)."""
    flags = json.loads((ROOT / "cdk.json").read_text())["context"]
    return cdk.App(outdir=outdir, context=flags, builtin_cloud_formation_validation=False)


def add_environments(app: cdk.App, configs: list[EnvironmentConfig]) -> list[EnvironmentStage]:
    """Add one stage per environment to `app` and put the whole app behind the compliance gate."""
    for config in configs:
        # Availability zones come from config, never from a lookup: synth stays credential-free
        # and deterministic, and templates never carry CDK's placeholder zones.
        app.node.set_context(
            f"availability-zones:account={config.account}:region={config.region}",
            list(config.availability_zones),
        )
    schemas = {path: load_schema(ROOT / path) for path in sorted({c.data_lake.dataset_schema for c in configs})}
    stages = [
        EnvironmentStage(app, config, schemas[config.data_lake.dataset_schema], ROOT / config.data_lake.dataset_schema)
        for config in configs
    ]
    enable_compliance_gate(app)
    return stages


def add_delivery_pipeline(app: cdk.App, stages: list[EnvironmentStage], settings_file: Path) -> None:
    """The delivery pipeline stack, deploying the stages already in `app` (built once, so their templates are
    those of the plain synth). aws_cdk.pipelines is imported here only: without the flag nothing of it loads."""
    from stacks.delivery_pipeline_stack import add_delivery_pipeline as add_pipeline_stacks

    settings = load_delivery(settings_file)
    ordered = settings.environments([s.config for s in stages], settings_file)
    by_name = {s.config.name: s for s in stages}
    approvals = {s.environment: s.manual_approval for s in settings.stages}
    add_pipeline_stacks(app, settings, [(by_name[c.name], approvals[c.name]) for c in ordered])


def delivery_requested(app: cdk.App) -> bool:
    """`-c delivery=pipeline` adds the pipeline; any other value is a mistake worth one line, not a silent no."""
    value = app.node.try_get_context(DELIVERY_CONTEXT)
    if value is not None and value != DELIVERY_PIPELINE:
        raise ConfigError(
            f"-c {DELIVERY_CONTEXT}={value}: unknown value (use -c {DELIVERY_CONTEXT}={DELIVERY_PIPELINE})"
        )
    return value is not None


def main() -> int:
    app = new_app()
    only = app.node.try_get_context("env")
    config_dir = app.node.try_get_context("config_dir") or CONFIG_DIR
    try:
        configs = load_all(config_dir, only=only)
        stages = add_environments(app, configs)
        if delivery_requested(app):
            add_delivery_pipeline(app, stages, Path(config_dir) / DELIVERY_FILE)
    except (ConfigError, SchemaError) as err:
        print(f"config error: {err}", file=sys.stderr)
        return 1
    assembly = app.synth()
    return _validation_status(Path(assembly.directory) / "validation-report.json")


def _validation_status(report_file: Path) -> int:
    """Under the CDK CLI a failed policy validation (nag packs, wildcard allow-list) only sets the exit
    code of the jsii Node process, which `python app.py` does not inherit: fail here on the report."""
    if not report_file.exists():
        return 0
    failed = [r for r in json.loads(report_file.read_text())["pluginReports"] if r.get("conclusion") == "failure"]
    for report in failed:
        for violation in report.get("violations", []):
            where = ", ".join(c["constructPath"] for c in violation.get("violatingConstructs", []))
            print(f"compliance gate: {violation['ruleName']}: {where}: {violation['description']}", file=sys.stderr)
    if failed:
        print(f"compliance gate failed; the full report is {report_file}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
