"""What the twin prints: one line per step while it runs, a results table at the end (rich).

The console writes to its own copy of standard output, taken when it is created, so a step's
captured output (twin.step_output) never swallows the step lines. Text that comes from data or
paths is escaped: rich would otherwise read `[spark]` as markup and drop it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from typing import IO, Any

from rich.markup import escape

from twin import numbers as fmt


class Console:
    def __init__(self, quiet: bool, file: IO[str] | None = None):
        from rich.console import Console as RichConsole

        self._own: IO[str] | None = None
        if file is None and not quiet:
            file = self._own = _own_stdout()
        width = max(120, shutil.get_terminal_size().columns)
        self.console = RichConsole(file=file, quiet=quiet, width=width, highlight=False, soft_wrap=True)

    def status(self, message: str) -> Any:
        return self.console.status(escape(message))

    def step(self, name: str, seconds: float, detail: str) -> None:
        self.console.print(f"[green]✔[/green] [bold]{escape(name):<25}[/bold] {fmt.seconds(seconds):>7}  "
                           f"{escape(detail)}")

    def failed(self, name: str, seconds: float, reason: str) -> None:
        self.console.print(f"[red]✘[/red] [bold]{escape(name):<25}[/bold] {fmt.seconds(seconds):>7}  "
                           f"{escape(reason)}")

    def text(self, message: str, style: str = "") -> None:
        """Plain text (escaped), optionally in one rich style."""
        self.console.print(escape(message), style=style or None)

    def print(self, *args: Any) -> None:
        self.console.print(*args)

    def close(self) -> None:
        if self._own is not None:
            with contextlib.suppress(OSError):
                self._own.close()
            self._own = None


def _own_stdout() -> IO[str] | None:
    """A duplicate of the standard output descriptor, or None (rich then uses sys.stdout)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # e.g. a test's in-memory capture: nothing redirects it at the descriptor level
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding=sys.stdout.encoding or "utf-8",
                     errors="replace")


def print_summary(con: Console, summary: dict[str, Any], results: str) -> None:
    from rich.table import Table

    table = Table(title=escape(f"{summary['schema']['name']}: test split, champion {summary['champion']}"))
    table.add_column("model", no_wrap=True)
    for col in ("val. ROC-AUC", "ROC-AUC", "PR-AUC", "F1", "Brier", "top-10% lift", "threshold"):
        table.add_column(col, justify="right", no_wrap=True)
    for n, m in summary["models"].items():
        t = m["test"]
        table.add_row(escape(n + (" (champion)" if n == summary["champion"] else "")),
                      fmt.score(m["validation_roc_auc"]), fmt.score(t["roc_auc"]), fmt.score(t["pr_auc"]),
                      fmt.score(t["f1"]), fmt.score(t["brier_score"]), fmt.times(t["top_decile_lift"]),
                      fmt.score(m["decision_threshold"]))
    con.print(table)
    g = summary["gate"]
    con.print(("[green]Quality gate passed:[/green] " if g["passed"] else "[red]Quality gate failed:[/red] ")
              + escape(g["message"]))
    _print_loop(con, summary.get("loop", {}))
    con.text(f"Results: {results}  (summary.json, steps.json, logs/ beside it); "
             f"took {fmt.seconds(summary['timings_s']['total'])}")
    con.text(f"MLflow: {summary['artefacts']['mlflow_ui']}")


def _print_loop(con: Console, loop: dict[str, Any]) -> None:
    """Drift per feature, the retrain decision and champion against challenger (twin.monitor_loop)."""
    from rich.table import Table

    if not loop or "skipped" in loop:
        if loop:
            con.text(f"Loop not run: {loop['skipped']}")
        return
    w1, w2 = loop["weeks"]["1"]["drift"], loop["weeks"]["2"]["drift"]
    table = Table(title=escape(f"Drift against the training baseline (expected in week 2: "
                               f"{', '.join(loop['expected_drift'])})"))
    for col in ("feature", "distance wk 1", "distance wk 2", "threshold", "PSI wk 2", "week 2"):
        table.add_column(col, justify="left" if col == "feature" else "right", no_wrap=True)
    for name, f in w2["features"].items():
        before = w1["features"].get(name, {}).get("distance")
        table.add_row(escape(name), _num(before), _num(f["distance"]), _num(f["threshold"]), _num(f["psi"]),
                      "[red]drift[/red]" if f["drifted"] else "")
    con.print(table)
    decision = loop["retrain_decision"]
    con.text(f"Retrain decision (lambdas/start_training): {decision['reason']}", style="bold")
    for alarm in decision["alarms"]:
        con.text(f"  {alarm['alarm']}: {alarm['outcome']} ({alarm['reason']})")
    retrain = loop["retrain"]
    if "skipped" in retrain:
        con.text(f"No retrain: {retrain['skipped']}")
        return
    ch, cp = retrain["challenger"], retrain["champion"]
    con.text(f"On week 2's labelled test half ({fmt.count(retrain['window']['test'])} subscribers): challenger "
             f"xgboost ROC-AUC {fmt.score(ch['roc_auc'])}, lift {fmt.times(ch['top_decile_lift'])}; champion "
             f"{cp['model']} ROC-AUC {fmt.score(cp['roc_auc'])}, lift {fmt.times(cp['top_decile_lift'])}")
    d = retrain["decision"]
    colour = "green" if d["registers"] else "yellow"
    con.print(f"[{colour}]{'Challenger registers' if d['registers'] else 'Champion stays'}:[/{colour}] "
              + escape(d["reason"]))


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
