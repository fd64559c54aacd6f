"""Median wall time of synthesizing every environment vs a trivial one-bucket app, same run.

Each synth runs in a fresh process (as `cdk synth` does), so jsii start-up is included in both.
Writes build/bench/synth.json. Target: all environments <= 3x the trivial app.

The trivial app is CDK's default configuration, built-in template validator on (about 1.5 s of its time);
this app turns that validator off (docs/decisions/cfn-lint-is-the-template-gate.md), so the ratio against a
trivial app with the same App setting is reported beside it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TARGET_RATIO = 3.0

TRIVIAL_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
app = cdk.App(builtin_cloud_formation_validation=sys.argv[1] == "default")
stack = cdk.Stack(app, "Trivial", env=cdk.Environment(account="111111111111", region="eu-west-1"))
s3.Bucket(stack, "Bucket")
app.synth()
"""


def _time(command: list[str], outdir: str) -> float:
    env = {**os.environ, "CDK_OUTDIR": outdir}
    env.setdefault("JSII_NODE", str(ROOT / "node_modules" / ".bin" / "node"))
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        trivial_script = Path(tmp) / "trivial_app.py"
        trivial_script.write_text(TRIVIAL_APP)
        trivial, trivial_same, full = [], [], []
        for i in range(RUNS):  # interleaved so drift on the machine hits all equally
            trivial.append(_time([sys.executable, str(trivial_script), "default"], f"{tmp}/t{i}"))
            trivial_same.append(_time([sys.executable, str(trivial_script), "no-builtin-validation"], f"{tmp}/s{i}"))
            full.append(_time([sys.executable, "app.py"], f"{tmp}/f{i}"))
    result = {
        "runs": RUNS,
        "trivial_app_median_s": round(statistics.median(trivial), 3),
        "trivial_app_without_builtin_validation_median_s": round(statistics.median(trivial_same), 3),
        "all_environments_median_s": round(statistics.median(full), 3),
        "trivial_app_s": [round(t, 3) for t in trivial],
        "trivial_app_without_builtin_validation_s": [round(t, 3) for t in trivial_same],
        "all_environments_s": [round(t, 3) for t in full],
        "load_average_1min_before_and_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    result["ratio"] = round(result["all_environments_median_s"] / result["trivial_app_median_s"], 2)
    result["ratio_same_app_settings"] = round(
        result["all_environments_median_s"] / result["trivial_app_without_builtin_validation_median_s"], 2
    )
    result["target_ratio"] = TARGET_RATIO
    result["meets_target"] = result["ratio"] <= TARGET_RATIO
    out = ROOT / "build" / "bench" / "synth.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"synth, median of {RUNS}: trivial one-bucket app {result['trivial_app_median_s']:.2f} s, "
        f"all environments {result['all_environments_median_s']:.2f} s, ratio {result['ratio']:.2f} "
        f"(target <= {TARGET_RATIO}); against the trivial app without CDK's built-in validator "
        f"{result['trivial_app_without_builtin_validation_median_s']:.2f} s, ratio "
        f"{result['ratio_same_app_settings']:.2f} -> {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
