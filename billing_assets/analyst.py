"""``billing-assets sql``: Spark SQL over the warehouse, every Delta table a view named by its folder.

Spark has no Delta connector here, so each table is read the way the pipeline reads it:
delta-rs lists the live files of the latest version and Spark's Parquet reader scans them
(``tables/delta_io.read_table``). The result comes back as Arrow and is printed through
polars' table formatter or written as CSV / Parquet.
"""

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession

from billing_assets.resources.spark import JavaMissingError, prepare_spark_environment, spark_config
from billing_assets.tables.delta_io import PinnedTable, read_table
from billing_assets.tables.schemas import ALL_TABLES, TableSpec

OUTPUT_SUFFIXES = (".csv", ".parquet")
#: Rows printed before polars elides the middle of a long result (the count is always exact).
PRINTED_ROWS = 200
_KNOWN = {spec.name: spec for spec in ALL_TABLES}
#: Logging for a session this command starts. Spark's failures reach Python as exceptions and
#: are reported in one line; its own logs would repeat them with Java stack traces. Spark's
#: default profile also prints start-up chatter, and announces a shell log level unless Spark's
#: logger is configured with the root's level.
_QUIET_LOG4J = """\
rootLogger.level = off
rootLogger.appenderRef.stderr.ref = console
logger.spark.name = org.apache.spark
logger.spark.level = off
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


class QueryError(Exception):
    """The query failed; the message is one line an analyst can act on."""


def discover_tables(warehouse: str) -> list[str]:
    """Folder names under ``warehouse`` that hold a Delta table (a ``_delta_log`` folder)."""
    return sorted(log.parent.name for log in Path(warehouse).glob("*/_delta_log") if log.is_dir())


def _spec(name: str, delta: DeltaTable) -> TableSpec:
    """The contract's spec for a known table; for any other, the schema in its Delta log."""
    if name in _KNOWN:
        return _KNOWN[name]
    partitions = delta.metadata().partition_columns
    return TableSpec(name, pa.schema(delta.schema().to_arrow()), partitions[0] if partitions else None)


def register_tables(spark: SparkSession, warehouse: str) -> list[str]:
    """Register every Delta table under ``warehouse`` as a temp view of ``spark``; returns their names."""
    names = discover_tables(warehouse)
    for name in names:
        uri = str(Path(warehouse, name).resolve())
        delta = DeltaTable(uri)
        read_table(spark, PinnedTable(uri, _spec(name, delta), delta)).createOrReplaceTempView(name)
    return names


@contextmanager
def analyst_session(master: str) -> Iterator[SparkSession]:
    """A session with its own temp views; Spark is stopped afterwards only if this call started it.

    In-process callers (tests, notebooks) already have a session: the query runs in a
    ``newSession()`` of it, so its views never leak into theirs and their session survives.
    """
    config = spark_config(master)
    base = SparkSession.getActiveSession()
    started = base is None
    if started:
        prepare_spark_environment()
        with tempfile.TemporaryDirectory() as folder:
            # The driver JVM reads its logging configuration once, at start.
            log4j = Path(folder, "log4j2.properties")
            log4j.write_text(_QUIET_LOG4J)
            builder = SparkSession.builder.config(
                "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j}"
            )
            for key, value in config.items():
                builder = builder.config(key, value)
            base = builder.getOrCreate()
    session = base.newSession()
    for key, value in config.items():
        if key.startswith("spark.sql."):
            session.conf.set(key, value)
    try:
        yield session
    finally:
        if started:
            base.stop()


@contextmanager
def _without_query_context_logs() -> Iterator[None]:
    """Mute PySpark's query-context loggers, which print a failed query's Java stack trace, meanwhile."""
    loggers = [PySparkLogger.getLogger(name) for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger")]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, disabled in zip(loggers, before, strict=True):
            logger.disabled = disabled


def run_query(spark: SparkSession, sql: str) -> pa.Table:
    """The result of ``sql`` as Arrow, or a ``QueryError`` carrying Spark's one-line reason."""
    try:
        with _without_query_context_logs():
            return spark.sql(sql).toArrow()
    except PySparkException as exc:
        raise QueryError(str(exc).strip().splitlines()[0]) from None
    except Py4JJavaError as exc:
        raise QueryError(str(exc.java_exception.toString()).splitlines()[0]) from None


def format_result(result: pa.Table) -> str:
    """An aligned text table of ``result`` followed by its row count."""
    frame = pl.from_arrow(result)
    with pl.Config(
        tbl_rows=PRINTED_ROWS,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=1_000,
        tbl_hide_dataframe_shape=True,
    ):
        table = str(frame)
    return f"{table}\n{frame.height} row{'' if frame.height == 1 else 's'}"


def write_result(result: pa.Table, out: Path) -> None:
    """Write ``result`` as CSV or Parquet, chosen by the suffix of ``out``."""
    frame = pl.from_arrow(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)


def sql_command(sql: str, warehouse: str, out: str | None, master: str) -> int:
    """Run one query for the command line: print the result or write ``out``; 0 on success."""
    if out is not None and Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        print(f"error: --out must end in .csv or .parquet, got {out!r}", file=sys.stderr)
        return 2
    if not discover_tables(warehouse):
        print(f"error: no Delta tables under {warehouse!r} (set --warehouse or BILLING_WAREHOUSE_URI)", file=sys.stderr)
        return 1
    try:
        with analyst_session(master) as spark:
            register_tables(spark, warehouse)
            result = run_query(spark, sql)
    except (JavaMissingError, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out is None:
        print(format_result(result))
    else:
        write_result(result, Path(out))
        print(f"wrote {result.num_rows} rows to {out}")
    return 0
