"""The drift job on the real IBM Telco data: no violation on a held-out split, exactly the injected shifts
flagged, Model Monitor's distance definition, and outputs the SageMaker SDK's own classes read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.unit.ml.conftest import SCHEMA
from tests.unit.ml.drift_capture import write_capture
from training_jobs import baseline, drift
from training_jobs.drift_checks import (
    categorical_distance,
    decile_psi,
    linf_robust,
    numeric_distance,
    numeric_psi,
    psi,
)
from training_jobs.errors import JobError
from training_jobs.splits import read_split

START = datetime(2026, 11, 27, 10, tzinfo=UTC)
WINDOW = ["--window-start", "2026-11-27T10:00:00Z", "--window-end", "2026-11-27T12:00:00Z"]


@pytest.fixture(scope="module")
def baseline_dir(prep, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("drift-baseline")
    assert baseline.main(["--input-data", str(prep / "train"), "--schema", str(SCHEMA), "--output-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def held_out(prep, schema) -> pd.DataFrame:
    """The test split's raw features, booleans as JSON true/false as a client sends them."""
    frame, _ = read_split(prep / "test", schema)
    features = frame[schema.raw_feature_columns].copy()
    for c in schema.boolean_columns:
        features[c] = features[c].map({"yes": True, "no": False}).astype(object)
    return features


def run_job(baseline_dir: Path, capture: Path, out: Path, *extra: str) -> tuple[int, dict, list[dict]]:
    argv = ["--baseline-dir", str(baseline_dir), "--capture-dir", str(capture), "--output-dir", str(out)]
    rc = drift.main([*argv, *WINDOW, "--schema", str(SCHEMA), *extra])
    report = json.loads((out / "drift_report.json").read_text())
    path = out / "constraint_violations.json"
    violations = json.loads(path.read_text())["violations"] if path.exists() else []
    return rc, report, violations


def flagged(violations: list[dict]) -> set[tuple[str, str]]:
    return {(v["feature_name"], v["constraint_check_type"]) for v in violations}


def test_held_out_split_raises_no_violation(baseline_dir, held_out, tmp_path) -> None:
    write_capture(tmp_path / "capture", held_out, np.full(len(held_out), 0.25), START)
    rc, report, violations = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out")
    assert rc == 0
    assert json.loads((tmp_path / "out" / "constraint_violations.json").read_text()) == {"violations": []}
    assert violations == []
    assert report["status"] == "ok" and report["records"] == len(held_out)
    assert report["capture"]["malformed"] == 0
    assert set(report["features"]) == set(held_out.columns)
    assert all(f["distance"] == 0.0 and f["simple_distance"] < 0.05 for f in report["features"].values())


def _monthly_charges_up(frame: pd.DataFrame) -> None:
    frame["monthly_charges"] = frame["monthly_charges"] * 1.3


def _month_to_month(frame: pd.DataFrame) -> None:
    frame.loc[frame.sample(frac=0.5, random_state=1).index, "contract"] = "Month-to-month"


def _new_payment_method(frame: pd.DataFrame) -> None:
    frame.loc[frame.sample(frac=0.3, random_state=2).index, "payment_method"] = "Mobile wallet"


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        (_monthly_charges_up, {("monthly_charges", "baseline_drift_check")}),
        (_month_to_month, {("contract", "baseline_drift_check")}),
        (
            _new_payment_method,
            {("payment_method", "categorical_values_check"), ("payment_method", "baseline_drift_check")},
        ),
    ],
    ids=["monthly_charges+30%", "contract->month-to-month", "new-payment-method"],
)
def test_each_injected_shift_flags_exactly_its_feature(baseline_dir, held_out, tmp_path, shift, expected) -> None:
    shifted = held_out.copy()
    shift(shifted)
    write_capture(tmp_path / "capture", shifted, np.full(len(shifted), 0.25), START, encoding="BASE64")
    rc, report, violations = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out")
    assert rc == 0
    assert flagged(violations) == expected
    feature = next(iter(expected))[0]
    assert report["drifted_features"] == [feature]
    assert report["features"][feature]["psi"] > 0.1
    assert all(f["psi"] < 0.05 for n, f in report["features"].items() if n != feature)


