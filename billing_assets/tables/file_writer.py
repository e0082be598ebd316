"""The executor side of a table write: one task's rows as Parquet files in the table's partition folders.

Runs inside ``mapInArrow`` tasks and yields one small manifest row per file; the driver turns
those rows into Delta add actions and commits them once. Only pyarrow and the standard
library are used here, so the function also works when pickled by value (Spark Connect).
"""

import json
import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from billing_assets.tables.schemas import arrow_schema
from billing_assets.tables.selection import KeyFormat, PartitionSelection
from billing_assets.tables.storage import LOCAL, TableStorage

#: One row per file written (``path`` null: rows refused because their partition is not selected).
MANIFEST_SCHEMA = arrow_schema(
    "path string, size bigint, partition_value string, num_records bigint, stats string, modification_time bigint"
)
#: A bigger partition is split over several files, so readers can still parallelise over it.
ROWS_PER_FILE = 2_000_000
#: Rows buffered per row group: Spark hands over 10k-row batches, too small as row groups.
ROWS_PER_GROUP = 131_072
#: Delta readers compare string bounds as given; longer strings get no min/max (like delta-rs).
MAX_STRING_STAT = 32


@dataclass(frozen=True)
class FileTarget:
    """Where and how one write puts its files (plain values: shipped to every task)."""

    table_uri: str
    #: The table's schema without the partition column (Hive layout keeps it in the path).
    file_schema: pa.Schema
    partition_column: str | None
    key_format: KeyFormat | None
    selection: PartitionSelection | None
    #: In every file name, so files of this write can be found again (failed task attempts).
    write_id: str
    #: Where the files go (local disk, or S3 with its options).
    storage: TableStorage = LOCAL

    def file_prefix(self) -> str:
        """The name prefix of every file this write creates."""
        return f"part-{self.write_id}-"

    def allows(self, value: str | None) -> bool:
        """Whether rows with partition value ``value`` may be written by this write."""
        if self.partition_column is None:
            return True
        try:
            self.key_format.check(value)
        except ValueError:
            return False
        return self.selection.contains(value)


def _bound(value: object) -> object | None:
    """A min/max value as Delta JSON stats write it, or None when it gets no bound."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value if len(value) <= MAX_STRING_STAT else None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    return None


class _FileStats:
    """numRecords, minValues, maxValues and nullCount of one file, accumulated chunk by chunk."""

    def __init__(self, schema: pa.Schema) -> None:
        self.records = 0
        self.nulls = dict.fromkeys(schema.names, 0)
        self.bounds: dict[str, tuple[object, object] | None] = {}

    def add(self, table: pa.Table) -> None:
        self.records += table.num_rows
        for name in table.column_names:
            column = table.column(name)
            self.nulls[name] += column.null_count
            if column.null_count == len(column) or self.bounds.get(name, ()) is None:
                continue
            low, high = (pc.min_max(column)[key].as_py() for key in ("min", "max"))
            low, high = _bound(low), _bound(high)
            if low is None or high is None:
                self.bounds[name] = None  # once unbounded, the file stays unbounded for this column
                continue
            if name in self.bounds:
                low, high = min(low, self.bounds[name][0]), max(high, self.bounds[name][1])
            self.bounds[name] = (low, high)

    def to_json(self) -> str:
        bounded = {name: bound for name, bound in self.bounds.items() if bound is not None}
        return json.dumps(
            {
                "numRecords": self.records,
                "minValues": {name: bound[0] for name, bound in bounded.items()},
                "maxValues": {name: bound[1] for name, bound in bounded.items()},
                "nullCount": self.nulls,
            }
        )


class _OpenFile:
    """One Parquet file being written, with its buffered row group and its stats."""

    def __init__(self, target: FileTarget, fs: pafs.FileSystem, root: str, value: str | None) -> None:
        folder = f"{target.partition_column}={value}/" if target.partition_column else ""
        self.relative = f"{folder}{target.file_prefix()}{uuid.uuid4().hex}.parquet"
        self.full = f"{root}/{self.relative}"
        self.value, self.schema = value, target.file_schema
        if folder and not target.storage.is_object_store(target.table_uri):
            # On an object store a "folder" is a key prefix; creating one would add marker objects.
            fs.create_dir(f"{root}/{folder.rstrip('/')}", recursive=True)
        # The stream is ours, not the writer's, so its length gives the file size without asking the store.
        self.sink = fs.open_output_stream(self.full)
        self.writer = pq.ParquetWriter(self.sink, self.schema)
        self.stats = _FileStats(self.schema)
        self.buffered: list[pa.RecordBatch] = []
        self.buffered_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.buffered.append(batch)
        self.buffered_rows += batch.num_rows
        if self.buffered_rows >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self.buffered:
            table = pa.Table.from_batches(self.buffered, self.schema)
            self.writer.write_table(table)
            self.stats.add(table)
            self.buffered, self.buffered_rows = [], 0

    def rows(self) -> int:
        return self.stats.records + self.buffered_rows

    def release(self) -> int:
        """Finish the Parquet file and its upload (what is buffered stays unwritten); its size in bytes."""
        self.writer.close()
        size = self.sink.tell()
        self.sink.close()
        return size

    def close(self) -> pa.RecordBatch:
        """Finish the file and describe it as one manifest row."""
        self._flush()
        size = self.release()
        row = {
            "path": self.relative,
            "size": size,
            "partition_value": self.value,
            "num_records": self.stats.records,
            "stats": self.stats.to_json(),
            "modification_time": int(time.time() * 1000),
        }
        return pa.RecordBatch.from_pylist([row], schema=MANIFEST_SCHEMA)


def _runs(target: FileTarget, batch: pa.RecordBatch) -> Iterator[tuple[str | None, pa.RecordBatch]]:
    """The batch split by partition value, in order of first appearance."""
    if target.partition_column is None:
        yield None, batch
        return
    keys = batch.column(target.partition_column).cast(pa.string())
    for value in pc.unique(keys).to_pylist():
        mask = pc.is_null(keys) if value is None else pc.equal(keys, value)
        yield value, batch.filter(mask)


def file_writer(target: FileTarget) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function: write a task's rows (sorted by partition) as files, yield the manifest."""

    def write_files(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fs, root = target.storage.filesystem(target.table_uri)
        columns = target.file_schema.names
        refused: dict[str | None, int] = {}
        current: _OpenFile | None = None
        try:
            for batch in batches:
                for value, rows in _runs(target, batch):
                    if not target.allows(value):
                        # Never turned into a path: the driver reports these and commits nothing.
                        refused[value] = refused.get(value, 0) + rows.num_rows
                        continue
                    if current is not None and (current.value != value or current.rows() >= ROWS_PER_FILE):
                        yield current.close()
                        current = None
                    if current is None:
                        current = _OpenFile(target, fs, root, value)
                    current.write(rows.select(columns).cast(target.file_schema))
            if current is not None:
                yield current.close()
                current = None
        finally:
            if current is not None:  # the task failed: release the file; the driver deletes it
                current.release()
        for value, count in refused.items():
            yield pa.RecordBatch.from_pylist(
                [{"path": None, "partition_value": value, "num_records": count}], schema=MANIFEST_SCHEMA
            )

    return write_files
