"""Median wall time of synthesizing every environment vs a trivial one-bucket app, same run, measured two ways.

- **Through the CDK CLI** (the target): `cdk synth --quiet`, which is what `make synth`, CI and the delivery
  pipeline run, against `cdk synth --quiet` of the trivial app. The CLI's own start-up is in both.
- **The app process alone:** the command cdk.json names (`python -O app.py`), against `python trivial_app.py`.
  This leaves the CLI out, so it is the stricter ratio; it is reported beside the target, not instead of it.

The trivial app is CDK's default configuration: the built-in template validator is on, and it takes about 1.5 s
of the trivial app's time. This app turns that validator off (docs/decisions/cfn-lint-is-the-template-gate.md),
so the process ratio against a trivial app with the same setting is reported as well. All variants run
interleaved, each in a fresh process, so drift on the machine hits all of them equally.
Writes build/bench/synth.json. Target: through the CLI, all environments <= 3x the trivial app.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TARGET_RATIO = 3.0
NODE_BIN = ROOT / "node_modules" / ".bin"

TRIVIAL_APP = """
import sys
import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
app = cdk.App(builtin_cloud_formation_validation=sys.argv[1] == "default")
stack = cdk.Stack(app, "Trivial", env=cdk.Environment(account="111111111111", region="eu-west-1"))
s3.Bucket(stack, "Bucket")
app.synth()
"""


def _time(command: list[str], cwd: Path, outdir: str) -> float:
    env = {**os.environ, "CDK_OUTDIR": outdir, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.setdefault("JSII_NODE", str(NODE_BIN / "node"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as under make: the -O bytecode is written once by make setup
    start = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def _app_command() -> list[str]:
    """The app command of cdk.json, as the CLI runs it."""
    return shlex.split(json.loads((ROOT / "cdk.json").read_text())["app"])


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def main() -> int:
    load_before = os.getloadavg()[0]
    cdk = str(NODE_BIN / "cdk")
    times: dict[str, list[float]] = {
        "cli_all_environments": [],
        "cli_trivial_app": [],
        "process_all_environments": [],
        "process_trivial_app": [],
        "process_trivial_app_without_builtin_validation": [],
    }
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        trivial = tmp / "trivial_app.py"
        trivial.write_text(TRIVIAL_APP)
        trivial_app = f"{shlex.quote(sys.executable)} {trivial} default"
        for i in range(RUNS):
            runs = {
                "cli_all_environments": ([cdk, "synth", "--quiet", "-o", f"{tmp}/ca{i}"], ROOT),
                "cli_trivial_app": ([cdk, "synth", "--quiet", "-a", trivial_app, "-o", f"{tmp}/ct{i}"], tmp),
                "process_all_environments": (_app_command(), ROOT),
                "process_trivial_app": ([sys.executable, str(trivial), "default"], tmp),
                "process_trivial_app_without_builtin_validation": ([sys.executable, str(trivial), "off"], tmp),
            }
            for name, (command, cwd) in runs.items():
                times[name].append(_time(command, cwd, f"{tmp}/{name}{i}"))
    medians = {name: _median(values) for name, values in times.items()}
    ratio = round(medians["cli_all_environments"] / medians["cli_trivial_app"], 2)
    result: dict[str, object] = {
        "runs": RUNS,
        "app_command": " ".join(_app_command()),
        "medians_s": medians,
        "times_s": {name: [round(t, 3) for t in values] for name, values in times.items()},
        "ratio": ratio,
        "ratio_app_process": round(medians["process_all_environments"] / medians["process_trivial_app"], 2),
        "ratio_app_process_same_app_settings": round(
            medians["process_all_environments"] / medians["process_trivial_app_without_builtin_validation"], 2
        ),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "load_average_1min_before_and_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    out = ROOT / "build" / "bench" / "synth.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"synth, median of {RUNS}: `cdk synth --quiet` of all environments {medians['cli_all_environments']:.2f} s, "
        f"of the trivial one-bucket app {medians['cli_trivial_app']:.2f} s, ratio {ratio:.2f} "
        f"(target <= {TARGET_RATIO}). The app process alone: {medians['process_all_environments']:.2f} s against "
        f"{medians['process_trivial_app']:.2f} s, ratio {result['ratio_app_process']:.2f}; against the trivial app "
        f"without CDK's built-in validator ({medians['process_trivial_app_without_builtin_validation']:.2f} s) "
        f"{result['ratio_app_process_same_app_settings']:.2f} -> {out.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
