"""The executor side of a table read on object storage: a table's Parquet files as Arrow batches.

Spark's own Parquet reader needs a Hadoop filesystem for the location, and this Spark has
none for S3. So the driver lists the pinned version's files through the Delta log, and
``mapInArrow`` tasks read them with pyarrow; each task reads the files whose index Spark's
``range`` gives it. The partition column lives only in the Hive path (``column=value/``) and
is added back from there. Only pyarrow and the standard library are used, so the function
also works when pickled by value (Spark Connect).
"""

from collections.abc import Callable, Iterator, Sequence
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from billing_assets.tables.storage import TableStorage

#: Rows per batch handed to Spark: bounded, so a large file never sits in one Arrow buffer.
BATCH_ROWS = 65_536


def partition_value(file_uri: str, column: str) -> str:
    """The value of ``column`` in a Hive-partitioned file's path (``.../column=value/file``)."""
    prefix = f"{column}="
    for part in reversed(file_uri.split("/")[:-1]):
        if part.startswith(prefix):
            return unquote(part[len(prefix) :])
    raise ValueError(f"{file_uri!r} is not below a {prefix}... folder")


def file_reader(
    files: Sequence[str], schema: pa.Schema, partition_column: str | None, storage: TableStorage
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function over ``spark.range(len(files))``: the rows of the files indexed."""
    file_columns = [name for name in schema.names if name != partition_column]

    def read_files(indexes: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in indexes:
            for index in batch.column(0).to_pylist():
                uri = files[index]
                fs, path = storage.filesystem(uri)
                # Every column is wanted, so the whole object in one GET after the HEAD that sizes
                # it: pyarrow's Parquet reader asks for the footer and the column chunks separately
                # (3 HEADs and 2-3 GETs a file, measured), and an input stream reads 256 KiB a GET.
                with fs.open_input_file(path) as file:
                    data = pq.read_table(pa.BufferReader(file.read_buffer()), columns=file_columns)
                if partition_column is not None:
                    value = pa.array([partition_value(uri, partition_column)] * data.num_rows, pa.string())
                    data = data.append_column(partition_column, value.cast(schema.field(partition_column).type))
                yield from data.select(schema.names).cast(schema).to_batches(max_chunksize=BATCH_ROWS)

    return read_files
