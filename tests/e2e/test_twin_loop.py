"""The twin closes the loop (issue 13 item 4) on the shared synthetic run: captured traffic in SageMaker's
layout, the drift job on both weeks, the retrain decision by start_training, champion against challenger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dataset.inference_ids import MAX_LENGTH as MAX_INFERENCE_ID
from dataset.schema import load_schema
from tests.fixtures import synthetic_churn
from training_jobs.select_model import select
from twin import drift_scenario
from twin.retrain_trigger import alarm_name

pytestmark = pytest.mark.e2e


def summary_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


def steps_of(run: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in json.loads((run / "steps.json").read_text())["steps"]}


def capture_lines(run: Path, endpoint: str, day: str) -> list[dict[str, Any]]:
    yyyy, mm, dd = day.split("-")
    files = sorted((run / "capture" / endpoint / "primary" / yyyy / mm / dd).glob("*/*.jsonl"))
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_both_weeks_are_captured_in_sagemaker_layout_one_request_per_subscriber(passing_run: Path) -> None:
    s = summary_of(passing_run)
    loop = s["loop"]
    test_ids = pd.read_csv(passing_run / "processing" / "preprocess" / "output" / "test" / "data.csv", dtype=str)
    for week in ("1", "2"):
        traffic = loop["weeks"][week]["traffic"]
        lines = capture_lines(passing_run, loop["endpoint"], traffic["scoring_date"])
        assert len(lines) == traffic["captured"] == traffic["answered"] == s["rows"]["test"]
        ids = [line["eventMetadata"]["inferenceId"] for line in lines]
        assert all(len(i) <= MAX_INFERENCE_ID and i.endswith(f":{traffic['scoring_date']}") for i in ids)
        assert len(set(ids)) == len(ids)
        assert {i.rsplit(":", 1)[0] for i in ids} == {i[:53] for i in test_ids["msisdn_ref"]}
        first = lines[0]["captureData"]
        assert first["endpointInput"]["encoding"] == "JSON" and first["endpointInput"]["mode"] == "INPUT"
        assert len(json.loads(first["endpointOutput"]["data"])["predictions"]) == 1


def test_drift_job_flags_nothing_in_week_one_and_exactly_the_scenarios_in_week_two(passing_run: Path) -> None:
    loop = summary_of(passing_run)["loop"]
    declared = drift_scenario.SCENARIOS[load_schema(synthetic_churn.SCHEMA_PATH).name]
    assert loop["expected_drift"] == drift_scenario.expected_features(declared) == ["monthly_fee", "plan"]
    week1, week2 = loop["weeks"]["1"]["drift"], loop["weeks"]["2"]["drift"]
    assert week1["drifted_features"] == []
    # Model Monitor's completeness check is strict: a held-out week with a few more blanks in a nullable field
    # (data_gb here) than the training split is a violation, though not drift. Nothing else may be flagged.
    for name, feature in week1["features"].items():
        assert set(feature["violations"]) <= {"completeness_check"}, (name, feature["violations"])
    assert week2["status"] == "violations" and sorted(week2["drifted_features"]) == loop["expected_drift"]
    for name, feature in week2["features"].items():
        assert feature["drifted"] == (name in loop["expected_drift"]), name
    # Labels joined on InferenceId give model quality for both weeks.
    assert week1["model_quality"]["joined"] == week2["model_quality"]["joined"] == loop["weeks"]["1"]["traffic"]["sent"]
    output = passing_run / "processing" / "drift-week-2" / "output"
    violations = json.loads((output / "constraint_violations.json").read_text())["violations"]
    assert {v["feature_name"] for v in violations} >= set(loop["expected_drift"])


def test_drift_steps_are_the_c3_job_with_its_recorded_arguments(passing_run: Path) -> None:
    steps = steps_of(passing_run)
    for week in (1, 2):
        step = steps[f"drift-week-{week}"]
        assert step["kind"] == "processing-job" and step["entry_point"] == "training_jobs.drift"
        argv = step["container_argv"]
        for option in (
            "--baseline-dir",
            "--capture-dir",
            "--output-dir",
            "--window-start",
            "--window-end",
            "--schema",
            "--labels-dir",
            "--endpoint-name",
            "--monitoring-schedule-name",
        ):
            assert option in argv, option
        assert argv[argv.index("--baseline-dir") + 1] == "/opt/ml/processing/baseline"
        assert argv[argv.index("--monitoring-schedule-name") + 1] == "telecom-ml-lowgate-churn-data-quality"
        assert step["exit_code"] == 0


def test_first_alarm_starts_the_retrain_and_the_others_are_coalesced(passing_run: Path) -> None:
    loop = summary_of(passing_run)["loop"]
    decision = loop["retrain_decision"]
    assert [a["alarm"] for a in decision["alarms"]] == [
        alarm_name("lowgate", f) for f in loop["weeks"]["2"]["drift"]["drifted_features"]
    ]
    outcomes = [a["outcome"] for a in decision["alarms"]]
    assert outcomes[0] == "started" and set(outcomes[1:]) == {"pipeline_running"}
    assert decision["retrain"] is True and decision["started_by"] == decision["alarms"][0]["alarm"]
    assert steps_of(passing_run)["retrain-decision"]["kind"] == "lambda"


def test_champion_and_challenger_meet_on_the_same_split_and_the_rule_decides(passing_run: Path) -> None:
    s = summary_of(passing_run)
    r = s["loop"]["retrain"]
    root = passing_run / "retrain" / "processing"
    challenger = json.loads((root / "evaluate-xgboost" / "evaluation" / "evaluation.json").read_text())
    champion = json.loads((root / "evaluate-champion" / "evaluation" / "evaluation.json").read_text())
    assert r["champion"]["model"] == s["champion"]
    assert r["challenger"]["roc_auc"] == challenger["telecom_churn_metrics"]["roc_auc"]["value"]
    assert r["champion"]["roc_auc"] == champion["telecom_churn_metrics"]["roc_auc"]["value"]
    test_split = pd.read_csv(r["split_file"], dtype=str)
    assert len(test_split) == r["window"]["test"]
    # The challenger trained on the original training rows plus the other half of the labelled week 2.
    assert r["window"]["train"] == s["rows"]["train"] + r["window"]["window_train"]
    assert r["window"]["window_train"] + r["window"]["test"] == s["rows"]["test"]
    choice = {"pytorch_tolerance": 0.005, "champion_tolerance": 0.005}
    pytorch = r["champion"] if s["champion"] == "pytorch" else r["pytorch_rescored"]

    def rule(m: dict[str, Any]) -> dict[str, float]:  # the two numbers select_model reads from evaluation.json
        return {"roc_auc": m["roc_auc"], "top_decile_lift": m["top_decile_lift"]}

    expected = select(
        {"xgboost": rule(r["challenger"]), "pytorch": rule(pytorch)},
        rule(r["champion"]),
        s["champion"],
        choice["pytorch_tolerance"],
        choice["champion_tolerance"],
    )
    assert r["selection"]["ship"] == expected["ship"] and r["selection"]["reason"] == expected["reason"]
    registers = expected["ship"]["model"] == "xgboost" and r["gate"]["passed"]
    assert r["decision"]["registers"] is registers
    assert r["decision"]["outcome"] == ("register_challenger" if registers else "keep_champion")
    assert ("retrain-register" in steps_of(passing_run)) is registers
    if registers:  # a new approved version of the same model, the alias champion on it
        import mlflow

        uri, name = s["registry"]["tracking_uri"], s["registry"]["registered_model"]
        alias = mlflow.MlflowClient(uri, uri).get_model_version_by_alias(name, "champion")
        assert int(alias.version) == r["decision"]["registry"]["version"] > s["registry"]["version"]
        assert alias.tags["model_type"] == "xgboost" and alias.tags["approval_status"] == "Approved"


def test_console_and_report_show_drift_and_the_decision(passing_twin) -> None:
    loop = summary_of(passing_twin.out)["loop"]
    html = (passing_twin.out / "report.html").read_text()
    assert "Monitoring and retraining" in html and loop["retrain"]["decision"]["reason"].split(":")[0] in html
    for feature in loop["expected_drift"]:
        assert feature in html and feature in passing_twin.console
    assert "Retrain decision (lambdas/start_training)" in passing_twin.console
    assert ("Challenger registers" in passing_twin.console) or ("Champion stays" in passing_twin.console)


def test_a_rejected_model_is_not_monitored(rejected_run) -> None:
    assert rejected_run.exit_code == 1
    loop = summary_of(rejected_run.out)["loop"]
    assert "gate failed" in loop["skipped"]
    assert not (rejected_run.out / "capture").exists()


def test_the_whole_base_is_scored_and_the_top_decile_listed(passing_run: Path) -> None:
    s = summary_of(passing_run)
    b = s["batch_scoring"]
    scores = pd.read_parquet(b["scores"])
    assert len(scores) == b["rows"] == s["rows"]["curated"]
    assert b["model_kind"] == s["champion"]
    top = scores[scores["decile"] == 1]
    assert b["to_contact"]["subscribers"] == len(top) and abs(len(top) - len(scores) / 10) <= 1
    assert b["to_contact"]["min_probability"] == top["probability"].min() >= scores["probability"].median()
    assert [r["rank"] for r in b["to_contact"]["first"]] == list(range(1, 11))
    html = (passing_run / "report.html").read_text()
    assert "The retention team&#x27;s list" in html and b["to_contact"]["first"][0]["subscriber_id"][:16] in html
