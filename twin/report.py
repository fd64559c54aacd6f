"""report.html: a twin run as a page of the whitepaper, self-contained (plots embedded).

First the business result (what contacting the riskiest decile buys, what the decision threshold
means, the gate's verdict), then the evidence in numbered tables and figures whose captions are
sentences: models, plots, data quality, deployment checks, MLflow records, timings.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any

from twin import numbers as fmt

MODEL_NAMES = {"xgboost": "XGBoost", "pytorch": "PyTorch"}
STYLE = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2733;max-width:1000px;
margin:2rem auto;padding:0 1.2rem}
h1{font-size:1.7rem;margin:0 0 .2rem}h2{font-size:1.25rem;margin:2.2rem 0 .6rem;border-bottom:1px solid #d8dee6}
.byline{color:#5a6b7d;margin:0 0 1.4rem}
.lead{font-size:1.3rem;line-height:1.45;margin:0 0 1rem}
.verdict{padding:.7rem 1rem;border-left:5px solid;margin:0 0 1rem}
.pass{border-color:#1a7f37;background:#eef8f0}.fail{border-color:#b42318;background:#fdf0ef}
.note{margin:0 0 1rem}
table{border-collapse:collapse;margin:.4rem 0 1.4rem;min-width:60%}
caption{caption-side:top;text-align:left;color:#3b4a5a;padding:0 0 .4rem;font-size:.95rem}
th,td{border-bottom:1px solid #e3e8ee;padding:.3rem .6rem;text-align:right}th{white-space:nowrap;font-size:.9rem}
td:first-child{white-space:nowrap}table.text th,table.text td{text-align:left}
th:first-child,td:first-child{text-align:left}th{background:#f4f6f9}
figure{display:inline-block;vertical-align:top;width:47%;margin:.5rem 1% 1rem}
figure img{width:100%}figcaption{font-size:.92rem;color:#3b4a5a}
code{font-size:.9em;background:#f4f6f9;padding:0 .2em}
"""


def write_html(summary: dict[str, Any], plots: dict[str, Path], path: Path) -> Path:
    s = summary
    body = "".join([
        _header(s), _lead(s),
        _section("Models", _models_table(s)),
        _section("Figures", _figures(s, plots)),
        _section("Data and its quality", _data_table(s)),
        _section("Deployment checks", _deployment_table(s)),
        _section("Who to contact", _contact_table(s)) if "to_contact" in s.get("batch_scoring", {}) else "",
        _section("Where this run is recorded", _tracking_table(s)),
        _section("Monitoring and retraining", _loop(s)),
        _section("Time per step", _timings_table(s)),
    ])
    body = _number_tables(body)
    title = f"Churn model report: {s['schema']['name']}"
    path.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
                    f"<style>{STYLE}</style></head><body>{body}</body></html>\n", encoding="utf-8")
    return path


def _number_tables(body: str) -> str:
    """Tables numbered in the order they appear (sections without data leave no gap)."""
    count = iter(range(1, 1000))
    return re.sub("Table §\\.", lambda _: f"Table {next(count)}.", body)


def _e(text: Any) -> str:
    return html.escape(str(text))


def _name(model: str) -> str:
    return MODEL_NAMES.get(model, model)


def _section(title: str, content: str) -> str:
    return f"<h2>{_e(title)}</h2>{content}"


def _header(s: dict[str, Any]) -> str:
    schema, run = s["schema"], s.get("run", {})
    return (f"<h1>Which subscribers are about to churn: {_e(schema['name'])}</h1>"
            f"<p class='byline'>Dataset schema {_e(schema['name'])} v{_e(schema['version'])} (fingerprint "
            f"{_e(schema['fingerprint'])}); local twin run {_e(run.get('id', ''))}, profile {_e(s['profile'])}: "
            "the job scripts the SageMaker pipeline runs, on this machine.</p>")


def _lead(s: dict[str, Any]) -> str:
    champ = s["champion"]
    test = s["models"][champ]["test"]
    lead = (f"<p class='lead'>Contacting the <b>riskiest 10% of subscribers</b>, as ranked by the champion "
            f"model ({_e(_name(champ))}), reaches <b>{fmt.percent(test['top_decile_capture_rate'], 0)} of the "
            f"subscribers who churned</b> in the held-out test set: <b>{fmt.times(test['top_decile_lift'])} "
            "what a random 10% would reach</b>.</p>")
    return lead + _verdict(s) + _threshold_note(s)


