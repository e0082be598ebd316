"""Spark computes, delta-rs commits: reading Delta tables into Spark and replacing partitions.

Spark here has no Delta connector (its jars cannot be fetched), so the transaction log is
owned by delta-rs: reads list the table's live files through the log and hand them to
Spark's Parquet reader (on S3, which this Spark cannot read, pyarrow tasks read them:
``file_reader``); writes replace an explicit set of partitions in one Delta commit,
which is what makes every asset run an idempotent replace. The executors write the Parquet
files (``file_writer``); the driver only commits them.
"""

import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties, Transaction
from pyspark import cloudpickle
from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from billing_assets.tables import file_reader as file_reader_module
from billing_assets.tables import file_writer as file_writer_module
from billing_assets.tables import selection as selection_module
from billing_assets.tables import storage as storage_module
from billing_assets.tables import write_intents
from billing_assets.tables.file_reader import file_reader
from billing_assets.tables.file_writer import MANIFEST_SCHEMA, FileTarget, file_writer
from billing_assets.tables.log_check import (
    ADDED_KEY,
    REMOVED_KEY,
    TRANSACTIONS_KEY,
    record_commit,
    verify_files,
    verify_log,
)
from billing_assets.tables.schemas import TableSpec
from billing_assets.tables.selection import KeyFormat, PartitionSelection, key_format
from billing_assets.tables.storage import LOCAL, TableStorage

log = logging.getLogger(__name__)

#: Concurrent writers to the same partitions conflict; the loser recomputes and retries.
COMMIT_ATTEMPTS = 5
#: At most this many tasks read a table on object storage (each reads whole files).
READ_TASKS = 16
T = TypeVar("T")


class TableSchemaMismatch(ValueError):
    """A table's columns differ from this version's contract (built by an older version): rebuild it."""


class PartitionSpillError(ValueError):
    """A write produced rows outside the partitions it replaces: a bug, refused before the commit."""


@dataclass(frozen=True)
class PinnedTable:
    """A Delta table as of the version it was opened at.

    Reads see exactly that version, and a write based on it is committed against it: if
    another writer changed the partitions it replaces in the meantime, delta-rs refuses the
    commit (``CommitFailedError``) instead of silently overwriting the other writer's rows.
    """

    uri: str
    spec: TableSpec
    delta: DeltaTable
    storage: TableStorage = LOCAL


def open_table(uri: str, spec: TableSpec, storage: TableStorage = LOCAL, version: int | None = None) -> PinnedTable:
    """Open the table at ``version`` (default: its latest, creating it empty with its schema on first use).

    The latest version is opened only from a whole log (``log_check``): a run never computes
    from, or writes over, a table that lost commits or files. Raises ``DamagedTableLog``.
    """
    options = storage.delta_options()
    if version is not None:
        return PinnedTable(uri, spec, DeltaTable(uri, version=version, storage_options=options), storage)
    state = verify_log(uri, spec.name, storage)
    if state is None:
        delta = DeltaTable.create(
            uri, schema=spec.schema, partition_by=_partitioning(spec), storage_options=options, mode="ignore"
        )
    else:
        delta = DeltaTable(uri, storage_options=options)
        _check_schema(spec, delta)
    verify_files(uri, spec.name, delta, state, storage)
    return PinnedTable(uri, spec, delta, storage)


def _check_schema(spec: TableSpec, delta: DeltaTable) -> None:
    """Refuse a table whose columns are not the contract's, before anything reads or overwrites it.

    An overwrite with the new schema would be accepted by delta-rs and leave the partitions it
    does not replace in the old types, which no later read could use.
    """
    stored = {field.name: field.type for field in pa.schema(delta.schema().to_arrow())}
    expected = {field.name: field.type for field in spec.schema}
    if stored == expected:
        return
    changes = [
        f"{name}: {stored[name]} here, {kind} expected"
        for name, kind in expected.items()
        if stored.get(name, kind) != kind
    ]
    changes += [f"{name} missing" for name in expected.keys() - stored.keys()]
    changes += [f"{name} not in the contract" for name in stored.keys() - expected.keys()]
    raise TableSchemaMismatch(
        f"table {spec.name} was built by an older version ({'; '.join(sorted(changes))}); nothing was written. "
        "Rebuild it as docs/guarantees.md 'Upgrading a warehouse built by an older version' describes"
    )


def _partitioning(spec: TableSpec) -> list[str] | None:
    return [spec.partition_by] if spec.partition_by else None


def read_table(
    spark: SparkSession, table: PinnedTable, filters: list[tuple[str, str, object]] | None = None
) -> DataFrame:
    """The rows of the pinned version as a Spark DataFrame, pruned to the partitions in ``filters``."""
    files = table.delta.file_uris(partition_filters=filters) if filters else table.delta.file_uris()
    schema = from_arrow_schema(table.spec.schema)
    if not files:
        return spark.createDataFrame([], schema)
    if not table.storage.is_object_store(table.uri):
        return spark.read.schema(schema).option("basePath", table.uri).parquet(*files)
    _ship_by_value(spark)
    reader = file_reader(sorted(files), table.spec.schema, table.spec.partition_by, table.storage)
    # One task per file, up to the usual parallelism: a task per file is what Spark's reader does.
    indexes = spark.range(len(files), numPartitions=min(len(files), READ_TASKS))
    return indexes.mapInArrow(reader, schema)


