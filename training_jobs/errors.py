"""The errors a job raises on purpose; its runner turns each into a one-line message and an exit status."""


class JobError(RuntimeError):
    """A job cannot run with the given inputs; the message says what and where (exit 2)."""


class CheckFailed(JobError):
    """The job ran but a check on its result failed, e.g. traced vs eager outputs (exit 1)."""
