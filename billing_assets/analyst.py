"""``billing-assets sql``: Spark SQL over the warehouse, every Delta table a view named by its folder.

Spark has no Delta connector here, so each table is read the way the pipeline reads it:
delta-rs lists the live files of the latest version and Spark's Parquet reader scans them
(``tables/delta_io.read_table``). The result comes back as Arrow and is printed through
polars' table formatter or written as CSV / Parquet.

The command is read-only: Spark's parser judges each statement (``refusal``), and only
queries and statements that show metadata or a plan run. Spark SQL can otherwise write
anywhere the process can (``INSERT OVERWRITE DIRECTORY`` over a table's folder deletes it).
"""

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.errors.exceptions.captured import convert_exception
from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession

from billing_assets.resources import resolved_warehouse
from billing_assets.resources.spark import JavaMissingError, prepare_spark_environment, spark_config
from billing_assets.resources.warehouse import Warehouse
from billing_assets.tables.delta_io import PinnedTable, read_table
from billing_assets.tables.log_check import log_exists
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


#: Statements Spark treats as commands that only show metadata or a plan. EXPLAIN and
#: DESCRIBE QUERY never run the statement they describe, but it is judged all the same.
READ_ONLY_COMMANDS = frozenset(
    {
        "DescribeColumn",
        "DescribeFunction",
        "DescribeNamespace",
        "DescribeQueryCommand",
        "DescribeRelation",
        "ExplainCommand",
        "ShowColumns",
        "ShowCreateTable",
        "ShowFunctions",
        "ShowNamespaces",
        "ShowPartitions",
        "ShowTableProperties",
        "ShowTables",
        "ShowViews",
    }
)
#: Expressions that call arbitrary Java methods (``reflect``, ``java_method``, ``try_reflect``),
#: which can create files or stop the JVM from inside a SELECT.
_CALLS_JAVA = frozenset({"CallMethodViaReflection", "TryReflect"})
_COMMAND = "org.apache.spark.sql.catalyst.plans.logical.Command"


class QueryError(Exception):
    """The query failed; the message is one line an analyst can act on."""


class RefusedStatement(QueryError):
    """The statement is not a query; this command never writes."""


def _classes(tree: object) -> list[str]:
    """Every class name in a plan's JSON form, the root first; nested plans and expressions included."""
    found: list[str] = []
    if isinstance(tree, dict):
        if isinstance(tree.get("class"), str):
            found.append(tree["class"])
        for value in tree.values():
            found.extend(_classes(value))
    elif isinstance(tree, list):
        for value in tree:
            found.extend(_classes(value))
    return found


def refusal(spark: SparkSession, sql: str) -> str | None:
    """Why ``sql`` may not run here (it is not a read-only statement), or None if it may.

    Judged on Spark's parsed plan: the root must be a query or a read-only command, and no
    node below it may be a command or an insert (a multi-insert is a Union of inserts).
    """
    parsed = spark._jsparkSession.sessionState().sqlParser().parsePlan(sql)
    root, *below = _classes(json.loads(parsed.toJSON()))
    command = spark._jvm.java.lang.Class.forName(_COMMAND)

    def writes(name: str) -> bool:
        short = name.rsplit(".", 1)[-1]
        return short.startswith("Insert") or bool(command.isAssignableFrom(spark._jvm.java.lang.Class.forName(name)))

    short_root = root.rsplit(".", 1)[-1]
    if short_root not in READ_ONLY_COMMANDS and writes(root):
        return short_root
    return next((name.rsplit(".", 1)[-1] for name in below if writes(name)), None)


def _refused(kind: str) -> RefusedStatement:
    return RefusedStatement(
        f"billing-assets sql runs queries only (SELECT, WITH, VALUES, TABLE, SHOW, DESCRIBE, EXPLAIN), not {kind}"
    )