def partition_digests(table: PinnedTable, values: list[str]) -> dict[str, str]:
    """A digest of the live data files of each partition in ``values``: a rewrite of the partition changes it."""
    column = f"partition.{table.spec.partition_by}"
    actions = pa.table(table.delta.get_add_actions(flatten=True))
    files: dict[str, list[str]] = {value: [] for value in values}
    if column in actions.column_names and values:
        # Partition values come typed (a date column gives dates); the keys compared are strings.
        found = pc.cast(actions[column], pa.string())
        wanted = pc.is_in(found, pa.array(values, pa.string()))
        for value, path in zip(
            found.filter(wanted).to_pylist(), actions["path"].filter(wanted).to_pylist(), strict=True
        ):
            files[value].append(path)
    return {value: hashlib.sha256("\n".join(sorted(paths)).encode()).hexdigest()[:16] for value, paths in files.items()}


def _ship_by_value(spark: SparkSession | DataFrame) -> None:
    """Under Spark Connect the server cannot import this project: ship the task code by value."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        for module in (file_reader_module, file_writer_module, selection_module, storage_module):
            cloudpickle.register_pickle_by_value(module)


@dataclass(frozen=True)
class Written:
    """What one replace committed: the new table version and the rows its files hold."""

    version: int
    #: From the files' own manifest: counting the frame beforehand would be one more Spark job.
    rows: int


def replace_partitions(df: DataFrame, table: PinnedTable, selection: PartitionSelection | None) -> int:
    """Replace the ``selection`` partitions with ``df`` in one commit; the new table version."""
    return write_partitions(df, table, selection).version


def write_partitions(df: DataFrame, table: PinnedTable, selection: PartitionSelection | None) -> Written:
    """Replace the ``selection`` partitions (the whole table if ``None``) with ``df`` in one commit.

    Executors write the Parquet files; the driver only collects one small row per file and
    commits them with the removal of the selected partitions.
    Rows outside the selection are refused before anything is committed, so a bug cannot
    spill into other partitions; the commit is checked against the pinned version, so a
    concurrent change to the same partitions fails it rather than being lost.
    """
    spec, column = table.spec, table.spec.partition_by
    if column is None and selection is not None:
        raise ValueError(f"{spec.name} is not partitioned: replace it whole (selection=None)")
    if column is not None and selection is None:
        raise ValueError(f"{spec.name} is partitioned by {column}: name the partitions to replace")
    fmt = key_format(column, spec.schema.field(column).type) if column else None
    if selection is not None:
        selection.validated(fmt)
    target = _file_target(table, fmt, selection)
    frame = df.select(*spec.schema.names)
    # One task per partition value (sorted, so each task keeps one file open): files are not
    # fragments of a partition. Unpartitioned tables are the small dimensions: one file.
    frame = frame.repartition(column).sortWithinPartitions(column) if column else frame.repartition(1)
    _ship_by_value(df)
    sweep_abandoned_writes(table)
    intent = write_intents.begin(table.uri, target.file_prefix(), table.storage)
    try:
        manifest = frame.mapInArrow(file_writer(target), from_arrow_schema(MANIFEST_SCHEMA)).collect()
        actions = _add_actions(target, manifest)
        removed = (
            table.delta.file_uris(partition_filters=selection.filters(column)) if selection else table.delta.file_uris()
        )
        claims = _claims(table, target, actions)
        table.delta.create_write_transaction(
            actions,
            mode="overwrite",
            schema=spec.schema,
            partition_by=_partitioning(spec),
            partition_filters=selection.filters(column) if selection else None,
            commit_properties=CommitProperties(
                # The counts let log_check tell a whole commit file from one cut at a line boundary.
                custom_metadata={
                    ADDED_KEY: str(len(actions)),
                    REMOVED_KEY: str(len(removed)),
                    TRANSACTIONS_KEY: str(len(claims)),
                },
                app_transactions=claims,
            ),
        )
    except BaseException:
        _clean_up_failed_write(table, target)
        raise
    _delete_files_of_write(target, committed={action.path.rsplit("/", 1)[-1] for action in actions})
    write_intents.end(table.uri, intent, table.storage)
    table.delta.update_incremental()
    record_commit(table.uri, table.delta.version(), table.storage)
    return Written(table.delta.version(), sum(row["num_records"] for row in manifest))


def live_file_names(table: PinnedTable) -> set[str]:
    """The names of the data files the table's pinned version holds."""
    return {uri.rsplit("/", 1)[-1] for uri in table.delta.file_uris()}


