"""Batch scoring's prepare and publish jobs on the real IBM Telco table: request format, order, the
package decision, and transform output that is not what it should be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training_jobs import batch_scoring
from training_jobs.batch_scoring import ranks_and_deciles
from training_jobs.splits import normalise_features, read_table

from .conftest import SCHEMA

GROUP = "telecom-ml-dev-churn"
ARN = f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{GROUP}/7"
CHAMPION = f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{GROUP}/5"


def prepare(features: Path, out: Path, *extra: str) -> int:
    return batch_scoring.main(
        [
            "prepare",
            "--features",
            str(features),
            "--schema",
            str(SCHEMA),
            "--output-dir",
            str(out),
            "--scoring-date",
            "2026-11-27",
            "--model-package-group",
            GROUP,
            "--pytorch-instance-type",
            "ml.inf2.xlarge",
            "--xgboost-instance-type",
            "ml.m5.large",
            *extra,
        ]
    )


def decision(out: Path) -> dict:
    return json.loads((out / "scoring" / "scoring.json").read_text())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, raw_csv) -> Path:
    out = tmp_path_factory.mktemp("prepared")
    assert (
        prepare(
            raw_csv,
            out,
            "--snapshot-date",
            "2026-11-01",
            "--model-package-arn",
            ARN,
            "--model-type",
            "pytorch",
            "--shard-rows",
            "3000",
        )
        == 0
    )
    return out


def test_prepare_writes_every_subscriber_once_in_the_handlers_raw_format(prepared, raw_csv, schema) -> None:
    source = normalise_features(read_table(raw_csv), schema, "source")
    requests = sorted((prepared / "requests").glob("*.jsonl"))
    ids = sorted((prepared / "ids").glob("*.csv"))
    assert [p.name for p in requests] == ["requests-00000.jsonl", "requests-00001.jsonl", "requests-00002.jsonl"]
    assert [p.name for p in ids] == ["ids-00000.csv", "ids-00001.csv", "ids-00002.csv"]
    records = [json.loads(line) for p in requests for line in p.read_text().splitlines()]
    id_order = pd.concat([pd.read_csv(p, dtype=str) for p in ids])[schema.id_column].tolist()
    assert len(records) == len(source) == 7043
    assert id_order == source[schema.id_column].tolist()  # same order as the table, shard by shard
    assert all(list(r) == schema.raw_feature_columns for r in records)
    # The same values, in JSON: a blank total_charges of a new subscriber is null, never NaN.
    first = source.iloc[0]
    for name, value in records[0].items():
        assert value == (None if isinstance(first[name], float) and np.isnan(first[name]) else first[name])
    blank = source[schema.numeric_columns].isna().any(axis=1).to_numpy().nonzero()[0]
    assert len(blank) > 0 and any(v is None for v in records[int(blank[0])].values())
    assert decision(prepared) == {
        "has_package": "true",
        "model_package_arn": ARN,
        "model_package_group": GROUP,
        "model_package_version": 7,
        "model_type": "pytorch",
        "instance_type": "ml.inf2.xlarge",
        "snapshot_date": "2026-11-01",
        "scoring_date": "2026-11-27",
        "records": 7043,
        "shards": 3,
        "id_column": schema.id_column,
        "schema": {"name": schema.name, "version": schema.version, "fingerprint": schema.fingerprint},
    }


def test_the_given_package_wins_then_the_champion_then_none(tmp_path, raw_csv, capsys) -> None:
    champion = ("--champion-package-arn", CHAMPION, "--champion-model-type", "xgboost")
    assert prepare(raw_csv, tmp_path / "a", "--snapshot-date", "2026-11-01", *champion) == 0
    picked = decision(tmp_path / "a")
    assert (picked["model_package_arn"], picked["model_type"], picked["instance_type"]) == (
        CHAMPION,
        "xgboost",
        "ml.m5.large",
    )
    given = ("--model-package-arn", ARN, "--model-type", "pytorch")
    assert prepare(raw_csv, tmp_path / "b", "--snapshot-date", "2026-11-01", *champion, *given) == 0
    picked = decision(tmp_path / "b")
    assert (picked["model_package_version"], picked["model_type"], picked["instance_type"]) == (
        7,
        "pytorch",
        "ml.inf2.xlarge",
    )
    # The deployer passes the package it just deployed: the newest approved one, typed by the lookup.
    assert (
        prepare(raw_csv, tmp_path / "c", "--snapshot-date", "2026-11-01", *champion, "--model-package-arn", CHAMPION)
        == 0
    )
    assert decision(tmp_path / "c")["model_type"] == "xgboost"
    assert prepare(raw_csv, tmp_path / "d", "--snapshot-date", "2026-11-01", "--champion-package-arn", "none") == 0
    assert decision(tmp_path / "d")["has_package"] == "false"
    assert decision(tmp_path / "d")["model_package_arn"] == "none"
    # An older package (a rollback) cannot be typed from inside the job: the run says what to pass.
    assert prepare(raw_csv, tmp_path / "e", "--snapshot-date", "2026-11-01", *champion, "--model-package-arn", ARN) == 2
    assert f"--model-type: {ARN} is not the champion ({CHAMPION})" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("arn:aws:sagemaker:eu-west-1:111111111111:model-package/other-group/3", "belongs to group 'other-group'"),
        (f"arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/{GROUP}", "not a versioned model package ARN"),
        (f"{GROUP}/3", "not a versioned model package ARN"),
    ],
)
def test_a_package_of_another_group_or_no_version_is_refused(tmp_path, raw_csv, capsys, arn, message) -> None:
    assert prepare(raw_csv, tmp_path, "--snapshot-date", "2026-11-01", "--model-package-arn", arn) == 2
    err = capsys.readouterr().err
    assert err.startswith("batch_scoring: error: --model-package-arn:") and message in err
    assert not (tmp_path / "requests").exists()


def test_a_table_location_is_narrowed_to_the_latest_or_the_requested_snapshot(tmp_path, raw_csv, capsys) -> None:
    table = tmp_path / "features"
    frame = pd.read_csv(raw_csv, dtype=str, keep_default_na=False)
    for date, rows in (("2026-10-01", frame.iloc[:100]), ("2026-11-01", frame.iloc[:250])):
        (table / f"snapshot_date={date}").mkdir(parents=True)
        rows.to_parquet(table / f"snapshot_date={date}" / "part-0.parquet", index=False)
    (table / "_runs").mkdir()  # run summaries beside the partitions are not a snapshot
    assert prepare(table, tmp_path / "latest", "--model-package-arn", ARN, "--model-type", "xgboost") == 0
    assert (decision(tmp_path / "latest")["snapshot_date"], decision(tmp_path / "latest")["records"]) == (
        "2026-11-01",
        250,
    )
    assert (
        prepare(
            table,
            tmp_path / "older",
            "--model-package-arn",
            ARN,
            "--model-type",
            "xgboost",
            "--snapshot-date",
            "2026-10-01",
        )
        == 0
    )
    assert decision(tmp_path / "older")["records"] == 100
    assert (
        prepare(
            table,
            tmp_path / "none",
            "--model-package-arn",
            ARN,
            "--model-type",
            "xgboost",
            "--snapshot-date",
            "2026-09-01",
        )
        == 2
    )
    assert "no partition snapshot_date=2026-09-01 (found 2026-10-01, 2026-11-01)" in capsys.readouterr().err


def test_bad_tables_and_dates_fail_naming_what(tmp_path, raw_csv, capsys) -> None:
    frame = pd.read_csv(raw_csv, dtype=str, keep_default_na=False)
    twice = pd.concat([frame.iloc[:5], frame.iloc[2:3]])
    twice.to_csv(tmp_path / "twice.csv", index=False)
    assert prepare(tmp_path / "twice.csv", tmp_path / "o1", "--snapshot-date", "2026-11-01") == 2
    assert f"subscriber id {frame.iloc[2, 0]!r} appears more than once" in capsys.readouterr().err
    assert prepare(raw_csv, tmp_path / "o2") == 2
    assert "cannot tell the snapshot date" in capsys.readouterr().err
    assert prepare(raw_csv, tmp_path / "o3", "--snapshot-date", "2026-02-30") == 2
    assert "--snapshot-date: '2026-02-30' is not a calendar date" in capsys.readouterr().err
    frame.drop(columns=["tenure"]).to_csv(tmp_path / "short.csv", index=False)
    assert prepare(tmp_path / "short.csv", tmp_path / "o4", "--snapshot-date", "2026-11-01") == 2
    assert "missing columns ['tenure']" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- publish
def transform_output(prepared: Path, out: Path, probability_of_id) -> Path:
    """What Batch Transform leaves: requests-NNNNN.jsonl.out, one prediction line per request line."""
    out.mkdir(parents=True, exist_ok=True)
    for ids_file in sorted((prepared / "ids").glob("ids-*.csv")):
        ids = pd.read_csv(ids_file, dtype=str).iloc[:, 0]
        lines = [
            json.dumps({"probability": probability_of_id(i), "label": "Yes" if probability_of_id(i) >= 0.5 else "No"})
            for i in ids
        ]
        (out / f"requests-{ids_file.stem[4:]}.jsonl.out").write_text("\n".join(lines) + "\n")
    return out


def publish(prepared: Path, predictions: Path, out: Path) -> int:
    return batch_scoring.main(
        [
            "publish",
            "--ids",
            str(prepared / "ids"),
            "--predictions",
            str(predictions),
            "--scoring",
            str(prepared / "scoring"),
            "--output-dir",
            str(out),
            "--scored-at",
            "2026-11-27T06:00:00Z",
        ]
    )


def fake_probability(subscriber: str) -> float:
    """A probability that differs per subscriber, so a line joined to the wrong id shows."""
    return (sum(map(ord, subscriber)) * 7919 % 10_007) / 10_007


def test_publish_joins_each_line_to_its_subscriber_and_ranks_the_base(prepared, tmp_path) -> None:
    predictions = transform_output(prepared, tmp_path / "out", fake_probability)
    assert publish(prepared, predictions, tmp_path / "partition") == 0
    scores = pd.read_parquet(tmp_path / "partition" / "scores.parquet")
    assert len(scores) == 7043 and scores["subscriber_id"].is_unique
    assert np.allclose(scores["probability"], scores["subscriber_id"].map(fake_probability))
    assert list(scores.columns) == [name for name, _ in batch_scoring.SCORE_COLUMNS]
    assert set(scores["model_package_arn"]) == {ARN} and set(scores["model_version"]) == {7}
    assert set(scores["snapshot_date"]) == {"2026-11-01"} and set(scores["model_package_group"]) == {GROUP}
    assert set(scores["scored_at"]) == {pd.Timestamp("2026-11-27T06:00:00Z")}
    ordered = scores.sort_values("rank")
    assert ordered["rank"].tolist() == list(range(1, 7044))
    assert ordered["probability"].is_monotonic_decreasing
    top = scores[scores["decile"] == 1]
    assert len(top) == 7043 // 10 and top["probability"].min() >= scores.loc[scores["decile"] == 2, "probability"].max()
    assert scores["decile"].value_counts().sort_index().index.tolist() == list(range(1, 11))


def test_ties_rank_by_subscriber_id_so_a_rerun_ranks_alike() -> None:
    rank, decile = ranks_and_deciles(pd.Series(["c", "a", "b", "d"]), np.array([0.5, 0.5, 0.9, 0.1]))
    assert rank.tolist() == [3, 2, 1, 4] and decile.tolist() == [8, 5, 3, 10]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 3: not JSON"),
        ('{"label": "Yes"}', "line 3: expected an object with 'probability'"),
        ('{"probability": 1.5}', "line 3: probability must be a number in [0, 1], got 1.5"),
        ('{"probability": "0.4"}', "line 3: probability must be a number in [0, 1], got '0.4'"),
        ('{"probability": NaN}', "line 3: probability must be a number in [0, 1], got nan"),
        ("", "line 3: empty line where a prediction was expected"),
    ],
)
def test_a_malformed_transform_line_fails_naming_file_and_line(prepared, tmp_path, capsys, line, message) -> None:
    predictions = transform_output(prepared, tmp_path / "out", fake_probability)
    target = predictions / "requests-00001.jsonl.out"
    lines = target.read_text().splitlines()
    lines[2] = line
    target.write_text("\n".join(lines) + "\n")
    assert publish(prepared, predictions, tmp_path / "partition") == 2
    err = capsys.readouterr().err
    assert f"{target}: {message}" in err, err
    assert not (tmp_path / "partition" / "scores.parquet").exists()


def test_missing_extra_or_short_transform_output_fails(prepared, tmp_path, capsys) -> None:
    predictions = transform_output(prepared, tmp_path / "out", fake_probability)
    short = predictions / "requests-00002.jsonl.out"
    short.write_text("\n".join(short.read_text().splitlines()[:-1]) + "\n")
    assert publish(prepared, predictions, tmp_path / "p") == 2
    assert "1042 prediction lines for 1043 requests in ids-00002.csv" in capsys.readouterr().err
    short.unlink()
    assert publish(prepared, predictions, tmp_path / "p") == 2
    assert "requests-00002.jsonl.out: transform output missing for ids-00002.csv" in capsys.readouterr().err
    (predictions / "requests-00009.jsonl.out").write_text("")
    assert publish(prepared, predictions, tmp_path / "p") == 2
    assert "['requests-00009.jsonl.out'] matches no ids file" in capsys.readouterr().err


def test_a_run_without_a_package_publishes_nothing(tmp_path, raw_csv, capsys) -> None:
    assert prepare(raw_csv, tmp_path / "prep", "--snapshot-date", "2026-11-01", "--shard-rows", "8000") == 0
    predictions = tmp_path / "out"
    predictions.mkdir()
    assert publish(tmp_path / "prep", predictions, tmp_path / "p") == 2
    assert "no model package scored this run; nothing to publish" in capsys.readouterr().err