def test_type_completeness_sign_domain_and_columns_checks(baseline_dir, held_out, schema) -> None:
    frame = held_out.head(400).copy().astype(object)
    frame["total_charges"] = frame["total_charges"].fillna(0.0)  # only the injected problems below
    frame.loc[frame.index[:5], "tenure"] = "twelve"
    frame.loc[frame.index[5:8], "tenure"] = 3.5  # tenure's baseline type is Integral
    frame.loc[frame.index[:40], "contract"] = None
    frame.loc[frame.index[:2], "total_charges"] = -10.0
    frame = frame.drop(columns=["streaming_tv"]).assign(loyalty_tier="gold")
    result = drift.detect(baseline_dir, frame, schema)
    assert flagged([v.as_dict() for v in result.violations]) == {
        ("tenure", "data_type_check"),
        ("contract", "completeness_check"),
        ("total_charges", "non_negative_check"),
        ("streaming_tv", "missing_column_check"),
        ("loyalty_tier", "extra_column_check"),
    }
    tenure = result.features["tenure"]
    assert (tenure.wrong_type, tenure.present) == (8, 400)
    assert result.features["contract"].missing == 40


def test_outputs_read_back_by_sagemaker_sdk_classes(baseline_dir, held_out, tmp_path) -> None:
    from sagemaker.core.model_monitor.monitoring_files import Constraints, ConstraintViolations, Statistics

    shifted = held_out.copy()
    _new_payment_method(shifted)
    write_capture(tmp_path / "capture", shifted, np.full(len(shifted), 0.25), START, encoding="CSV", batch=8)
    rc, _, _ = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out")
    assert rc == 0
    out = tmp_path / "out"
    violations = ConstraintViolations(json.loads((out / "constraint_violations.json").read_text()), None)
    window = Statistics(json.loads((out / "statistics.json").read_text()), None)
    constraints = Constraints(json.loads((baseline_dir / "constraints.json").read_text()), None)
    assert {v["constraint_check_type"] for v in violations.body_dict["violations"]} == {
        "categorical_values_check",
        "baseline_drift_check",
    }
    assert all(
        set(v) == {"feature_name", "constraint_check_type", "description"} for v in violations.body_dict["violations"]
    )
    assert window.body_dict["dataset"]["item_count"] == len(shifted)
    by_name = {f["name"]: f for f in window.body_dict["features"]}
    assert {f["name"] for f in constraints.body_dict["features"]} == set(by_name)
    buckets = by_name["payment_method"]["string_statistics"]["distribution"]["categorical"]["buckets"]
    assert {b["value"]: b["count"] for b in buckets}["Mobile wallet"] == round(0.3 * len(shifted))


def test_numeric_distance_is_the_two_sample_ks_statistic_when_the_sketch_holds_every_value() -> None:
    rng = np.random.default_rng(7)
    base, window = rng.normal(0, 1, 1500), rng.normal(0.3, 1, 800)
    distance = numeric_distance(np.sort(base), np.ones(base.size), window)
    assert distance == pytest.approx(stats.ks_2samp(base, window).statistic, abs=1e-12)
    # Robust: the KS critical value for alpha ~0.003 is taken off; never below 0.
    assert linf_robust(distance, 1500, 800, robust=True) == pytest.approx(
        distance - 1.8 * np.sqrt((1500 + 800) / (1500 * 800))
    )
    assert linf_robust(0.01, 1500, 800, robust=True) == 0.0
    assert linf_robust(0.01, 1500, 800, robust=False) == 0.01


def test_categorical_distance_is_the_largest_share_difference() -> None:
    base = pd.Series({"a": 50.0, "b": 30.0, "c": 20.0})
    window = pd.Series({"a": 10, "b": 10, "new": 20})
    # shares a .5/.25, b .3/.25, c .2/0, new 0/.5 -> largest difference .5
    assert categorical_distance(base, window) == pytest.approx(0.5)


