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
        self.console.print(f"[green]✔[/green] [bold]{escape(name):<16}[/bold] {fmt.seconds(seconds):>7}  "
                           f"{escape(detail)}")

    def failed(self, name: str, seconds: float, reason: str) -> None:
        self.console.print(f"[red]✘[/red] [bold]{escape(name):<16}[/bold] {fmt.seconds(seconds):>7}  "
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
    con.text(f"Results: {results}  (summary.json, steps.json, logs/ beside it); "
             f"took {fmt.seconds(summary['timings_s']['total'])}")
    con.text(f"MLflow: {summary['artefacts']['mlflow_ui']}")
