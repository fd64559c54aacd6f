"""compile.py: traced == eager, archive layout, determinism, self-contained handler code."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from training_jobs import compile_model


def test_traced_matches_eager_within_tolerance(pt_package):
    with tarfile.open(pt_package) as tar:
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    compiled = meta["compiled"]
    assert compiled["format"] == "torchscript"
    assert compiled["compiler"] in ("torch.jit.trace", "torch_neuronx.trace")
    assert compiled["batch_size"] == 16
    assert compiled["max_abs_diff_traced_vs_eager"] <= 1e-5


def test_archive_layout(pt_package):
    with tarfile.open(pt_package) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    assert names == sorted(names)
    assert set(names) == {
        "code",
        "code/feature_values.py",
        "code/inference.py",
        "code/record_validation.py",
        "code/transform.py",
        "metadata.json",
        "model.pt",
        "schema.yaml",
        "transformer.json",
    }
    assert all(m.mtime == compile_model.FIXED_MTIME and m.uid == 0 and m.uname == "" for m in members)


def test_package_code_is_exactly_the_serving_package():
    """code/ in model.tar.gz holds every serving module, and only those."""
    modules = {p.name for p in compile_model.CODE_DIR.glob("*.py")} - {"__init__.py"}
    assert set(compile_model.CODE_FILES) == modules


def test_archive_is_byte_identical_for_identical_inputs(pt_model, tmp_path):
    # Separate processes, as two pipeline runs would be (TorchScript mangles class names when
    # the same module is traced twice inside one process).
    for name in ("a", "b"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "training_jobs.compile_model",
                "--model-dir",
                str(pt_model),
                "--output-dir",
                str(tmp_path / name),
                "--batch-size",
                "16",
            ],
            cwd=compile_model.CODE_DIR.parent,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
    assert (tmp_path / "a" / "model.tar.gz").read_bytes() == (tmp_path / "b" / "model.tar.gz").read_bytes()


def test_tolerance_violation_fails_the_job(pt_model, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compile_model, "check_traced", lambda *a, **k: 3e-4)
    rc = compile_model.main(["--model-dir", str(pt_model), "--output-dir", str(tmp_path)])
    assert rc == 1  # a failed check on the result (bad input is 2)
    err = capsys.readouterr().err
    assert "differs from eager by 0.0003" in err
    assert err.startswith("compile: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "model.tar.gz").exists()


def test_neuron_requested_without_torch_neuronx_is_a_clear_error(pt_model, tmp_path, capsys):
    pytest.importorskip("torch")
    try:
        import torch_neuronx  # noqa: F401
    except ImportError:
        rc = compile_model.main(["--model-dir", str(pt_model), "--output-dir", str(tmp_path), "--compiler", "neuron"])
        assert rc == 2
        assert "torch_neuronx is not importable" in capsys.readouterr().err
    else:  # pragma: no cover - only on Inferentia hosts
        pytest.skip("torch_neuronx present")


def test_xgboost_model_is_packaged_without_tracing(xgb_model, tmp_path):
    import xgboost

    assert compile_model.main(["--model-dir", str(xgb_model), "--output-dir", str(tmp_path)]) == 0
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        names = set(tar.getnames())
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert {"model.json", "code/inference.py", "code/transform.py"} <= names
    # Nothing is pip-installed when the container starts: the serving image must already have xgboost.
    assert "code/requirements.txt" not in names
    assert meta["compiled"]["xgboost"] == xgboost.__version__
    assert "XGBoost image" in meta["compiled"]["serving_image"]


def test_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        compile_model.parse_args(["--batch-size", "0"])
    assert "--batch-size must be 1..4096" in capsys.readouterr().err
    assert compile_model.main(["--model-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")]) == 2
    assert "model metadata not found" in capsys.readouterr().err


def test_packaged_handler_runs_without_this_repository(pt_package, tmp_path):
    """The container imports code/inference.py with code/ on sys.path and no package of this repository."""
    root = tmp_path / "model"
    with tarfile.open(pt_package) as tar:
        tar.extractall(root, filter="data")
    script = f"""
import sys, json
sys.path = [p for p in sys.path if p not in ('', {str(compile_model.CODE_DIR.parent)!r})]
sys.path.insert(0, {str(root / "code")!r})
import inference
assert not any(m in sys.modules for m in ('training_jobs', 'serving', 'dataset')), 'handler imported the repository'
model = inference.model_fn({str(root)!r})
fields = model.transformer.input_fields
print(json.dumps({{"fields": fields, "batch": model.batch_size, "module": inference.FeatureTransformer.__module__}}))
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["module"] == "transform" and info["batch"] == 16
    assert "tenure" in info["fields"]
