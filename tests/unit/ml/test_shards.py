"""Sharded splits (preprocess --shards N) and distributed XGBoost over them: two worker processes on this
machine, each with its own shard as ShardedByS3Key would hand it, against one process on all shards."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.ml.conftest import ROOT, SCHEMA
from training_jobs import preprocess, train_xgboost, xgb_cluster
from training_jobs.artifacts import load_model
from training_jobs.splits import read_split, shard_of_rows
from training_jobs.xgb_cluster import cluster_from, communicator

SPLITS = ("train", "validation", "test")
# Quick, and without row/column sampling so that the two runs differ only by what distribution changes.
XGB = [
    "--num-round",
    "200",
    "--eta",
    "0.1",
    "--early-stopping-rounds",
    "30",
    "--subsample",
    "1",
    "--colsample-bytree",
    "1",
    "--checkpoint-rounds",
    "50",
]


@pytest.fixture(scope="module")
def sharded(raw_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sharded")
    argv = ["--input-data", str(raw_csv), "--schema", str(SCHEMA), "--output-dir", str(out), "--shards", "3"]
    assert preprocess.main(argv) == 0
    return out


def test_every_split_is_written_as_n_shards_with_no_row_lost_or_repeated(sharded, prep, schema):
    for split in SPLITS:
        files = sorted(p.name for p in (sharded / split).iterdir())
        assert files == [f"part-0000{i}-of-00003.csv" for i in range(3)]
        parts = [pd.read_csv(sharded / split / f, dtype=str, keep_default_na=False) for f in files]
        whole = pd.read_csv(prep / split / "data.csv", dtype=str, keep_default_na=False)
        assert sum(len(p) for p in parts) == len(whole)
        combined = pd.concat(parts, ignore_index=True)
        assert not combined[schema.id_column].duplicated().any()
        key = schema.id_column
        pd.testing.assert_frame_equal(
            combined.sort_values(key, ignore_index=True), whole.sort_values(key, ignore_index=True)
        )
        sizes = [len(p) for p in parts]
        positives = [int((p[schema.target_column] == "1").sum()) for p in parts]
        assert max(sizes) - min(sizes) <= 1 and max(positives) - min(positives) <= 1
        # The readers take the shards as one split.
        frame, y = read_split(sharded / split, schema)
        assert len(frame) == len(whole) and y.sum() == (whole[schema.target_column] == "1").sum()
    summary = json.loads((sharded / "preprocess_summary.json").read_text())
    assert summary["shards"] == 3


def test_shard_assignment_deals_each_class_round_robin():
    y = np.array([1, 0, 0, 1, 0, 1, 1, 0, 0])
    assignment = shard_of_rows(y, 2)
    assert np.bincount(assignment).tolist() == [5, 4]
    assert np.bincount(assignment[y == 1]).tolist() == [2, 2]


def test_rewriting_a_split_replaces_the_old_layout(raw_csv, sharded, tmp_path):
    out = tmp_path / "o"
    shutil.copytree(sharded, out)
    assert preprocess.main(["--input-data", str(raw_csv), "--schema", str(SCHEMA), "--output-dir", str(out)]) == 0
    assert [p.name for p in (out / "train").iterdir()] == ["data.csv"]


def test_bad_shard_counts(raw_csv, tmp_path, capsys):
    with pytest.raises(SystemExit):
        preprocess.parse_args(["--shards", "0"])
    assert "--shards must be in 1..1000, got 0" in capsys.readouterr().err
    small = tmp_path / "small.csv"
    pd.read_csv(raw_csv, dtype=str).iloc[:60].to_csv(small, index=False)
    argv = ["--input-data", str(small), "--schema", str(SCHEMA), "--output-dir", str(tmp_path / "o"), "--shards", "20"]
    assert preprocess.main(argv) == 2
    assert "rows cannot fill 20 shards (lower --shards)" in capsys.readouterr().err


@pytest.mark.parametrize(
    "hosts, current, message",
    [
        ("algo-1", "algo-1", "must be a JSON list of host names"),
        ('["algo-1", "algo-1"]', "algo-1", "lists a host twice"),
        ('["algo-1", "algo-2"]', "algo-3", "'algo-3' is not one of the hosts"),
    ],
)
def test_bad_cluster_descriptions_are_job_errors(hosts, current, message):
    from training_jobs.errors import JobError

    with pytest.raises(JobError, match=message):
        cluster_from(hosts, current)


def test_cluster_ranks_follow_sorted_host_names():
    cluster = cluster_from('["algo-2", "algo-1"]', "algo-2")
    assert cluster is not None and cluster.hosts == ("algo-1", "algo-2") and cluster.tracker_host == "algo-1"
    assert cluster_from(None, None) is None
    single = cluster_from('["algo-1"]', "algo-1")  # one instance: SageMaker still sets SM_HOSTS
    assert single is not None and single.size == 1
    with communicator(single):  # no tracker, no communicator
        assert xgb_cluster.world_size() == 1 and xgb_cluster.rank() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_workers_train_on_their_own_shards_like_one_process_on_all(sharded, schema, tmp_path):
    """Two processes with SM_HOSTS/SM_CURRENT_HOST as SageMaker sets them ("127.0.0.1" and "localhost":
    two names for this machine), each given only its shards of the train channel, the validation channel
    whole. Distributed hist training merges the workers' quantile sketches, so its bin edges for the
    continuous features (charges) differ from one process's, and early stopping may pick another round; the
    two models must agree within: test ROC-AUC 0.01, prediction correlation 0.99."""
    shards = sorted((sharded / "train").iterdir())
    hosts, port = ["127.0.0.1", "localhost"], free_port()
    procs = []
    for index, host in enumerate(hosts):
        channel = tmp_path / host / "train"
        channel.mkdir(parents=True)
        for shard in shards[index::2]:  # what ShardedByS3Key does with 3 objects and 2 instances
            shutil.copy(shard, channel)
        env = {**os.environ, "SM_HOSTS": json.dumps(hosts), "SM_CURRENT_HOST": host, "PYTHONWARNINGS": "ignore"}
        argv = [
            sys.executable,
            "-m",
            "training_jobs.train_xgboost",
            "--train",
            str(channel),
            "--validation",
            str(sharded / "validation"),
            "--transformer",
            str(sharded / "transformer"),
            "--model-dir",
            str(tmp_path / host / "model"),
            "--output-data-dir",
            str(tmp_path / host / "out"),
            "--tracker-port",
            str(port),
            *XGB,
        ]
        procs.append(
            subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trees = train_xgboost_trees(outputs[0][0])
    assert f"worker rank 1 done ({trees} trees)" in outputs[1][0]
    assert not (tmp_path / "localhost" / "model").exists()  # only rank 0 writes the model

    single = tmp_path / "single"
    argv = [
        "--train",
        str(sharded / "train"),
        "--validation",
        str(sharded / "validation"),
        "--transformer",
        str(sharded / "transformer"),
        "--model-dir",
        str(single / "model"),
        "--output-data-dir",
        str(single / "out"),
        *XGB,
    ]
    assert train_xgboost.main(argv) == 0

    from sklearn.metrics import roc_auc_score

    distributed, alone = load_model(tmp_path / "127.0.0.1" / "model"), load_model(single / "model")
    meta = distributed.metadata
    assert meta["distributed"]["workers"] == 2
    assert meta["rows"]["train"] == alone.metadata["rows"]["train"] == sum(len(pd.read_csv(s)) for s in shards)
    frame, y = read_split(sharded / "test", schema)
    p_dist, p_one = distributed.predict_proba(frame), alone.predict_proba(frame)
    assert abs(roc_auc_score(y, p_dist) - roc_auc_score(y, p_one)) < 0.01
    assert np.corrcoef(p_dist, p_one)[0, 1] > 0.99


def train_xgboost_trees(stdout: str) -> int:
    line = next(line for line in stdout.splitlines() if line.startswith("train_xgboost: "))
    return int(line.split()[1])


def test_streaming_in_chunks_changes_nothing_in_the_outputs(raw_csv, sharded, tmp_path):
    """The table streams through in --chunk-rows chunks; 1,000-row chunks give the same files, byte for
    byte, as one chunk holding all 7,043 rows (the module fixture's default chunk)."""
    out = tmp_path / "chunked"
    argv = [
        "--input-data",
        str(raw_csv),
        "--schema",
        str(SCHEMA),
        "--output-dir",
        str(out),
        "--shards",
        "3",
        "--chunk-rows",
        "1000",
    ]
    assert preprocess.main(argv) == 0
    expected = sorted(p.relative_to(sharded) for p in sharded.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == expected
    for rel in expected:
        assert (out / rel).read_bytes() == (sharded / rel).read_bytes(), rel


def test_a_bad_value_in_a_later_chunk_names_its_row_in_the_table(raw_csv, tmp_path, capsys):
    frame = pd.read_csv(raw_csv, dtype=str, keep_default_na=False)
    frame.loc[2500, "tenure"] = "ten"
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    argv = [
        "--input-data",
        str(bad),
        "--schema",
        str(SCHEMA),
        "--output-dir",
        str(tmp_path / "o"),
        "--chunk-rows",
        "1000",
    ]
    assert preprocess.main(argv) == 2
    assert "row 2500: column 'tenure' value 'ten' is not a number" in capsys.readouterr().err
