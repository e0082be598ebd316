"""Failures of ``process`` as one line for the user; the whole story (tracebacks, Dagster's and Spark's logs) in a file.

A failed step surfaces from ``dg.materialize`` as the user's own exception, or as Dagster's
wrapper of it; what went wrong is at the bottom of the chain (``__cause__``, ``__context__``,
``user_exception``), and libraries word the same fault differently (botocore, s3fs, pyarrow,
delta-rs, Spark's JVM). ``explain`` reads the whole chain, types, errnos and texts alike, and
names the thing at fault and what to do about it.
"""

import errno
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from billing_assets.settings import Settings

#: Where ``process`` logs go, under ``DAGSTER_HOME``; the newest ``KEEP_LOGS`` are kept.
LOG_FOLDER = "logs"
KEEP_LOGS = 100
#: Exit codes of ``process`` (besides 0): a failure, a request it refuses, and interruption by SIGINT or SIGTERM.
EXIT_FAILED, EXIT_BAD_REQUEST = 1, 2
EXIT_BY_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: Environment variables whose values are never written to the terminal or the log.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it: causes, contexts, and the user exception a Dagster error wraps."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is known for known in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "user_exception", None)]
    return seen


def _text(exc: BaseException) -> str:
    """The exception's own words, with a Java exception's too (py4j keeps them apart from ``str``)."""
    words = str(exc)
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            words += "\n" + str(java.toString())
        except Exception:  # the JVM may be gone already (a full disk, a kill); its text is then in the log
            pass
    return words


def _errno(exc: BaseException) -> int | None:
    return exc.errno if isinstance(exc, OSError) else None


_NO_SPACE = re.compile(r"No space left on device|ENOSPC|os error 28\b|disk quota exceeded", re.IGNORECASE)
_UNREACHABLE = re.compile(
    r"Connection refused|Could not connect to the endpoint URL|ECONNREFUSED|tcp connect error|error sending request"
    r"|Failed to connect|Name or service not known|Connection reset|Connect timeout|os error 111\b",
    re.IGNORECASE,
)
_NO_BUCKET = re.compile(r"NoSuchBucket|The specified bucket does not exist|Bucket '?([\w.-]+)'? does not exist")
#: How S3 refuses credentials, most specific first (a HEAD request's refusal has no body: just 403 Forbidden).
_CREDENTIALS = [
    re.compile(pattern)
    for pattern in (
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AccessDenied",
        "Forbidden",
        r"\b403\b",
    )
]
_NOT_A_DATABASE = re.compile(r"file is not a database|not a readable SQLite database")


