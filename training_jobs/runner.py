"""The entry-point contract every job's `main(argv)` shares (the same as the Glue jobs' `job_main`).

    0  the job succeeded; one summary line "<prog>: <summary>" on stdout
    1  a check on the result failed (CheckFailed, e.g. compile's traced-vs-eager tolerance)
    2  bad input or arguments (JobError, TransformError, SchemaError; argparse usage errors
       already exit 2 from `parse_args`)

Failures print exactly one line, "<prog>: error: <message>", on stderr and never a traceback,
so a SageMaker job's failure reason and CloudWatch log say what and where. Anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from dataset.schema import SchemaError
from serving.transform import TransformError
from training_jobs.errors import CheckFailed, JobError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (a multi-line message would split the log record)."""
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())


def run_job(prog: str, parse_args: Callable[[list[str] | None], argparse.Namespace],
            body: Callable[[argparse.Namespace], str], argv: list[str] | None) -> int:
    """Parse `argv`, run `body(args)` and map the outcome to the exit status above.

    `body` returns the summary printed after "<prog>: " when the job succeeds.
    """
    args = parse_args(argv)
    try:
        summary = body(args)
    except CheckFailed as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_CHECK_FAILED
    except (JobError, TransformError, SchemaError) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"{prog}: {summary}")
    return EXIT_OK