def _verdict(s: dict[str, Any]) -> str:
    g, reg = s["gate"], s["registry"]
    test, th = s["models"][s["champion"]]["test"], g["thresholds"]
    outcome = "passed" if g["passed"] else "failed"
    alias = ("the alias <code>champion</code> now points to it" if reg["champion_alias"]
             else "the alias <code>champion</code> was not moved")
    return (f"<p class='verdict {'pass' if g['passed'] else 'fail'}'><b>Quality gate {outcome}.</b> "
            f"The champion's test ROC-AUC is {fmt.score(test['roc_auc'])} (minimum {th['min_roc_auc']}) and its "
            f"top-decile lift {fmt.times(test['top_decile_lift'])} (minimum {th['min_top_decile_lift']}×), "
            f"the thresholds in {_e(g['source'])}. It is registered as {_e(reg['registered_model'])} version "
            f"{reg['version']}, {_e(reg['approval_status'].lower())}; {alias}.</p>")


def _threshold_note(s: dict[str, Any]) -> str:
    champ = s["champion"]
    m = s["models"][champ]
    cm = m["confusion_matrix"]
    tn, fp, fn, tp = cm["0"]["0"], cm["0"]["1"], cm["1"]["0"], cm["1"]["1"]
    n, churners, flagged = tn + fp + fn + tp, fn + tp, fp + tp
    return (f"<p class='note'><b>What the threshold means.</b> The model flags a subscriber as a likely churner "
            f"when its predicted churn probability is at least {fmt.score(m['decision_threshold'])}, the value "
            f"that maximised F1 on the validation split. Of the {fmt.count(n)} test subscribers "
            f"({fmt.count(churners)} churned) it flags {fmt.count(flagged)} ({fmt.percent(flagged / n, 0)}); "
            f"{fmt.count(tp)} of those did churn (precision {fmt.percent(tp / max(flagged, 1), 0)}), "
            f"{fmt.percent(tp / max(churners, 1), 0)} of all churners (recall). A lower threshold flags more "
            "subscribers and reaches more churners, at a lower hit rate per contact.</p>")


