"""Running a query within its time limit, and stopping it on Ctrl-C.

DuckDB runs the query (and the streaming of its result) in a worker thread while the main
thread waits: a wait can be interrupted by SIGINT, a call into DuckDB cannot. On the time
limit or Ctrl-C the main thread calls ``interrupt()``, which DuckDB honours between vectors.
"""

import threading
from collections.abc import Callable
from typing import TypeVar

import duckdb

from billing_assets.analyst.errors import QueryError, Refused, Stopped, one_line

T = TypeVar("T")
#: How often an interrupted query is asked again to stop (a call may start just after a request).
_RETRY_SECONDS = 0.2


def _stop(con: duckdb.DuckDBPyConnection, worker: threading.Thread) -> None:
    """Interrupt the query until the worker has finished."""
    while worker.is_alive():
        con.interrupt()
        worker.join(_RETRY_SECONDS)


def run_bounded(con: duckdb.DuckDBPyConnection, work: Callable[[], T], timeout: float) -> T:
    """``work()`` (which runs a query on ``con``), stopped after ``timeout`` seconds or on Ctrl-C."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread as it is
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="billing-assets-sql", daemon=True)
    worker.start()
    try:
        worker.join(timeout)
    except KeyboardInterrupt:
        _stop(con, worker)
        raise Stopped("stopped by Ctrl-C") from None
    if worker.is_alive():
        _stop(con, worker)
        raise QueryError(f"stopped at the time limit of {timeout:g} s (--timeout SECONDS raises it)")
    error = outcome.get("error")
    if error is None:
        return outcome["value"]  # type: ignore[return-value]
    if isinstance(error, QueryError):
        raise error
    if isinstance(error, duckdb.PermissionException):
        raise Refused(f"billing-assets sql reads only the warehouse's tables; refused: {one_line(error)}") from None
    if isinstance(error, duckdb.OutOfMemoryException):
        raise QueryError(f"{one_line(error)} (--memory-limit raises the limit)") from None
    if isinstance(error, MemoryError):
        raise QueryError("out of memory while handing the result over (--out FILE streams it to a file)") from None
    if isinstance(error, duckdb.Error):
        raise QueryError(one_line(error)) from None
    raise error