def sweep_abandoned_writes(table: PinnedTable) -> int:
    """Delete the data files of writes to ``table`` whose process died before committing them; how many."""
    return write_intents.sweep(table.uri, lambda: live_file_names(table), table.storage)


def _file_target(table: PinnedTable, fmt: KeyFormat | None, selection: PartitionSelection | None) -> FileTarget:
    if "://" not in table.uri and not os.path.isabs(table.uri):
        raise ValueError(f"executors need an absolute table location, got {table.uri!r}")
    column = table.spec.partition_by
    file_schema = pa.schema([f for f in table.spec.schema if f.name != column])
    return FileTarget(table.uri, file_schema, column, fmt, selection, uuid.uuid4().hex, table.storage)


def _add_actions(target: FileTarget, manifest: list[Row]) -> list[AddAction]:
    """Delta add actions for the files written, after checking each one's partition again."""
    refused = [row for row in manifest if row["path"] is None]
    outside = [row for row in manifest if row["path"] is not None and not target.allows(row["partition_value"])]
    if refused or outside:
        values = sorted({repr(row["partition_value"])[:60] for row in refused + outside})
        rows = sum(row["num_records"] for row in refused + outside)
        raise PartitionSpillError(
            f"{rows} row(s) have {target.partition_column} values outside the {target.selection} being "
            f"replaced, e.g. {', '.join(values[:5])}; nothing was committed"
        )
    column = target.partition_column
    return [
        AddAction(
            row["path"],
            row["size"],
            {column: row["partition_value"]} if column else {},
            row["modification_time"],
            True,
            row["stats"],
        )
        for row in manifest
    ]


def _claims(table: PinnedTable, target: FileTarget, actions: list[AddAction]) -> list[Transaction]:
    """One Delta app transaction per partition this commit removes from or adds to.

    ``create_write_transaction`` records no read predicate, so delta-rs does not notice a
    concurrent writer that only *added* files to a partition this commit replaces (measured:
    both commits succeed and the partition holds both writers' rows). Two commits naming the
    same app id do conflict, so every commit names the partitions it touches.
    """
    column = target.partition_column
    if column is None:
        touched = {"billing_assets.replace:*"}
    else:
        removed = table.delta.partitions(file_pruning_predicate=target.selection.filters(column))
        values = {part[column] for part in removed} | {action.partition_values[column] for action in actions}
        touched = {f"billing_assets.replace:{column}={value}" for value in values}
    version = table.delta.version() + 1
    return [Transaction(app_id=app_id, version=version) for app_id in sorted(touched)]


def _clean_up_failed_write(table: PinnedTable, target: FileTarget) -> None:
    """After a write failed, delete its files that the log does not hold; its intent stays.

    The failure may have come after the commit succeeded (a signal handled right after it, an
    error while the high-water mark is written): what committed is read from the log again,
    never assumed, so a committed file is never deleted. Tasks of a failed job may still be
    finishing their files, so the intent stays: once this process has ended, the next writer's
    sweep deletes whatever they left (and so it does if the log cannot be read now).
    """
    try:
        latest = DeltaTable(table.uri, storage_options=table.storage.delta_options())
        _delete_files_of_write(target, {uri.rsplit("/", 1)[-1] for uri in latest.file_uris()})
    except Exception as exc:  # noqa: BLE001 - the write's own error is what the caller must see
        log.warning("could not clean up a failed write to %s (left for the next writer): %s", table.uri, exc)


def _delete_files_of_write(target: FileTarget, committed: set[str]) -> None:
    """Delete this write's files whose names are not in ``committed``: refused commits, failed or speculative attempts.

    Only the folders of the selected partitions can hold them (the tasks write nowhere else).
    Files of a driver that died before this point are never referenced by the log either: the
    write's intent outlives it, and the next write to the table deletes them (``write_intents``).
    """
    fs, root = target.storage.filesystem(target.table_uri)
    folders = {""}
    if target.partition_column is not None:
        prefix = f"{target.partition_column}="
        folders = {
            info.base_name
            for info in fs.get_file_info(pafs.FileSelector(root))
            if info.type == pafs.FileType.Directory
            and info.base_name.startswith(prefix)
            and target.allows(info.base_name.removeprefix(prefix))
        }
    doomed = []
    for folder in folders:
        path = f"{root}/{folder}" if folder else root
        for info in fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)):
            if info.base_name.startswith(target.file_prefix()) and info.base_name not in committed:
                doomed.append(info.path)
    target.storage.delete_files(target.table_uri, doomed)


def retry_on_conflict(step: Callable[[], T], attempts: int = COMMIT_ATTEMPTS) -> T:
    """Run ``step`` (read, compute, commit) again when another writer committed first.

    The whole step is repeated, not just the commit: its input may have changed, and
    re-committing stale data would lose the other writer's rows.
    """
    for attempt in range(1, attempts + 1):
        try:
            return step()
        except CommitFailedError as exc:
            if attempt == attempts:
                raise
            log.warning("Delta commit conflict (attempt %d of %d), recomputing: %s", attempt, attempts, exc)
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")
