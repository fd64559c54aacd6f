"""Ground truth joined to captured predictions: ROC-AUC, top-decile lift, expected calibration error.

Labels (the lake's `churn_labels` table, or CSV/Parquet files under a directory): columns
`subscriber_id` (pseudonymised), `churned` (boolean: true/false, 1/0, yes/no), `observed_at` (date),
optional `inference_id`; `label_date` comes from a `label_date=YYYY-MM-DD` folder when not a column.
Captured predictions carry the endpoint's InferenceId `<subscriber_id>:<scoring date YYYY-MM-DD>`.
Join: a label with an `inference_id` matches that InferenceId exactly; a label without one matches its
subscriber's latest captured scoring on or before `observed_at`. A subscriber scored twice under one
InferenceId (a client retry) counts once, with the latest capture.
Calibration error: expected calibration error over 10 equal-width probability bins,
sum over bins of (bin count / N) * |mean probability - churn rate|.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dataset import inference_ids
from training_jobs.capture_records import INFERENCE_ID, INFERENCE_TIME, PROBABILITY
from training_jobs.errors import JobError
from training_jobs.metrics import roc_auc, top_decile

LABEL_COLUMNS = ("subscriber_id", "churned", "observed_at")
CALIBRATION_BINS = 10
_TRUE = {"true", "1", "1.0", "yes", "t", "y"}
_FALSE = {"false", "0", "0.0", "no", "f", "n"}


def read_labels(labels_dir: str | Path) -> pd.DataFrame:
    """All label files under `labels_dir` as one frame: subscriber_id, churned (bool), observed_at
    (date), inference_id (str or None), label_date. Bad files or rows raise JobError naming them."""
    root = Path(labels_dir)
    if not root.exists():
        raise JobError(f"{root}: labels directory not found")
    files = sorted(
        p for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file() and p.suffix in (".csv", ".parquet")
    )
    parts = [_read_label_file(p) for p in files]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in (*LABEL_COLUMNS, "inference_id", "label_date")})
    return pd.concat(parts, ignore_index=True)


def _read_label_file(path: Path) -> pd.DataFrame:
    try:
        frame = (
            pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str, keep_default_na=False)
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise JobError(f"{path}: cannot read labels ({exc})") from None
    missing = [c for c in LABEL_COLUMNS if c not in frame]
    if missing:
        raise JobError(
            f"{path}: labels lack column(s) {missing} (expected {list(LABEL_COLUMNS)}, optional inference_id)"
        )
    out = pd.DataFrame({"subscriber_id": frame["subscriber_id"].astype(str).str.strip()})
    empty_id = out["subscriber_id"].isin(["", "nan", "None"])
    if empty_id.any():
        raise JobError(f"{path}: row {int(np.argmax(empty_id.to_numpy()))}: subscriber_id is empty")
    out["churned"] = _churned(frame["churned"], path)
    observed = pd.to_datetime(frame["observed_at"], errors="coerce", format="ISO8601")
    if observed.isna().any():
        i = int(np.argmax(observed.isna().to_numpy()))
        raise JobError(f"{path}: row {i}: observed_at {frame['observed_at'].iloc[i]!r} is not a date")
    out["observed_at"] = observed.dt.tz_localize(None) if observed.dt.tz is not None else observed
    ids = frame["inference_id"].astype(object) if "inference_id" in frame else pd.Series(None, index=frame.index)
    ids = ids.where(ids.notna() & (ids.astype(str).str.strip() != ""), None)
    out["inference_id"] = ids.astype(object)
    out["label_date"] = frame["label_date"].astype(str) if "label_date" in frame else _label_date(path)
    return out


def _churned(values: pd.Series, path: Path) -> pd.Series:
    if values.dtype.kind == "b":
        return values.astype(bool)
    text = values.astype(str).str.strip().str.lower()
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise JobError(f"{path}: row {i}: churned {values.iloc[i]!r} is not a boolean (true/false, 1/0, yes/no)")
    return text.isin(_TRUE)


def _label_date(path: Path) -> str | None:
    for part in reversed(path.parts):
        if part.startswith("label_date="):
            return part.split("=", 1)[1]
    return None


def join_labels(captures: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """(joined rows with `churned` and `probability`, counts) of labels matched to captured scorings."""
    scored = captures.loc[captures[INFERENCE_ID].notna(), [INFERENCE_ID, INFERENCE_TIME, PROBABILITY]]
    scored = scored.sort_values(INFERENCE_TIME, kind="mergesort").drop_duplicates(INFERENCE_ID, keep="last")
    key = scored[INFERENCE_ID].astype(str).str.rsplit(":", n=1, expand=True)
    if key.shape[1] == 2:
        scored = scored.assign(
            subscriber_id=key[0], scoring_date=pd.to_datetime(key[1], errors="coerce", format="%Y-%m-%d")
        )
    else:
        scored = scored.assign(subscriber_id=pd.Series(dtype=object), scoring_date=pd.Series(dtype="datetime64[ns]"))
    exact_labels = labels[labels["inference_id"].notna()]
    exact = exact_labels.merge(
        scored, left_on="inference_id", right_on=INFERENCE_ID, how="inner", suffixes=("", "_capture")
    )
    by_subscriber = labels[labels["inference_id"].isna()].reset_index(names="_label_row")
    subscriber_parts = by_subscriber["subscriber_id"].map(inference_ids.subscriber_part)
    by_subscriber = by_subscriber.assign(subscriber_id=subscriber_parts)
    candidates = by_subscriber.merge(scored.dropna(subset=["scoring_date"]), on="subscriber_id", how="inner")
    candidates = candidates[candidates["scoring_date"] <= candidates["observed_at"]]
    latest = candidates.sort_values("scoring_date", kind="mergesort").drop_duplicates("_label_row", keep="last")
    columns = ["churned", PROBABILITY, INFERENCE_ID]
    joined = pd.concat([exact[columns], latest[columns]], ignore_index=True)
    counts = {
        "labels": len(labels),
        "joined": len(joined),
        "unjoined_labels": len(labels) - len(joined),
        "captured_with_inference_id": len(scored),
        "captured_without_label": len(scored) - int(scored[INFERENCE_ID].isin(joined[INFERENCE_ID]).sum()),
    }
    return joined.rename(columns={PROBABILITY: "probability"}), counts


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = CALIBRATION_BINS) -> float:
    index = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    sum_p = np.bincount(index, weights=p, minlength=bins)
    sum_y = np.bincount(index, weights=np.asarray(y, dtype=np.float64), minlength=bins)
    return float(np.sum(np.abs(sum_p - sum_y)) / count.sum()) if count.sum() else float("nan")


def quality_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """auc, top_decile_lift, calibration_error, rows and churn rate of labelled scorings; a metric that is
    undefined on these labels (auc and lift when every label is the same) is None."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    metrics = {
        "auc": roc_auc(y, p),
        "top_decile_lift": top_decile(y, p)["top_decile_lift"],
        "calibration_error": expected_calibration_error(y, p),
        "churn_rate": float(y.mean()) if y.size else float("nan"),
    }
    return {**{k: (v if np.isfinite(v) else None) for k, v in metrics.items()}, "rows": int(y.size)}
