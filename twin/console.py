"""What the twin prints: one line per step while it runs, a results table at the end (rich)."""

from __future__ import annotations

import shutil
from typing import Any


class Console:
    def __init__(self, quiet: bool):
        from rich.console import Console as RichConsole

        width = max(120, shutil.get_terminal_size().columns)
        self.console = RichConsole(stderr=False, quiet=quiet, width=width)

    def status(self, message: str) -> Any:
        return self.console.status(message)

    def step(self, name: str, seconds: float, detail: str) -> None:
        self.console.print(f"[green]✔[/green] [bold]{name:<10}[/bold] {seconds:6.2f}s  {detail}")

    def print(self, *args: Any) -> None:
        self.console.print(*args)


def print_summary(con: Console, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"Twin summary: {summary['schema']['name']} (champion: {summary['champion']})")
    for col in ("model", "val ROC-AUC", "test ROC-AUC", "PR-AUC", "F1", "Brier", "top-10% lift", "threshold"):
        table.add_column(col, justify="right")
    for n, m in summary["models"].items():
        t = m["test"]
        table.add_row(n + (" *" if n == summary["champion"] else ""), f"{m['validation_roc_auc']:.4f}",
                      f"{t['roc_auc']:.4f}", f"{t['pr_auc']:.4f}", f"{t['f1']:.4f}",
                      f"{t['brier_score']:.4f}",
                      f"{t['top_decile_lift']:.2f}", f"{m['decision_threshold']:.3f}")
    con.print(table)
    g = summary["gate"]
    con.print(("[green]GATE PASSED[/green] " if g["passed"] else "[red]GATE FAILED[/red] ") + g["message"])
    con.print(f"total {summary['timings_s']['total']:.1f}s; summary: {summary['artefacts']['summary']}")
    con.print(f"MLflow: {summary['artefacts']['mlflow_ui']}")