def _table(caption: str, header: list[str], rows: list[list[Any]], numeric: bool = True) -> str:
    """A captioned table; `numeric` right-aligns every column but the first, else all read left to right."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    cls = "" if numeric else " class='text'"
    return f"<table{cls}><caption>{_e(caption)}</caption><tr>{head}</tr>{body}</table>"


def _models_table(s: dict[str, Any]) -> str:
    rows = []
    for name, m in s["models"].items():
        t = m["test"]
        rows.append([_name(name) + (" (champion)" if name == s["champion"] else ""),
                     fmt.score(m["validation_roc_auc"]), fmt.score(t["roc_auc"]), fmt.score(t["pr_auc"]),
                     fmt.score(t["f1"]), fmt.score(t["brier_score"]), fmt.times(t["top_decile_lift"]),
                     fmt.percent(t["top_decile_capture_rate"]), fmt.score(m["decision_threshold"])])
    caption = (f"Table §. Both models on the held-out test split ({fmt.count(s['rows']['test'])} subscribers); "
               "only the first column is measured on validation. The champion is the model the model-choice "
               f"rule ships: {s['gate']['selection']}. F1 is measured at each model's own threshold, chosen on "
               "validation; a lower Brier score means better calibrated probabilities.")
    return _table(caption, ["Model", "Val. ROC-AUC", "ROC-AUC", "PR-AUC", "F1", "Brier", "Top-10% lift",
                            "Churners in top 10%", "Threshold"], rows)


def _figures(s: dict[str, Any], plots: dict[str, Path]) -> str:
    captions = {
        "lift": "Lift by score decile on the test split: decile 1 holds the 10% of subscribers with the "
                "highest predicted risk, and a bar at 3 means three times the average churn rate.",
        "roc": "ROC curves on the test split: the closer a curve runs to the top-left corner, the better the "
               "model ranks churners above the others; the dashed diagonal is a random ranking.",
        "calibration": "Calibration on the test split: mean predicted probability against the observed churn "
                       "rate per bin; points on the diagonal mean a predicted 30% churns about 30% of the time.",
    }
    for name in s["models"]:
        captions[f"importance_{name}"] = (
            f"Permutation importance of {_name(name)}: how much test ROC-AUC drops when one raw field's "
            "values are shuffled across subscribers (the 15 largest drops).")
    figures = []
    for number, (key, png) in enumerate(sorted(plots.items(), key=lambda kv: _figure_order(kv[0])), start=1):
        data = base64.b64encode(png.read_bytes()).decode()
        text = captions.get(key, key.replace("_", " ").capitalize() + ".")
        figures.append(f"<figure><img alt='{_e(text)}' src='data:image/png;base64,{data}'/>"
                       f"<figcaption>Figure {number}. {_e(text)}</figcaption></figure>")
    return "".join(figures)


def _figure_order(key: str) -> tuple[int, str]:
    order = ("lift", "roc", "calibration")
    return (order.index(key), key) if key in order else (len(order), key)


def _data_table(s: dict[str, Any]) -> str:
    r, q = s["rows"], s.get("data_quality", {})
    rows: list[list[Any]] = [["Rows in the raw snapshot", fmt.count(r["raw"])],
                             ["Curated (passed every schema rule)", fmt.count(r["curated"])],
                             ["Quarantined, with their reasons", fmt.count(r["quarantined"])]]
    for column, n in sorted(q.get("failures_by_column", {}).items()):
        rows.append([f"Quarantine reason: {column}", fmt.count(n)])
    for column, n in sorted(q.get("null_fills", {}).items()):
        rows.append([f"Blanks in {column} filled by the schema's rule", fmt.count(n)])
    if q.get("dropped_columns"):
        rows.append(["Undeclared columns dropped", ", ".join(q["dropped_columns"])])
    if q.get("usage_source") == "cdr":
        rows.append(["Subscribers with CDR usage in the window", fmt.count(q["usage_subscribers_matched"])])
        rows.append(["CDR records quarantined", fmt.count(q.get("cdr_records_quarantined") or 0)])
    rows += [["Training rows", fmt.count(r["train"])], ["Validation rows", fmt.count(r["validation"])],
             ["Test rows", fmt.count(r["test"])]]
    if "positive_rate" in s:
        rows.append(["Churn rate", fmt.percent(s["positive_rate"])])
    caption = ("Table §. Rows through the data lake and the splits: every raw row is either curated or "
               "quarantined by the data-quality gate, and the curated rows are split, stratified by churn.")
    return _table(caption, ["What", "Count"], rows)


def _deployment_table(s: dict[str, Any]) -> str:
    rows: list[list[Any]] = []
    for name, c in s["compile"].items():
        if c["format"] == "torchscript":
            rows.append([f"{_name(name)} package", f"TorchScript ({c['compiler']}) for batches of {c['batch_size']}; "
                         f"traced vs eager max difference {fmt.difference(c['max_abs_diff_traced_vs_eager'])} "
                         f"(tolerance {c['tolerance']:g})"])
        else:
            rows.append([f"{_name(name)} package", f"model.json as trained (no tracing), xgboost {c.get('xgboost')}"])
    sv = s["serving"]
    labels = ", ".join(f"{fmt.count(v)} {k}" for k, v in sorted(sv["label_counts"].items()))
    rows += [["Served by code/inference.py", f"{fmt.count(sv['rows'])} held-out rows as {sv['content_type']} "
                                             f"on {sv['device']}, {_name(sv['model_kind'])} champion"],
             ["Served vs evaluated probabilities", f"max difference {fmt.difference(sv['max_abs_diff_vs_evaluate'])}"],
             ["Predicted labels", labels], ["Throughput (one request)", fmt.rate(sv["rows_per_s"])]]
    caption = ("Table §. What the packaging and serving steps checked: the archive an endpoint would load "
               "scores the test split exactly as the evaluation did.")
    return _table(caption, ["Check", "Result"], rows, numeric=False)


def _tracking_table(s: dict[str, Any]) -> str:
    reg = s["registry"]
    rows: list[list[Any]] = [["Experiment", reg.get("experiment", "")], ["Run of this pipeline", reg["parent_run_id"]]]
    rows += [[f"{_name(n)} run", run_id] for n, run_id in reg["runs"].items()]
    rows.append(["Registered model version", f"{reg['registered_model']} version {reg['version']} "
                                             f"({reg['approval_status']})"])
    caption = ("Table §. The MLflow records of this run (a local SQLite store); open them with "
               f"{s['artefacts']['mlflow_ui']}.")
    return _table(caption, ["Record", "MLflow id"], rows, numeric=False)


def _timings_table(s: dict[str, Any]) -> str:
    rows = [[k, fmt.seconds(v)] for k, v in s["timings_s"].items() if k != "total"]
    caption = ("Table §. Wall time of each step on this machine, in pipeline order (the report's own time "
               "is recorded in summary.json).")
    return _table(caption, ["Step", "Time"], rows)


def _loop(s: dict[str, Any]) -> str:
    loop = s.get("loop", {})
    if "skipped" in loop:
        return f"<p class='note'>Not run: {_e(loop['skipped'])}.</p>"
    weeks, decision, retrain = loop["weeks"], loop["retrain_decision"], loop["retrain"]
    w1, w2 = weeks["1"], weeks["2"]
    scenarios = "; ".join(f"{sc['name']} ({sc['description']})" for sc in loop["scenarios"])
    flagged = ", ".join(w2["drift"]["drifted_features"]) or "no feature"
    lead = (f"<p class='note'>The shipped model served two weeks of requests through the local endpoint "
            f"<code>{_e(loop['endpoint'])}</code>, one subscriber per request with its InferenceId, captured in "
            f"SageMaker's layout. Week 1 ({_e(w1['traffic']['scoring_date'])}) is the held-out split as it is; "
            f"week 2 ({_e(w2['traffic']['scoring_date'])}) the same subscribers after {_e(scenarios)}. The drift "
            f"job flagged {_e(flagged)} in week 2 (expected: {_e(', '.join(loop['expected_drift']))}) and "
            f"{_e(', '.join(w1['drift']['drifted_features']) or 'nothing')} in week 1.</p>")
    return lead + _drift_table(w1["drift"], w2["drift"]) + _decision(decision) + _retrain(retrain)


def _drift_table(w1: dict[str, Any], w2: dict[str, Any]) -> str:
    rows = []
    for name, f2 in w2["features"].items():
        f1 = w1["features"].get(name, {})
        rows.append([name, _num(f1.get("distance")), _num(f2["distance"]), _num(f2["threshold"]),
                     _num(f1.get("psi")), _num(f2["psi"]), "drift" if f2["drifted"] else ""])
    pred = w2.get("prediction_drift", {})
    if "psi" in pred:
        rows.append(["churn probability (prediction drift)", "", "", "", _num(w1.get("prediction_drift", {})
                                                                             .get("psi")), _num(pred["psi"]), ""])
    caption = ("Table §. Drift per feature, each week's captures against the training baseline: Model Monitor's "
               "distance (the robust L-infinity distance of the distributions, compared with the threshold) and "
               "the population stability index (PSI; above 0.2 is usually read as a shift).")
    return _table(caption, ["Feature", "Distance wk 1", "Distance wk 2", "Threshold", "PSI wk 1", "PSI wk 2",
                            "Week 2"], rows)


def _num(value: Any) -> str:
    return "" if value is None else f"{value:.3f}"


def _decision(d: dict[str, Any]) -> str:
    rows = [[a["alarm"], a["outcome"], a["reason"]] for a in d["alarms"]]
    caption = (f"Table §. The retrain decision, taken by lambdas/start_training on one CloudWatch alarm event per "
               f"drifted feature (cooldown {d['settings']['cooldown_hours']} h, daily cap "
               f"{d['settings']['daily_cap']}): {d['reason']}.")
    return _table(caption, ["Alarm", "Outcome", "Reason"], rows, numeric=False)


def _retrain(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"<p class='note'>No retrain: {_e(r['skipped'])}.</p>"
    d, w = r["decision"], r["window"]
    cls = "pass" if d["registers"] else "fail"
    verdict = (f"<p class='verdict {cls}'><b>{'Challenger registers' if d['registers'] else 'Champion stays'}.</b> "
               f"{_e(d['reason'])}.</p>")
    rows = [[f"Challenger ({_name('xgboost')}, retrained)", *_metric_cells(r["challenger"])],
            [f"Champion ({_name(r['champion']['model'])})", *_metric_cells(r["champion"])]]
    if r["champion"]["model"] != "pytorch":
        rows.append([f"{_name('pytorch')} candidate, re-scored", *_metric_cells(r["pytorch_rescored"])])
    caption = (f"Table §. Champion and challenger on the same test split: half of the labelled week 2 "
               f"({fmt.count(w['test'])} subscribers, stratified); the challenger trained on the original "
               f"training split plus the other half ({fmt.count(w['window_train'])}).")
    return verdict + _table(caption, ["Model", "ROC-AUC", "PR-AUC", "Top-10% lift", "Brier"], rows)


def _metric_cells(m: dict[str, Any]) -> list[str]:
    return [fmt.score(m["roc_auc"]), fmt.score(m["pr_auc"]), fmt.times(m["top_decile_lift"]),
            fmt.score(m["brier_score"])]


def _contact_table(s: dict[str, Any]) -> str:
    b = s["batch_scoring"]
    c = b["to_contact"]
    rows = [[str(r["rank"]), r["subscriber_id"][:16] + "…", fmt.score(r["probability"])] for r in c["first"]]
    caption = (f"Table §. The retention team's list: the whole base ({fmt.count(c['of'])} subscribers) scored by "
               f"the shipped package as the batch-scoring transform does; the top 10% ({fmt.count(c['subscribers'])} "
               f"subscribers, churn probability {fmt.score(c['min_probability'])} or more, mean "
               f"{fmt.score(c['mean_probability'])}) are in {b['scores']}, the first {len(rows)} shown here "
               "(pseudonymised ids, cut).")
    return _table(caption, ["Rank", "Subscriber", "Churn probability"], rows)
