"""The entry-point contract every job shares: 0 ok, 1 a check on the result failed, 2 bad input."""

from __future__ import annotations

import argparse

import pytest

from dataset.schema import SchemaError
from serving.transform import TransformError
from training_jobs import compile_model, evaluate, preprocess, train_pytorch, train_xgboost
from training_jobs.errors import CheckFailed, JobError
from training_jobs.runner import run_job


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="job")
    ap.add_argument("--n", type=int, default=1)
    return ap.parse_args(argv)


def raising(exc: BaseException):
    def body(args: argparse.Namespace) -> str:
        raise exc

    return body


def test_success_prints_one_summary_line(capsys):
    assert run_job("job", parse, lambda a: f"did {a.n}", ["--n", "3"]) == 0
    out = capsys.readouterr()
    assert out.out == "job: did 3\n" and out.err == ""


@pytest.mark.parametrize(
    "exc, code",
    [
        (CheckFailed("traced differs"), 1),
        (JobError("data.csv: row 3: bad"), 2),
        (TransformError("column 'x', row 0: bad"), 2),
        (SchemaError("schema.yaml: columns: bad"), 2),
    ],
)
def test_known_errors_are_one_line_and_an_exit_status(capsys, exc, code):
    assert run_job("job", parse, raising(exc), []) == code
    out = capsys.readouterr()
    assert out.err == f"job: error: {exc}\n" and out.out == ""


def test_a_multi_line_message_stays_on_one_line(capsys):
    assert run_job("job", parse, raising(JobError("first\n  second\n")), []) == 2
    assert capsys.readouterr().err == "job: error: first second\n"


def test_bad_arguments_exit_2_from_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        run_job("job", parse, lambda a: "never", ["--n", "many"])
    assert exc.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run_job("job", parse, raising(ZeroDivisionError("bug")), [])


@pytest.mark.parametrize(
    "job, prog, argv",
    [
        (preprocess, "preprocess", ["--input-data", "{tmp}/none.csv", "--schema", "{tmp}/none.yaml"]),
        (train_xgboost, "train_xgboost", ["--train", "{tmp}/none", "--validation", "{tmp}", "--transformer", "{tmp}"]),
        (train_pytorch, "train_pytorch", ["--train", "{tmp}/none", "--validation", "{tmp}", "--transformer", "{tmp}"]),
        (evaluate, "evaluate", ["--model-dir", "{tmp}", "--test-data", "{tmp}", "--output-dir", "{tmp}/o"]),
        (compile_model, "compile", ["--model-dir", "{tmp}", "--output-dir", "{tmp}/o"]),
    ],
)
def test_every_job_main_uses_the_contract(tmp_path, capsys, job, prog, argv):
    assert job.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{prog}: error: ") and err.count("\n") == 1 and "Traceback" not in err
