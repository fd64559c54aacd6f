"""The twin's console: labels survive rich markup, numbers read as people write them, output is
captured per step (Spark's JVM included), and --help says what every option does and defaults to."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest

from twin import cli
from twin import numbers as fmt
from twin.console import Console
from twin.step_output import captured, last_error_line


def test_labels_with_brackets_survive_markup():
    buf = io.StringIO()
    con = Console(quiet=False, file=buf)
    con.step("conform", 1.25, "7,043 rows [spark (etl.local_run)] [bold]x[/bold]")
    con.text("path build/twin-runs/[2026]/report.html")
    out = buf.getvalue()
    assert "[spark (etl.local_run)] [bold]x[/bold]" in out
    assert "build/twin-runs/[2026]/report.html" in out
    assert "1.2 s" in out


@pytest.mark.parametrize("value, text", [
    (fmt.count(7043), "7,043"), (fmt.percent(0.26537), "26.5%"), (fmt.score(0.853291), "0.853"),
    (fmt.times(2.953), "2.95×"), (fmt.seconds(0.004), "<0.1 s"), (fmt.seconds(2.63), "2.6 s"),
    (fmt.seconds(75.2), "1 min 15 s"), (fmt.rate(62925.4), "62,925 rows/s"), (fmt.difference(0.0), "0"),
    (fmt.difference(3.14e-7), "3.1e-07"),
])
def test_numbers_for_people(value, text):
    assert value == text


def test_a_step_output_goes_to_its_log_child_processes_included(tmp_path, capfd):
    log = tmp_path / "logs" / "conform.log"
    with captured(log):
        print("validation:roc_auc=0.8")
        print("conform: ERROR: bad row", file=sys.stderr)
        # a child process writes to the inherited descriptors, as Spark's JVM does
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('WARN Utils: loopback\\n')"], check=True)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    text = log.read_text()
    assert "validation:roc_auc=0.8" in text and "WARN Utils: loopback" in text
    assert last_error_line(log) == "conform: ERROR: bad row"


def test_a_step_that_prints_nothing_leaves_no_log(tmp_path):
    log = tmp_path / "logs" / "gate.log"
    with captured(log):
        pass
    assert not log.exists()


def test_help_describes_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_args(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # help wraps lines
    parser = argparse.ArgumentParser()
    cli.add_run_arguments(parser)
    options = [a for a in parser._actions if a.option_strings != ["-h", "--help"]]
    assert len(options) >= 12
    for action in options:
        assert action.help and len(action.help.split()) >= 3, action.option_strings
        assert action.option_strings[0] in text
    for default in ("(default: build/twin)", "(default: config/dev.yaml)", "(default: full)", "(default: 42)",
                    "(default: 64)", "(default: 3)", "(default: 2026-01-01)"):
        assert default in text
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "Results:" in text and "Exit status:" in text
