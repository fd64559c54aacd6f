"""Managed spot: training jobs checkpoint, and a job restarted after an interruption ends with the model an
uninterrupted run makes (XGBoost byte for byte; PyTorch within 1e-6, exact in practice on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.unit.ml.conftest import QUICK_PT, QUICK_XGB, channels
from training_jobs import train_pytorch, train_xgboost
from training_jobs.checkpoints import CheckpointStore, resolve_dir, run_key

XGB = [*QUICK_XGB, "--checkpoint-rounds", "20"]
PT = [*QUICK_PT, "--checkpoint-seconds", "0"]


class Interrupted(BaseException):
    """What a spot interruption looks like to the script: it stops right after a checkpoint."""


def interrupt_at(monkeypatch: pytest.MonkeyPatch, phase: str, nth: int) -> None:
    """The job stops right after its `nth` checkpoint in `phase` (search or refit)."""
    seen: list[Path] = []
    real = CheckpointStore.save

    def save(self: CheckpointStore, meta: dict, blobs: dict) -> Path | None:
        path = real(self, meta, blobs)
        assert path is not None
        if meta["phase"] == phase:
            seen.append(path)
            if len(seen) == nth:
                raise Interrupted
        return path

    monkeypatch.setattr(CheckpointStore, "save", save)


def argv(prep: Path, out: Path, quick: list[str], checkpoints: Path | None) -> list[str]:
    extra = [] if checkpoints is None else ["--checkpoint-dir", str(checkpoints)]
    return [*channels(prep), "--model-dir", str(out / "model"), "--output-data-dir", str(out / "data"), *quick, *extra]


def outcome(out: Path) -> tuple[dict, str]:
    meta = json.loads((out / "model" / "metadata.json").read_text())
    return meta, meta["model_file"]


@pytest.fixture(scope="module")
def xgb_reference(prep: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run without checkpoints."""
    out = tmp_path_factory.mktemp("xgb_ref")
    assert train_xgboost.main(argv(prep, out, XGB, None)) == 0
    return out


@pytest.mark.parametrize("phase, nth", [("search", 2), ("refit", 1)])
def test_xgboost_resumes_to_the_same_model(prep, xgb_reference, tmp_path, monkeypatch, phase, nth):
    ckpt = tmp_path / "ckpt"
    interrupt_at(monkeypatch, phase, nth)
    with pytest.raises(Interrupted):
        train_xgboost.main(argv(prep, tmp_path / "first", XGB, ckpt))
    monkeypatch.undo()
    assert train_xgboost.main(argv(prep, tmp_path / "resumed", XGB, ckpt)) == 0
    ref_meta, model_file = outcome(xgb_reference)
    meta, _ = outcome(tmp_path / "resumed")
    assert (tmp_path / "resumed" / "model" / model_file).read_bytes() == (
        xgb_reference / "model" / model_file
    ).read_bytes()
    assert meta["metrics"] == ref_meta["metrics"] and meta["best_iteration"] == ref_meta["best_iteration"]
    assert len(list(ckpt.glob("train_xgboost-*.npz"))) == 2  # the newest two are kept


