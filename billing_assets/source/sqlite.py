"""Read the agreement / product / meterpoint tables from the SQLite source database.

The database is opened read-only and all three tables are read in one transaction, so a
load sees one consistent state. Anything unexpected (missing file, lock held too long,
missing table or column, a value of the wrong type) fails the load with a message naming
the problem; nothing is written until every table has been read and converted.
"""

import os
import re
import sqlite3
from datetime import date

import pyarrow as pa

from billing_assets.tables.schemas import DIMENSIONS, Dimension

#: How long to wait for a writer holding the database lock before giving up.
LOCK_TIMEOUT_SECONDS = 10.0


class SourceError(RuntimeError):
    """The source database cannot be read as the contract describes."""


#: ``DATE`` columns hold ``YYYY-MM-DD`` text, perhaps with a time after it; nothing else is a date
#: (``date.fromisoformat`` alone would also take ``20260328``, which SQLite stores as a number).
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T].*)?", re.DOTALL)


def _date(value: object, where: str) -> date | None:
    if value is None or value == "":
        return None
    try:
        if not (isinstance(value, str) and _DATE_TEXT.fullmatch(value)):
            raise ValueError
        return date.fromisoformat(value[:10])
    except ValueError:
        raise SourceError(f"{where}: not a date: {value!r}") from None


def _id(value: object, where: str) -> str | None:
    """An id as the opaque string analysts join on: ``42``, ``42.0`` and ``'42'`` are all ``'42'``.

    SQLite's column affinity stores ``'42'`` in an INTEGER column as 42 and a hex id in the
    same column as text, so one column may mix storage classes; each maps to one string.
    A blank text is no id at all.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not value.is_integer():
            raise SourceError(f"{where}: not an id (a non-integral number): {value!r}")
        return str(int(value))
    raise SourceError(f"{where}: not an id (a blob): {value!r}")


def _bool(value: object, where: str) -> bool | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in {"1", "true", "t", "yes"}:
        return True
    if text in {"0", "false", "f", "no"}:
        return False
    raise SourceError(f"{where}: not a boolean: {value!r}")


def _str(value: object, where: str) -> str | None:
    return None if value is None else str(value)


_CONVERT = {pa.date32(): _date, pa.bool_(): _bool, pa.string(): _str}


def _read_table(conn: sqlite3.Connection, dim: Dimension) -> pa.Table:
    names = [name for name, _ in dim.columns]
    present = {row[1] for row in conn.execute(f"PRAGMA table_info({dim.source_table})")}
    if not present:
        raise SourceError(f"source table {dim.source_table!r} is missing")
    missing = [name for name in names if name not in present]
    if missing:
        raise SourceError(f"source table {dim.source_table!r} lacks columns {missing} (has {sorted(present)})")
    rows = conn.execute(f"SELECT {', '.join(names)} FROM {dim.source_table}").fetchall()
    columns = {}
    for index, (name, dtype) in enumerate(dim.columns):
        convert = _id if name in dim.ids else _CONVERT[dtype]
        values = [convert(row[index], f"{dim.source_table}.{name} row {n}") for n, row in enumerate(rows, 1)]
        if name in dim.required and None in values:
            raise SourceError(f"{dim.source_table}.{name} row {values.index(None) + 1}: missing id")
        columns[name] = values
    return pa.table(columns, schema=pa.schema(dim.columns))


def read_source(path: str) -> dict[str, pa.Table]:
    """All dimension tables, keyed by source table name, read in one transaction."""
    if not os.path.isfile(path):
        raise SourceError(f"source database not found: {path} (set BILLING_SOURCE_DB)")
    try:
        conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True, timeout=LOCK_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise SourceError(f"cannot open source database {path}: {exc}") from None
    try:
        conn.execute("BEGIN")
        return {dim.source_table: _read_table(conn, dim) for dim in DIMENSIONS}
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise SourceError(f"source database {path} stayed locked for {LOCK_TIMEOUT_SECONDS:.0f}s: {exc}") from None
        raise SourceError(f"source database {path}: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"source database {path} is not a readable SQLite database: {exc}") from None
    finally:
        conn.close()
