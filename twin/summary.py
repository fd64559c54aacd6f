"""summary.json: one record of a twin run, read by the report, the tests and the benchmark."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from twin.conform import ConformOutcome
from twin.job_steps import Package, Preprocessed, TrainedModel
from twin.register import Registration
from twin.run_context import RunContext


def shown(path: Path) -> str:
    """A path as a person typed it: relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def build_summary(ctx: RunContext, lake: ConformOutcome, prep: Preprocessed, models: dict[str, TrainedModel],
                  models_summary: dict[str, Any], verdict: dict[str, Any], registration: Registration,
                  packages: dict[str, Package], serving: dict[str, Any]) -> dict[str, Any]:
    out, schema, registry = ctx.out, ctx.schema, registration.result
    return {
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint,
                   "path": str(ctx.args.schema)},
        "run": {"id": out.name, "folder": str(out), "link": str(ctx.run.link), "profile": ctx.args.profile,
                "seed": ctx.args.seed, "snapshot_date": ctx.args.snapshot_date},
        "rows": {"raw": lake.rows_in, "curated": lake.rows_curated, "quarantined": lake.rows_quarantined,
                 "usage_subscribers": lake.usage_subscribers, "train": prep.summary["train"],
                 "validation": prep.summary["validation"], "test": prep.summary["test"]},
        "data_quality": lake.quality,
        "positive_rate": prep.summary["positive_rate"],
        "conform_engine": lake.engine,
        "models": models_summary,
        "champion": verdict["champion"],
        "gate": verdict,
        "registry": registry,
        "compile": {n: p.report for n, p in packages.items()},
        "traced_vs_eager_max_abs_diff": packages["pytorch"].report["max_abs_diff_traced_vs_eager"],
        "serving": serving,
        "profile": ctx.args.profile,
        "artefacts": {"model_dirs": {n: str(m.model_dir) for n, m in models.items()},
                      "packages": {n: str(p.tarball) for n, p in packages.items()},
                      "summary": str(out / "summary.json"), "report": str(out / "report.html"),
                      "steps": str(out / "steps.json"), "logs": str(out / "logs"),
                      "mlflow_ui": f"mlflow ui --backend-store-uri {registry['tracking_uri']}"},
    }