def _bucket(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[0]


def _on_s3(settings: Settings) -> list[str]:
    """The landing zone and warehouse URIs that are on S3."""
    return [uri for uri in (settings.landing_uri, settings.warehouse_uri) if uri.startswith("s3://")]


def _named_bucket(settings: Settings, words: str) -> str:
    """The S3 location the text is about, else every S3 location ``process`` uses."""
    named = [uri for uri in _on_s3(settings) if _bucket(uri) in words]
    return " or ".join(named or _on_s3(settings) or ["the S3 store"])


def _path_of(exceptions: list[BaseException]) -> str | None:
    return next((str(e.filename) for e in exceptions if isinstance(e, OSError) and e.filename), None)


def explain(exc: BaseException, settings: Settings) -> str:
    """One line: what failed, naming the table, bucket, file or database, and what to do."""
    from billing_assets.process import ProcessError
    from billing_assets.source.sqlite import SourceError
    from billing_assets.tables.delta_io import TableSchemaMismatch
    from billing_assets.tables.log_check import DamagedTableLog

    exceptions = chain(exc)
    words = "\n".join(_text(e) for e in exceptions)
    endpoint = settings.s3_endpoint_url or "the default AWS endpoint"
    # Ours first: they already speak to the user.
    for known in exceptions:
        if isinstance(known, (DamagedTableLog, TableSchemaMismatch, ProcessError)):
            return _one_line(str(known))
    if any(_errno(e) == errno.ENOSPC for e in exceptions) or _NO_SPACE.search(words):
        home = os.environ.get("DAGSTER_HOME", "")
        where = _path_of(exceptions) or f"the warehouse {settings.warehouse_uri} or {home}"
        return f"No space left on device (the one holding {where}): free space there, then run the same command again"
    if any(_errno(e) == errno.ECONNREFUSED for e in exceptions) or _UNREACHABLE.search(words):
        return (
            f"cannot reach the S3 endpoint {endpoint} (connection refused or no answer): check that the server is up "
            "and BILLING_S3_ENDPOINT_URL, then run the same command again"
        )
    if _NO_BUCKET.search(words):
        return (
            f"the bucket of {_named_bucket(settings, words)} does not exist on {endpoint}: create it, or correct "
            "BILLING_LANDING_URI / BILLING_WAREHOUSE_URI"
        )
    if found := next(filter(None, (pattern.search(words) for pattern in _CREDENTIALS)), None):
        return (
            f"S3 at {endpoint} refused the credentials for {_named_bucket(settings, words)} ({found.group(0)}): "
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    for known in exceptions:
        if isinstance(known, SourceError) or _NOT_A_DATABASE.search(_text(known)):
            return _one_line(
                f"the source database {settings.source_db} cannot be read ({_one_line(str(known))}): "
                "fix or replace the file (BILLING_SOURCE_DB), then run the same command again"
            )
    root = exceptions[-1] if len(exceptions) > 1 else exc
    return _one_line(f"{type(root).__name__}: {_text(root).strip() or 'no message'}") + " (unexpected; see the log)"


def _one_line(text: str, limit: int = 300) -> str:
    """The first line of ``text``, at most ``limit`` characters."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def redact(text: str) -> str:
    """``text`` without the values of ``SECRET_VARIABLES``."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, f"<{name}>")
    return text


class _Redacting:
    """A text stream that writes to ``target`` without secrets (Dagster's console log, warnings)."""

    def __init__(self, target: TextIO) -> None:
        self.target = target

    def write(self, text: str) -> int:
        self.target.write(redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.target.fileno()


@dataclass
class ProcessLog:
    """The log file of one ``process``, and the terminal its progress and error lines go to."""

    path: Path
    terminal: TextIO
    file: TextIO
    #: Read end of the signal wake-up pipe: Python writes the number of every signal it handles there.
    wakeup: int = -1
    signals: list[int] = field(default_factory=list)

    def echo(self, line: str) -> None:
        """A progress line: on the terminal and in the log; or the stop, when a signal arrived and was swallowed.

        Dagster defers a SIGTERM or SIGINT that arrives in some stretches of a run (its start,
        between steps) and may drop it when the run ends; the next progress line acts on it.
        """
        if self.received() is not None:
            raise KeyboardInterrupt
        print(line, file=self.terminal, flush=True)
        print(line, file=self.file, flush=True)

    def fail(self, exc: BaseException, message: str) -> None:
        """The traceback into the log, and one ``error:`` line naming the log on the terminal."""
        self.file.write(redact("".join(traceback.format_exception(exc))))
        self.error(message)

    def error(self, message: str) -> None:
        """The one ``error:`` line, on the terminal and in the log."""
        line = redact(f"error: {message}; details in {self.path}")
        print(line, file=self.file, flush=True)
        print(line, file=self.terminal, flush=True)

    def received(self) -> int | None:
        """The signal that interrupted the run (SIGTERM before SIGINT), if one arrived."""
        try:
            self.signals += list(os.read(self.wakeup, 64))
        except (BlockingIOError, OSError):
            pass
        return next((number for number in (signal.SIGTERM, signal.SIGINT) if number in self.signals), None)


def log_path(home: str, now: Callable[[], float] = time.time) -> Path:
    """A new log file's path under ``home``/logs, named by UTC time and process id."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now()))
    return Path(home).resolve() / LOG_FOLDER / f"process-{stamp}-{os.getpid()}.log"


def _prune(folder: Path) -> None:
    logs = sorted(folder.glob("process-*.log"), key=lambda path: path.stat().st_mtime)
    for old in logs[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)


@contextmanager
def process_log(home: str) -> Iterator[ProcessLog]:
    """Send everything written to stderr (Dagster's console log, Spark's JVM, warnings) to a log file.

    Descriptor 2 itself is pointed at the file, so the Spark JVM that ``process`` starts inherits
    it; the terminal keeps only what ``ProcessLog.echo`` and ``ProcessLog.error`` write. Which
    signals arrive is noted (Dagster turns SIGTERM into the same interruption as SIGINT).
    """
    path = log_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    _prune(path.parent)
    file = open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115 closed below
    original = sys.stderr
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        is_fd2 = original.fileno() == 2
    except (AttributeError, OSError, ValueError):
        is_fd2 = False  # a test's captured stream: it stays the terminal
    terminal = os.fdopen(os.dup(saved), "w", buffering=1) if is_fd2 else original
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    log = ProcessLog(path, terminal, file, wake_read)
    # Signal handlers belong to the main thread; elsewhere (a caller's thread) an interruption is not told apart.
    main = threading.current_thread() is threading.main_thread()
    previous_wakeup = signal.set_wakeup_fd(wake_write) if main else -1
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    os.dup2(file.fileno(), 2)
    sys.stderr = _Redacting(file)
    try:
        yield log
    finally:
        if main:
            signal.set_wakeup_fd(previous_wakeup)
            signal.signal(signal.SIGTERM, previous_term)
        for fd in (wake_read, wake_write):
            os.close(fd)
        sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)
        if terminal is not original:
            terminal.close()
        file.close()
