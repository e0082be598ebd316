"""The ``sql`` command: judge the statement, open the sandbox, run within the limits, print or write."""

import sys

import duckdb
from deltalake.exceptions import DeltaError

from billing_assets.analyst.errors import QueryError, Stopped, one_line
from billing_assets.analyst.limits import run_bounded
from billing_assets.analyst.output import BATCH_ROWS, check_out, print_result, write_result
from billing_assets.analyst.sandbox import Limits, discover_tables, open_sandbox
from billing_assets.analyst.statements import check
from billing_assets.resources import resolved_warehouse


def sql_command(
    sql: str,
    warehouse: str,
    out: str | None,
    *,
    landing: str,
    endpoint: str | None = None,
    limits: Limits | None = None,
    force: bool = False,
) -> int:
    """Run one read-only query for the command line: print the result or write ``out``; the exit code.

    0 on success, 1 when the query fails or hits a limit, 2 when it is refused, 130 on Ctrl-C;
    every failure is one line on stderr. ``endpoint`` is an S3-compatible store's (None: AWS).
    """
    limits = limits or Limits()
    try:
        target = None if out is None else check_out(out, {"warehouse": warehouse, "landing zone": landing}, force)
        store = resolved_warehouse(warehouse, endpoint)
        if not discover_tables(store):
            raise QueryError(f"no Delta tables under {warehouse!r} (set --warehouse or BILLING_WAREHOUSE_URI)")
        con, tables = open_sandbox(store, sql, limits)
        try:
            check(con, sql, tables)

            def work() -> str | int:
                reader = con.sql(sql).to_arrow_reader(BATCH_ROWS)
                return print_result(reader) if target is None else write_result(reader, target, force)

            result = run_bounded(con, work, limits.timeout)
        finally:
            try:
                con.close()
            except duckdb.ResourceInUseException:
                # An interrupted query's result stream can still hold the connection. The sandbox
                # lives in memory and the command ends here: nothing is left to close cleanly.
                pass
    except (KeyboardInterrupt, duckdb.InterruptException):
        # Ctrl-C before or after the query itself (opening the tables, judging it, printing).
        exc = Stopped("stopped by Ctrl-C")
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (DeltaError, OSError) as exc:
        # A table that cannot be opened or listed: a damaged log, an unreachable store.
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 1
    if target is None:
        print(result)
    else:
        print(f"wrote {result} rows to {out}")
    return 0
