"""Where a result goes: printed (its first rows, the count exact) or streamed to a CSV or Parquet file.

``--out`` writes a local file outside the warehouse and the landing zone, never over an
existing file unless ``--force``; the file appears whole or not at all (written beside its
target, then renamed).
"""

import os
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from billing_assets.analyst.errors import Refused

OUTPUT_SUFFIXES = (".csv", ".parquet")
#: Rows printed; the rest are counted, not kept, so a long result costs no memory here.
PRINTED_ROWS = 200
#: Rows DuckDB hands over at a time: small enough that wide rows stay small in memory.
BATCH_ROWS = 10_000


def _rows(total: int) -> str:
    return f"{total} row{'' if total == 1 else 's'}"


def print_result(reader: pa.RecordBatchReader) -> str:
    """An aligned text table of the first ``PRINTED_ROWS`` rows, then the exact row count."""
    kept: list[pa.RecordBatch] = []
    total = 0
    for batch in reader:
        if total < PRINTED_ROWS:
            kept.append(batch.slice(0, PRINTED_ROWS - total))
        total += batch.num_rows
    frame = pl.from_arrow(pa.Table.from_batches(kept, schema=reader.schema))
    with pl.Config(
        tbl_rows=PRINTED_ROWS,
        tbl_cols=-1,
        tbl_width_chars=10_000,
        fmt_str_lengths=1_000,
        tbl_hide_dataframe_shape=True,
    ):
        table = str(frame)
    if total > PRINTED_ROWS:
        return f"{table}\n{_rows(total)}, the first {PRINTED_ROWS} shown (--out FILE writes them all)"
    return f"{table}\n{_rows(total)}"


def _local(uri: str) -> Path | None:
    """The local path ``uri`` names, symlinks resolved; None for an object store URI."""
    if uri.startswith("file://"):
        uri = uri.removeprefix("file://")
    elif "://" in uri:
        return None
    return Path(uri).expanduser().resolve()


def _inside(out: str, zone: str) -> bool:
    """Whether ``out`` names a path at or below ``zone`` (both local, or both URIs)."""
    out_path, zone_path = _local(out), _local(zone)
    if out_path is not None and zone_path is not None:
        return out_path.is_relative_to(zone_path)
    if out_path is None and zone_path is None:
        return f"{out.rstrip('/')}/".startswith(f"{zone.rstrip('/')}/")
    return False


def check_out(out: str, protected: dict[str, str], force: bool) -> Path:
    """The local path ``--out`` may write, or ``Refused`` / ``QueryError`` saying why it may not."""
    if Path(out).suffix.lower() not in OUTPUT_SUFFIXES:
        raise Refused(f"--out must end in .csv or .parquet, got {out!r}")
    for name, zone in protected.items():
        if _inside(out, zone):
            raise Refused(f"--out {out!r} is inside the {name} ({zone!r}); write the result elsewhere")
    path = _local(out)
    if path is None:
        raise Refused(f"--out writes a local file, got {out!r}")
    if path.exists() and not force:
        raise Refused(f"--out {out!r} exists; add --force to replace it")
    return path


def write_result(reader: pa.RecordBatchReader, out: Path, force: bool) -> int:
    """Stream the result into ``out`` (CSV or Parquet by its suffix); the number of rows written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    os.close(handle)
    part = Path(temporary)
    umask = os.umask(0)
    os.umask(umask)
    part.chmod(0o666 & ~umask)  # mkstemp's file is private; the result gets the usual permissions
    total = 0
    try:
        if out.suffix.lower() == ".csv":
            with part.open("wb") as file:
                header = True
                for batch in reader:
                    pl.from_arrow(batch).write_csv(file, include_header=header)
                    header, total = False, total + batch.num_rows
                if header:  # no rows: the header alone
                    pl.from_arrow(reader.schema.empty_table()).write_csv(file)
        else:
            with pq.ParquetWriter(part, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    total += batch.num_rows
        if force:
            part.replace(out)
        else:
            try:
                # A hard link fails on an existing name: a file made since the check is never replaced.
                os.link(part, out)
            except FileExistsError:
                raise Refused(f"--out {str(out)!r} exists; add --force to replace it") from None
    finally:
        part.unlink(missing_ok=True)
    return total
