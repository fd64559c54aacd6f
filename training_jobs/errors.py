"""The one error a job raises for bad input; its runner turns it into a one-line message."""


class JobError(RuntimeError):
    """A job cannot run with the given inputs; the message says what and where."""
