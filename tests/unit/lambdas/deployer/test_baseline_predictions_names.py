"""One file name and one package property tie the evaluate step, the pipeline's registration, the deployer
and the drift job's prediction drift together."""

from __future__ import annotations

from infra.pipeline import churn
from lambdas.deployer import baseline
from training_jobs import drift, evaluate


def test_the_evaluate_step_pipeline_deployer_and_drift_job_name_the_same_file() -> None:
    assert evaluate.BASELINE_PREDICTIONS == churn.BASELINE_PREDICTIONS == baseline.PREDICTIONS_FILE
    assert drift.PREDICTION_FILES[0] == baseline.PREDICTIONS_FILE
    assert churn.BASELINE_PREDICTIONS_PROPERTY == baseline.PREDICTIONS_PROPERTY
