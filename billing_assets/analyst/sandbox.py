"""A DuckDB connection that sees the warehouse's Delta tables and nothing else.

Each table is opened with delta-rs (local or S3, with the warehouse's storage options) and
registered as an Arrow dataset: DuckDB scans it through delta-rs' filesystem, so DuckDB itself
never needs file or network access. Then external access is disabled (no file reads or writes,
``ATTACH``, ``COPY``, ``INSTALL``/``LOAD``, Python objects by name), spilling to disk is turned
off, and the configuration is locked, so no statement can turn any of that back on.
"""

import re
from dataclasses import dataclass

import duckdb
import pyarrow.fs as pafs
from deltalake import DeltaTable

from billing_assets.analyst.errors import QueryError, one_line
from billing_assets.tables.log_check import log_exists
from billing_assets.tables.warehouse import Warehouse

#: Spark SQL functions the documented analyst queries use, defined in DuckDB with Spark's
#: meaning, so the same text runs on both. ``date_format`` knows Spark's y, M, d, H, m, s letters.
SPARK_FUNCTIONS = (
    # Spark shifts a UTC instant to the zone's wall clock; a timestamp without zone counts as UTC.
    "CREATE MACRO from_utc_timestamp(ts, zone) AS timezone(zone, CAST(ts AS TIMESTAMPTZ))",
    # And back: a wall-clock time in the zone to the UTC instant.
    "CREATE MACRO to_utc_timestamp(ts, zone) AS timezone(zone, CAST(ts AS TIMESTAMP))",
    "CREATE MACRO to_date(value) AS CAST(value AS DATE)",
    "CREATE MACRO date_format(ts, pattern) AS strftime(ts, "
    "replace(replace(replace(replace(replace(replace(pattern, 'yyyy', '%Y'), 'MM', '%m'), 'dd', '%d'), "
    "'HH', '%H'), 'mm', '%M'), 'ss', '%S'))",
)


@dataclass(frozen=True)
class Limits:
    """The bound on one query's work."""

    #: Seconds before the query is interrupted.
    timeout: float = 300.0
    #: DuckDB's memory limit (its own units: ``2GB``, ``500MB``); nothing spills to disk beyond it.
    memory: str = "2GB"


def discover_tables(warehouse: Warehouse) -> list[str]:
    """Folder names under the warehouse root that hold a Delta table (a ``_delta_log`` with a file)."""
    storage = warehouse.storage
    fs, root = storage.filesystem(warehouse.root)
    folders = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    names = [info.base_name for info in folders if info.type == pafs.FileType.Directory]
    return sorted(name for name in names if log_exists(f"{warehouse.root}/{name}", storage))


def named_tables(names: list[str], sql: str) -> list[str]:
    """The tables of ``names`` that ``sql`` mentions as a word (names are case-insensitive).

    A mention inside a string literal registers a table the query does not read: harmless.
    """
    return [name for name in names if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", sql, re.IGNORECASE)]


def open_sandbox(warehouse: Warehouse, sql: str, limits: Limits) -> tuple[duckdb.DuckDBPyConnection, list[str]]:
    """A locked in-memory DuckDB with the tables ``sql`` names (all if it names none) as views; their names.

    Opening a table costs a read of its log and a listing of its files, so a query over one
    table does not pay for the whole warehouse; ``SHOW TABLES`` names none and sees every table.
    """
    names = discover_tables(warehouse)
    names = named_tables(names, sql) or names
    options = warehouse.storage.delta_options()
    con = duckdb.connect(":memory:")
    try:
        for name in names:
            delta = DeltaTable(f"{warehouse.root}/{name}", storage_options=options)
            con.register(name, delta.to_pyarrow_dataset())
        for macro in SPARK_FUNCTIONS:
            con.execute(macro)
        for setting, value in (
            ("TimeZone", "UTC"),  # the warehouse's timestamps are UTC instants; show them so
            ("memory_limit", limits.memory),
            ("temp_directory", ""),  # no spilling: the memory limit is a limit, and no file is written
            ("python_enable_replacements", False),
            ("autoinstall_known_extensions", False),
            ("autoload_known_extensions", False),
            ("allow_community_extensions", False),
            ("enable_external_access", False),
            ("lock_configuration", True),  # last: from here on no statement can change the above
        ):
            try:
                con.execute(f"SET {setting} = {_literal(value)}")
            except duckdb.InterruptException:
                raise KeyboardInterrupt from None  # Ctrl-C while the sandbox was being set up
            except duckdb.Error as exc:
                raise QueryError(f"{setting} {value!r}: {one_line(exc)}") from None
    except BaseException:
        con.close()
        raise
    return con, names


def _literal(value: object) -> str:
    """A setting's value as SQL text (SET takes no parameters); a quote in it stays inside the string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "'" + str(value).replace("'", "''") + "'"