def test_xgboost_ignores_a_checkpoint_of_another_run(prep, xgb_reference, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert train_xgboost.main(argv(prep, tmp_path / "other", [*XGB, "--eta", "0.2"], ckpt)) == 0
    assert train_xgboost.main(argv(prep, tmp_path / "again", XGB, ckpt)) == 0
    assert "belongs to another run" in capsys.readouterr().err
    model_file = outcome(xgb_reference)[1]
    assert (tmp_path / "again" / "model" / model_file).read_bytes() == (
        xgb_reference / "model" / model_file
    ).read_bytes()


def test_segmented_boosting_stops_where_xgboost_early_stopping_does(prep):
    """Without row/column sampling no random state is involved: the segmented trainer with its own early
    stopping rule gives xgboost.train(early_stopping_rounds=...)'s trees exactly."""
    import xgboost as xgb

    from training_jobs.train_common import load_training_data

    args = train_xgboost.parse_args(
        [*channels(prep), *XGB, "--subsample", "1", "--colsample-bytree", "1", "--refit-on-validation", "false"]
    )
    data = load_training_data(args)
    params = train_xgboost.booster_params(args)
    dtrain, dval = xgb.DMatrix(data.x_train, label=data.y_train), xgb.DMatrix(data.x_val, label=data.y_val)
    expected = xgb.train(
        params,
        dtrain,
        num_boost_round=args.num_round,
        evals=[(dval, "validation")],
        early_stopping_rounds=args.early_stopping_rounds,
        verbose_eval=False,
    )
    trainer = train_xgboost.Trainer(args, CheckpointStore(None, "t", "k"))
    progress = trainer.search(train_xgboost.Progress(), dtrain, dval)
    assert progress.history is not None and progress.search is not None
    assert train_xgboost.best_round(progress.history) == expected.best_iteration
    assert len(progress.history) == expected.num_boosted_rounds() < args.num_round  # it did stop early
    ours = xgb.Booster(model_file=bytearray(progress.search))
    assert np.array_equal(ours.inplace_predict(data.x_val), expected.inplace_predict(data.x_val))


@pytest.mark.parametrize("phase, nth", [("search", 3), ("refit", 2)])
def test_pytorch_resumes_to_the_same_model(prep, pt_model, tmp_path, monkeypatch, phase, nth):
    """`pt_model` (conftest): the same settings, trained without checkpoints."""
    import torch

    ckpt = tmp_path / "ckpt"
    interrupt_at(monkeypatch, phase, nth)
    with pytest.raises(Interrupted):
        train_pytorch.main(argv(prep, tmp_path / "first", PT, ckpt))
    monkeypatch.undo()
    assert train_pytorch.main(argv(prep, tmp_path / "resumed", PT, ckpt)) == 0
    ref = torch.load(pt_model / "model_state.pt", weights_only=True)
    got = torch.load(tmp_path / "resumed" / "model" / "model_state.pt", weights_only=True)
    assert ref.keys() == got.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], rtol=0, atol=1e-6)
    ref_meta = json.loads((pt_model / "metadata.json").read_text())
    meta, _ = outcome(tmp_path / "resumed")
    assert meta["training"]["best_epoch"] == ref_meta["training"]["best_epoch"]
    assert meta["metrics"]["validation_roc_auc"] == pytest.approx(ref_meta["metrics"]["validation_roc_auc"], abs=1e-6)


def test_store_skips_an_unreadable_checkpoint_and_keeps_the_newest(tmp_path, capsys):
    store = CheckpointStore(tmp_path, "job", "k1", keep=2)
    for i in range(3):
        store.save({"i": i}, {"blob": bytes([i]) * 10})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-00000002.npz", "job-00000003.npz"]
    (tmp_path / "job-00000003.npz").write_bytes(b"half an upload")
    found = CheckpointStore(tmp_path, "job", "k1").latest()
    assert found is not None and found.meta["i"] == 1 and found.blobs["blob"] == bytes([1]) * 10
    assert "job-00000003.npz is unreadable" in capsys.readouterr().err
    assert CheckpointStore(tmp_path, "job", "k2").latest() is None  # another run's checkpoints
    assert CheckpointStore(tmp_path, "job", "k1").save({"i": 9}, {}) == tmp_path / "job-00000004.npz"


def test_checkpoints_are_off_unless_sagemaker_or_the_caller_asks(tmp_path):
    assert resolve_dir(str(tmp_path)) == tmp_path
    assert resolve_dir(None) is None  # no /opt/ml/checkpoints on this machine
    assert CheckpointStore(None, "job", "k").save({}, {}) is None
    key = run_key("job", {"a": 1}, [np.zeros(3)])
    assert key != run_key("job", {"a": 2}, [np.zeros(3)]) and key != run_key("job", {"a": 1}, [np.ones(3)])


@pytest.mark.parametrize(
    "module, args, message",
    [
        (train_xgboost, ["--checkpoint-rounds", "0"], "--checkpoint-rounds must be a positive number"),
        (train_pytorch, ["--checkpoint-seconds", "-1"], "--checkpoint-seconds must be >= 0"),
    ],
)
def test_bad_checkpoint_settings_are_usage_errors(module, args, message, capsys):
    with pytest.raises(SystemExit):
        module.parse_args(args)
    assert message in capsys.readouterr().err
