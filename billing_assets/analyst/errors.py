"""The ways a ``sql`` command ends early, each with its exit code and a one-line message."""


class QueryError(Exception):
    """The query failed; the message is one line an analyst can act on (exit 1)."""

    exit_code = 1


class Refused(QueryError):
    """The statement, or what it tried to reach, is not allowed: this command only reads (exit 2)."""

    exit_code = 2


class Stopped(QueryError):
    """The query was stopped by Ctrl-C (exit 130, as a shell reports SIGINT)."""

    exit_code = 130


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (DuckDB's carry a hint and a caret on more lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