def test_psi_definitions() -> None:
    assert psi(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert psi(np.array([0.2, 0.8]), np.array([0.5, 0.5])) == pytest.approx(0.3 * np.log(2.5) - 0.3 * np.log(0.625))
    stats_block = {
        "distribution": {
            "kll": {
                "buckets": [
                    {"lower_bound": 0.0, "upper_bound": 1.0, "count": 5.0},
                    {"lower_bound": 1.0, "upper_bound": 2.0, "count": 5.0},
                ]
            }
        }
    }
    # Outer edges open: -3 lands in the first bucket, 9 in the last; 1.0 (an edge) in the lower bucket.
    assert numeric_psi(stats_block, np.array([-3.0, 1.0, 1.5, 9.0])) == pytest.approx(0.0)
    rng = np.random.default_rng(3)
    same, shifted = rng.uniform(size=20000), rng.uniform(size=20000) ** 0.5
    assert decile_psi(same, rng.uniform(size=20000)) < 0.01
    assert decile_psi(same, shifted) > 0.2


def test_prediction_drift_against_baseline_predictions(baseline_dir, held_out, tmp_path) -> None:
    rng = np.random.default_rng(11)
    pd.DataFrame({"probability": rng.beta(2, 5, 3000)}).to_csv(tmp_path / "predictions.csv", index=False)
    served = rng.beta(5, 2, len(held_out))  # the model now scores everybody as likely to churn
    write_capture(tmp_path / "capture", held_out, served, START)
    rc, report, _ = run_job(
        baseline_dir, tmp_path / "capture", tmp_path / "out", "--baseline-predictions", str(tmp_path)
    )
    assert rc == 0
    assert report["prediction_drift"]["psi"] > 1.0
    assert report["prediction_drift"]["window_rows"] == len(held_out)
    rc, report, _ = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out2")
    assert report["prediction_drift"] == {"skipped": "no baseline predictions given (--baseline-predictions)"}


def test_a_current_baseline_without_predictions_skips_prediction_drift_and_a_missing_file_is_bad_input(
    baseline_dir, held_out, tmp_path, capsys
) -> None:
    write_capture(tmp_path / "capture", held_out, np.full(len(held_out), 0.3), START)
    empty = tmp_path / "current-baseline"
    empty.mkdir()
    rc, report, _ = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out", "--baseline-predictions", str(empty))
    assert rc == 0
    assert report["prediction_drift"]["skipped"].startswith(f"{empty} holds no baseline_predictions.csv")
    argv = ["--baseline-dir", str(baseline_dir), "--capture-dir", str(tmp_path / "capture"), *WINDOW]
    argv += ["--output-dir", str(tmp_path / "out2"), "--schema", str(SCHEMA)]
    assert drift.main([*argv, "--baseline-predictions", str(empty / "nope.csv")]) == 2
    assert "nope.csv: cannot read baseline predictions" in capsys.readouterr().err


def test_baseline_predictions_csv_wins_over_the_reports_predictions_csv(baseline_dir, held_out, tmp_path) -> None:
    write_capture(tmp_path / "capture", held_out, np.full(len(held_out), 0.3), START)
    pd.DataFrame({"probability": [0.3] * 50}).to_csv(tmp_path / "baseline_predictions.csv", index=False)
    pd.DataFrame({"id": ["x"], "probability": [0.9]}).to_csv(tmp_path / "predictions.csv", index=False)
    rc, report, _ = run_job(
        baseline_dir, tmp_path / "capture", tmp_path / "out", "--baseline-predictions", str(tmp_path)
    )
    assert rc == 0 and report["prediction_drift"]["baseline_rows"] == 50


def test_no_baseline_and_no_data_are_clean_noops(baseline_dir, held_out, tmp_path, capsys) -> None:
    write_capture(tmp_path / "capture", held_out.head(10), np.full(10, 0.2), START)
    rc, report, violations = run_job(tmp_path / "nothing-yet", tmp_path / "capture", tmp_path / "a")
    assert (rc, report["status"], violations) == (0, "no_baseline", [])
    assert not (tmp_path / "a" / "constraint_violations.json").exists()
    assert "drift: no-op:" in capsys.readouterr().out
    write_capture(tmp_path / "later", held_out.head(10), np.full(10, 0.2), START + timedelta(days=1))
    rc, report, _ = run_job(baseline_dir, tmp_path / "later", tmp_path / "b")
    assert (rc, report["status"], report["capture"]["events_in_window"]) == (0, "no_data", 0)
    rc, report, _ = run_job(baseline_dir, tmp_path / "never-captured", tmp_path / "c")
    assert (rc, report["status"]) == (0, "no_data")


def test_too_many_malformed_lines_exit_1_naming_the_first(baseline_dir, held_out, tmp_path, capsys) -> None:
    files = write_capture(tmp_path / "capture", held_out.head(20), np.full(20, 0.2), START)
    with files[0].open("a") as f:
        f.write('not json\n{"captureData": {}}\n')
    rc, report, _ = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out", "--max-malformed-share", "0.05")
    assert rc == 1
    err = capsys.readouterr().err
    assert "2 of 22 capture lines are malformed" in err and f"{files[0]}:21: not valid JSON" in err
    assert report["status"] == "too_many_malformed" and len(report["capture"]["problems"]) == 2
    rc, report, _ = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out", "--max-malformed-share", "0.1")
    assert rc == 0 and report["capture"]["malformed"] == 2 and report["records"] == 20


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--window-start", "2026-11-27T12:00:00Z"], "is not after --window-start"),
        (["--window-end", "yesterday"], "not ISO 8601"),
        (["--publish-metrics"], "--publish-metrics needs --endpoint-name and --monitoring-schedule-name"),
        (["--max-malformed-share", "2"], "is not between 0 and 1"),
        (["--workers", "0"], "--workers 0 must be at least 1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(baseline_dir, tmp_path, capsys, extra, message) -> None:
    argv = ["--baseline-dir", str(baseline_dir), "--capture-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")]
    assert drift.main([*argv, *WINDOW, "--schema", str(SCHEMA), *extra]) == 2
    assert message in capsys.readouterr().err


def test_bad_baseline_files_fail_with_their_path(tmp_path, schema) -> None:
    (tmp_path / "statistics.json").write_text("{}")
    (tmp_path / "constraints.json").write_text("{not json")
    with pytest.raises(JobError, match=r"statistics\.json: no 'features' list"):
        drift.detect(tmp_path, pd.DataFrame({"tenure": [1]}), schema)


def _baseline_with(baseline_dir: Path, out: Path, **config: object) -> Path:
    out.mkdir()
    (out / "statistics.json").write_text((baseline_dir / "statistics.json").read_text())
    constraints = json.loads((baseline_dir / "constraints.json").read_text())
    for key, value in config.items():
        target = constraints["monitoring_config"]
        if key in ("comparison_method", "categorical_drift_method"):
            target = target["distribution_constraints"]
        target[key] = value
    (out / "constraints.json").write_text(json.dumps(constraints))
    return out


def test_disabled_evaluation_and_metrics_are_honoured(baseline_dir, held_out, tmp_path) -> None:
    base = _baseline_with(baseline_dir, tmp_path / "base", evaluate_constraints="Disabled", emit_metrics="Disabled")
    shifted = held_out.copy()
    _monthly_charges_up(shifted)
    write_capture(tmp_path / "capture", shifted, np.full(len(shifted), 0.25), START)
    names = ["--publish-metrics", "--endpoint-name", "ep", "--monitoring-schedule-name", "ep-data-quality"]
    rc, report, violations = run_job(base, tmp_path / "capture", tmp_path / "out", *names)
    assert rc == 0 and violations == []
    assert report["features"]["monthly_charges"]["distance"] > 0.1  # still measured and reported
    assert report["published"] == {"skipped": "monitoring_config.emit_metrics is Disabled in constraints.json"}


def test_simple_comparison_reports_the_plain_distance(baseline_dir, held_out, schema, tmp_path) -> None:
    base = _baseline_with(baseline_dir, tmp_path / "base", comparison_method="Simple")
    result = drift.detect(base, held_out, schema)
    assert result.violations == []
    assert all(f.distance == f.simple_distance and f.distance > 0 for f in result.features.values())


def test_unsupported_categorical_method_exits_2(baseline_dir, held_out, tmp_path, capsys) -> None:
    base = _baseline_with(baseline_dir, tmp_path / "base", categorical_drift_method="ChiSquared")
    write_capture(tmp_path / "capture", held_out.head(5), np.full(5, 0.25), START)
    argv = ["--baseline-dir", str(base), "--capture-dir", str(tmp_path / "capture"), "--output-dir", str(tmp_path)]
    rc = drift.main([*argv, *WINDOW, "--schema", str(SCHEMA)])
    assert rc == 2 and "categorical_drift_method 'ChiSquared' is not supported" in capsys.readouterr().err


def test_fail_on_violations_exits_1_after_writing_the_outputs(baseline_dir, held_out, tmp_path, capsys) -> None:
    shifted = held_out.copy()
    _monthly_charges_up(shifted)
    write_capture(tmp_path / "capture", shifted, np.full(len(shifted), 0.25), START)
    rc, report, violations = run_job(baseline_dir, tmp_path / "capture", tmp_path / "out", "--fail-on-violations")
    assert rc == 1 and flagged(violations) == {("monthly_charges", "baseline_drift_check")}
    assert report["status"] == "violations"
    assert "1 constraint violation(s) on ['monthly_charges'] (--fail-on-violations)" in capsys.readouterr().err