def discover_tables(warehouse: Warehouse) -> list[str]:
    """Folder names under the warehouse root that hold a Delta table (a ``_delta_log`` with a file)."""
    storage = warehouse.table_storage()
    fs, root = storage.filesystem(warehouse.root_uri())
    folders = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    names = [info.base_name for info in folders if info.type == pafs.FileType.Directory]
    return sorted(name for name in names if log_exists(f"{warehouse.root_uri()}/{name}", storage))


def _spec(name: str, delta: DeltaTable) -> TableSpec:
    """The contract's spec for a known table; for any other, the schema in its Delta log."""
    if name in _KNOWN:
        return _KNOWN[name]
    partitions = delta.metadata().partition_columns
    return TableSpec(name, pa.schema(delta.schema().to_arrow()), partitions[0] if partitions else None)


def named_tables(names: list[str], sql: str) -> list[str]:
    """The tables of ``names`` that ``sql`` mentions as a word (Spark names are case-insensitive).

    A mention inside a string literal registers a table the query does not read: harmless.
    """
    return [name for name in names if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", sql, re.IGNORECASE)]


def register_tables(spark: SparkSession, warehouse: Warehouse, sql: str | None = None) -> list[str]:
    """Register the Delta tables ``sql`` names (all of them if it names none) as temp views; their names.

    Each view costs a read of the table's log and a listing of its files, so a query over one
    table does not pay for the whole warehouse. A statement naming no table (``SHOW TABLES``)
    sees every table.
    """
    names, storage = discover_tables(warehouse), warehouse.table_storage()
    names = (named_tables(names, sql) if sql else []) or names
    for name in names:
        uri = f"{warehouse.root_uri()}/{name}"
        delta = DeltaTable(uri, storage_options=storage.delta_options())
        read_table(spark, PinnedTable(uri, _spec(name, delta), delta, storage)).createOrReplaceTempView(name)
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
    with tempfile.TemporaryDirectory(prefix="billing-assets-sql-") as folder:
        if started:
            prepare_spark_environment()
            # The driver JVM reads its logging configuration once, at start.
            log4j = Path(folder, "log4j2.properties")
            log4j.write_text(_QUIET_LOG4J)
            builder = SparkSession.builder.config(
                "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={log4j}"
            )
            # Spark's catalog would otherwise make ./spark-warehouse in the analyst's folder.
            builder = builder.config("spark.sql.warehouse.dir", str(Path(folder, "spark-warehouse")))
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
    """The result of read-only ``sql`` as Arrow, or a ``QueryError`` carrying a one-line reason."""
    try:
        with _without_query_context_logs():
            kind = refusal(spark, sql)
            if kind is not None:
                raise _refused(kind)
            # Spark runs a command as soon as it is planned but only analyses a query, so
            # what the query would call is checked before anything runs.
            frame = spark.sql(sql)
            analyzed = _classes(json.loads(frame._jdf.queryExecution().analyzed().toJSON()))
            calls = {name.rsplit(".", 1)[-1] for name in analyzed} & _CALLS_JAVA
            if calls:
                raise _refused(f"a call of Java methods ({min(calls)})")
            return frame.toArrow()
    except PySparkException as exc:
        raise QueryError(str(exc).strip().splitlines()[0]) from None
    except Py4JJavaError as exc:
        # Spark's parser, called directly, fails with a Java exception; name it as spark.sql would.
        reason = convert_exception(exc.java_exception)
        raise QueryError(str(reason).strip().splitlines()[0]) from None


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
    store = resolved_warehouse(warehouse)
    if not discover_tables(store):
        print(f"error: no Delta tables under {warehouse!r} (set --warehouse or BILLING_WAREHOUSE_URI)", file=sys.stderr)
        return 1
    try:
        with analyst_session(master) as spark:
            register_tables(spark, store, sql)
            result = run_query(spark, sql)
    except RefusedStatement as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (JavaMissingError, QueryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if out is None:
        print(format_result(result))
    else:
        write_result(result, Path(out))
        print(f"wrote {result.num_rows} rows to {out}")
    return 0
