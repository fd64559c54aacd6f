"""Compile and package a trained model for serving: model.tar.gz for the (Neuron) PyTorch container.

    python -m training_jobs.compile_model --model-dir build/model --output-dir build/package --batch-size 64

PyTorch artefacts are traced with `torch_neuronx.trace` when torch-neuronx is importable
(Inferentia2), otherwise with `torch.jit.trace`; either way the result is a TorchScript
`model.pt` for a fixed batch size. The saved module is reloaded and compared with the eager
model on seeded inputs: if the maximum absolute difference exceeds --tolerance (1e-5) the check
fails (exit 1; bad input or arguments exit 2, see training_jobs.runner). XGBoost artefacts are
packaged as they are (model.json; CPU endpoints only).

Nothing is pip-installed when a serving container starts (jobs and endpoints may have no egress),
so a package carries no code/requirements.txt. An XGBoost package must be served by an image that
already has xgboost: the SageMaker XGBoost image, which runs the custom code/inference.py in
script mode; metadata.json "compiled" names the xgboost version it was trained with.

model.tar.gz layout (sorted entries, fixed mtimes/owners: byte-identical for identical inputs):
  model.pt | model.json, transformer.json, schema.yaml, metadata.json (+ "compiled" block),
  code/ = the serving package's modules (CODE_FILES): the handler and the modules it imports.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from training_jobs.artifacts import (
    METADATA_FILE,
    SCHEMA_COPY,
    TRANSFORMER_FILE,
    load_model,
    read_metadata,
    resolve_model_dir,
    write_json,
)
from training_jobs.errors import CheckFailed, JobError
from training_jobs.runner import run_job

# The model package's code/ is exactly the serving package's modules.
CODE_DIR = Path(__file__).resolve().parents[1] / "serving"
CODE_FILES = ("inference.py", "record_validation.py", "transform.py", "feature_values.py")
FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z
# What an XGBoost package needs from its serving image (recorded in metadata.json "compiled").
XGBOOST_SERVING_IMAGE = ("SageMaker XGBoost image (script mode runs code/inference.py); the image must already "
                         "have xgboost: nothing is pip-installed when the container starts")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default="/opt/ml/processing/model",
                    help="trained artefact dir or its model.tar.gz")
    ap.add_argument("--output-dir", default="/opt/ml/processing/output")
    ap.add_argument("--batch-size", type=int, default=64, help="static batch size the model is traced for")
    ap.add_argument("--tolerance", type=float, default=1e-5, help="max |traced - eager| allowed")
    ap.add_argument("--compiler", choices=["auto", "neuron", "torchscript"], default="auto")
    ap.add_argument("--neuron-auto-cast", choices=["none", "matmult", "all"], default="none",
                    help="neuronx-cc --auto-cast; 'none' keeps fp32 so the 1e-5 traced-vs-eager check can hold")
    ap.add_argument("--check-batches", type=int, default=8)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    if not 1 <= args.batch_size <= 4096:
        ap.error(f"--batch-size must be 1..4096, got {args.batch_size}")
    if not args.tolerance > 0:
        ap.error(f"--tolerance must be > 0, got {args.tolerance}")
    if args.check_batches < 1:
        ap.error("--check-batches must be >= 1")
    return args


def trace_model(module: Any, batch_size: int, n_features: int, compiler: str,
                auto_cast: str = "none") -> tuple[Any, str]:
    import torch

    example = torch.zeros(batch_size, n_features, dtype=torch.float32)
    if compiler in ("auto", "neuron"):
        try:
            import torch_neuronx
        except ImportError:
            if compiler == "neuron":
                raise JobError("--compiler neuron requested but torch_neuronx is not importable") from None
        else:
            traced = torch_neuronx.trace(module, example, compiler_args=["--auto-cast", auto_cast])
            return traced, f"torch_neuronx.trace (--auto-cast {auto_cast})"
    with torch.no_grad():
        return torch.jit.trace(module, example, check_trace=False), "torch.jit.trace"


def check_traced(eager: Any, traced: Any, batch_size: int, n_features: int, batches: int, seed: int) -> float:
    import torch

    rng = np.random.default_rng(seed)
    worst = 0.0
    with torch.no_grad():
        for k in range(batches):
            x = rng.standard_normal((batch_size, n_features)).astype(np.float32) * (1 + k % 3)
            t = torch.from_numpy(x)
            diff = (eager(t) - traced(t)).abs().max().item()
            worst = max(worst, float(diff))
    return worst


def deterministic_tar(stage: Path, out_file: Path) -> None:
    """Write stage/ as a gzip tarball with sorted entries and normalised metadata."""
    entries = sorted(p for p in stage.rglob("*"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in entries:
            rel = path.relative_to(stage).as_posix()
            info = tarfile.TarInfo(rel)
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = path.read_bytes()
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with open(out_file, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(buf.getvalue())


def package(args: argparse.Namespace) -> dict[str, Any]:
    # TorchScript is what torch-neuronx produces and the Neuron DLC loads; torch >= 2.10 flags
    # torch.jit as deprecated in favour of torch.export, which Neuron does not consume.
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        model_dir = resolve_model_dir(args.model_dir, Path(tmp) / "in")
        meta = read_metadata(model_dir)
        stage = Path(tmp) / "stage"
        (stage / "code").mkdir(parents=True)
        for name in CODE_FILES:
            shutil.copyfile(CODE_DIR / name, stage / "code" / name)
        for name in (TRANSFORMER_FILE, SCHEMA_COPY):
            shutil.copyfile(model_dir / name, stage / name)
        compiled: dict[str, Any]
        if meta.get("model_type") == "pytorch":
            import torch

            loaded = load_model(model_dir)
            n_features = loaded.transformer.n_features
            traced, how = trace_model(loaded.model, args.batch_size, n_features, args.compiler,
                                      args.neuron_auto_cast)
            torch.jit.save(traced, str(stage / "model.pt"))
            reloaded = torch.jit.load(str(stage / "model.pt"))
            diff = check_traced(loaded.model, reloaded, args.batch_size, n_features, args.check_batches,
                                args.seed)
            if not diff <= args.tolerance:
                raise CheckFailed(f"traced model differs from eager by {diff:.3g} "
                                  f"(> tolerance {args.tolerance:g})")
            compiled = {"format": "torchscript", "compiler": how, "neuron": how.startswith("torch_neuronx"),
                        "batch_size": args.batch_size, "n_features": n_features,
                        "max_abs_diff_traced_vs_eager": diff, "tolerance": args.tolerance,
                        "torch": torch.__version__}
        elif meta.get("model_type") == "xgboost":
            import xgboost as xgb

            shutil.copyfile(model_dir / "model.json", stage / "model.json")
            compiled = {"format": "xgboost-json", "compiler": None, "neuron": False, "batch_size": None,
                        "max_abs_diff_traced_vs_eager": None, "xgboost": xgb.__version__,
                        "serving_image": XGBOOST_SERVING_IMAGE}
        else:
            raise JobError(f"{model_dir / METADATA_FILE}: unknown model_type {meta.get('model_type')!r}")
        meta = {**meta, "compiled": compiled}
        write_json(stage / METADATA_FILE, meta)
        out = Path(args.output_dir)
        deterministic_tar(stage, out / "model.tar.gz")
        write_json(out / "compile_report.json", compiled)
        return compiled


def describe(args: argparse.Namespace) -> str:
    compiled = package(args)
    if compiled["format"] == "torchscript":
        return (f"{compiled['compiler']} batch {compiled['batch_size']}, max |traced - eager| = "
                f"{compiled['max_abs_diff_traced_vs_eager']:.3g}")
    return "packaged XGBoost model (no tracing)"


def main(argv: list[str] | None = None) -> int:
    return run_job("compile", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
