"""What a person sees: the console of a real twin run and its report.html."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from tests.e2e.conftest import TwinRun
from tests.e2e.test_twin import expected_order

NOISE = ("WARN", "INFO", "Setting default log level", "validation:roc_auc=", "Successfully registered",
         "Created version", "Warning", "Traceback")


def test_console_shows_step_lines_and_results_without_noise(passing_twin: TwinRun):
    lines = passing_twin.console.splitlines()
    steps = [ln.split()[1] for ln in lines if ln.startswith("✔ ")]
    summary = json.loads((passing_twin.out / "summary.json").read_text())
    assert steps == [name for name, _, _ in expected_order(summary)]
    assert not [ln for ln in lines if any(n in ln for n in NOISE)]
    assert passing_twin.errors == ""
    assert "Quality gate passed" in passing_twin.console
    assert f"Results: {passing_twin.out}/report.html" in passing_twin.console
    preprocess = next(ln for ln in lines if ln.startswith("✔ preprocess"))
    assert "2,000 rows → train" in preprocess and "{" not in preprocess  # numbers for people, no JSON
    conform = next(ln for ln in lines if ln.startswith("✔ conform"))
    assert conform.endswith("(Spark, the Glue jobs' code)")


def test_step_output_is_kept_in_logs(passing_run):
    logs = passing_run / "logs"
    assert "validation:roc_auc=" in (logs / "train-pytorch.log").read_text()
    assert "registered model" in (logs / "register.log").read_text().lower()


class _Page(HTMLParser):
    """The text a reader sees, block by block, and the figure captions."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.captions: list[str] = []
        self._skip = self._caption = False
        self.first: list[str] = []  # tags in document order

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.first.append(tag + ("." + dict(attrs).get("class", "") if dict(attrs).get("class") else ""))
        self._skip = tag in ("style", "script")
        self._caption = tag in ("figcaption", "caption")
        if self._caption:
            self.captions.append("")

    def handle_endtag(self, tag: str) -> None:
        self._skip = self._caption = False

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)
        if self._caption:
            self.captions[-1] += data


def read_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_report_opens_with_the_business_result(passing_run):
    summary = json.loads((passing_run / "summary.json").read_text())
    page = read_page((passing_run / "report.html").read_text())
    text = " ".join(page.text)
    assert page.first.index("p.lead") < page.first.index("table")  # the result before any table
    champ = summary["models"][summary["champion"]]["test"]
    assert f"{100 * champ['top_decile_capture_rate']:.0f}% of the subscribers who churned" in text
    assert f"{champ['top_decile_lift']:.2f}× what a random 10% would reach" in text
    assert "What the threshold means." in text and "precision" in text and "recall" in text
    assert "Quality gate passed." in text


def test_report_has_no_raw_dicts_and_captions_are_sentences(passing_run):
    page = read_page((passing_run / "report.html").read_text())
    text = " ".join(page.text)
    assert not re.search(r"[{}]|': |\": ", text), "raw JSON in the report"
    assert len(page.captions) >= 14  # 9 tables, 5 figures (ROC, lift, calibration, 2 importances)
    numbers = [int(c.split()[1].rstrip(".")) for c in page.captions if c.startswith("Table")]
    assert numbers == list(range(1, len(numbers) + 1))
    for caption in page.captions:
        assert re.match(r"(Table|Figure) \d+\. [A-Z]", caption) and caption.rstrip().endswith("."), caption
        assert len(caption.split()) >= 8, caption


def test_report_shows_data_quality_counts_and_mlflow_ids(passing_run):
    summary = json.loads((passing_run / "summary.json").read_text())
    text = " ".join(read_page((passing_run / "report.html").read_text()).text)
    assert "Curated (passed every schema rule)" in text and "Quarantined, with their reasons" in text
    assert f"{summary['rows']['curated']:,}" in text
    assert "Subscribers with CDR usage in the window" in text
    registry = summary["registry"]
    for run_id in (registry["parent_run_id"], *registry["runs"].values()):
        assert run_id in text
    assert f"{registry['registered_model']} version {registry['version']}" in text
