"""``billing-assets statement``: print, write or verify one run of a month's statement (read-only, no Spark).

Exit codes: 0 printed, written or verified; 1 a run that does not verify, or no such run;
2 a request refused (a month that is not ``YYYY-MM``, an ``--out`` it may not write, a run
whose recorded input versions can no longer be read).
"""

import re
import sys
from datetime import UTC, datetime, timedelta

import polars as pl
from deltalake.exceptions import DeltaError, TableNotFoundError

from billing_assets.analyst.errors import QueryError, Refused
from billing_assets.analyst.output import check_out, print_result, write_result
from billing_assets.domain.keys import MONTH_KEY_PATTERN
from billing_assets.resources import resolved_warehouse
from billing_assets.settings import Settings
from billing_assets.steps.statements import statement, verify_run
from billing_assets.tables.log_check import log_exists
from billing_assets.tables.schemas import STATEMENTS
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.statements import INPUT_TABLES


def statement_command(
    month: str,
    run: int | None,
    out: str | None,
    verify: bool,
    settings: Settings,
    *,
    force: bool = False,
) -> int:
    """Print a run's lines (latest by default), write them to ``out``, or ``verify`` them; the exit code."""
    try:
        if not re.fullmatch(MONTH_KEY_PATTERN, month):
            raise Refused(f"--month must be YYYY-MM, got {month!r}")
        if run is not None and run < 1:
            raise Refused(f"--run must be 1 or more, got {run}")
        target = None
        if out is not None:
            zones = {"warehouse": settings.warehouse_uri, "landing zone": settings.landing_uri}
            target = check_out(out, zones, force)
        warehouse = resolved_warehouse(settings.warehouse_uri, settings.s3_endpoint_url)
        lines = _lines(warehouse, month, run)
        if verify:
            return _verify(warehouse, month, lines, settings)
        reader = lines.to_arrow().cast(STATEMENTS.schema).to_reader()
        if target is None:
            print(print_result(reader))
        else:
            written = write_result(reader, target, force)
            print(f"wrote {written} line(s) of {month} run {lines['run'][0]} to {target}")
        return 0
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


def _lines(warehouse: Warehouse, month: str, run: int | None) -> pl.DataFrame:
    """The run's stored lines; ``QueryError`` when there are none (a read-only command creates no table)."""
    if not log_exists(warehouse.uri(STATEMENTS), warehouse.storage):
        raise QueryError(f"no statements under {warehouse.root!r} yet (set BILLING_WAREHOUSE_URI)")
    lines = statement(warehouse, month, run)
    if lines.is_empty():
        which = "no statement" if run is None else f"no statement run {run}"
        raise QueryError(f"{month} has {which}")
    return lines


def _verify(warehouse: Warehouse, month: str, lines: pl.DataFrame, settings: Settings) -> int:
    """Recompute the run from the versions it recorded: ``verified`` (0) or each differing line (1)."""
    first = lines.row(0, named=True)
    run = first["run"]
    read = ", ".join(f"{table}@{first[f'{table}_version']}" for table in INPUT_TABLES)
    try:
        problems = verify_run(warehouse, month, settings.timezone, run)
    except (TableNotFoundError, DeltaError, FileNotFoundError, OSError) as exc:
        age = datetime.now(UTC) - first["created_at"]
        kept = timedelta(days=settings.statement_retention_days)
        why = "older than the retention" if age > kept else "within the retention: the inputs were cleaned up early"
        raise Refused(
            f"{month} run {run} cannot be recomputed: the versions it read ({read}) are no longer readable "
            f"({type(exc).__name__}); it is {age.days} days old, {why} of {kept.days} days "
            "(BILLING_STATEMENT_RETENTION_DAYS; docs/settlement.md, 'Verifying a run')"
        ) from None
    if problems:
        for problem in problems:
            print(problem)
        print(f"error: {month} run {run} does not verify: {len(problems)} line(s) differ", file=sys.stderr)
        return 1
    print(f"{month} run {run} ({first['run_kind']}) verified: {lines.height} line(s) recomputed from {read}")
    return 0
