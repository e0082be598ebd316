"""Seconds to parse a sample landing zone: the safe parser alone against the fast path with the safe one behind it.

    .venv/bin/python scripts/measure_parse.py 5000 24

Generates the bench's landing zone (``meterpoints`` x ``hours``, seed 7) in a temporary folder and
parses every file in this process, without Spark, both ways, into the Arrow batches the parse
tasks hand to Spark; checks that both give the same rows. Prints the seconds of each, the best
of three.
"""

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa

from billing_assets.domain.keys import parse_hour_key
from billing_assets.landing.fast_parse import plain_readings
from billing_assets.landing.parse import DEFAULT_MAX_READING_KWH, parse_landing_file
from billing_assets.landing.sample import generate_sample
from billing_assets.transforms.ingest import fast_batch, rows_to_batch

TIMEZONE = "Europe/London"


def safe(files: list[tuple[str, str, bytes]]) -> list[pa.Table]:
    """Every file through the safe parser."""
    zone = ZoneInfo(TIMEZONE)
    out = []
    for hour, name, data in files:
        rows = parse_landing_file(data, name, parse_hour_key(hour), zone, DEFAULT_MAX_READING_KWH)
        out.append(pa.Table.from_batches([rows_to_batch(hour, rows, TIMEZONE)]))
    return out


def fast(files: list[tuple[str, str, bytes]]) -> tuple[list[pa.Table], int]:
    """Every file through the fast path, the safe parser for those it does not answer for."""
    zone, out, answered = ZoneInfo(TIMEZONE), [], 0
    for hour, name, data in files:
        readings = plain_readings(data, parse_hour_key(hour), TIMEZONE, DEFAULT_MAX_READING_KWH)
        if readings is not None:
            answered += 1
            out.append(fast_batch(hour, name, readings))
            continue
        rows = parse_landing_file(data, name, parse_hour_key(hour), zone, DEFAULT_MAX_READING_KWH)
        out.append(pa.Table.from_batches([rows_to_batch(hour, rows, TIMEZONE)]))
    return out, answered


def best_of_three(action) -> tuple[object, float]:
    """The result of ``action`` and its shortest wall time in three runs."""
    times, result = [], None
    for _ in range(3):
        began = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - began)
    return result, min(times)


def main(meterpoints: int, hours: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        generate_sample(root, meterpoints=meterpoints, start=datetime(2026, 3, 28, tzinfo=UTC), hours=hours, seed=7)
        files = [
            (path.parent.name.removeprefix("ingestion_hour="), path.name, path.read_bytes())
            for path in sorted(Path(root).rglob("*.json"))
        ]
    slow, slow_seconds = best_of_three(lambda: safe(files))
    (quick, answered), quick_seconds = best_of_three(lambda: fast(files))
    assert [t.to_pylist() for t in slow] == [t.to_pylist() for t in quick], "the two ways disagree"
    records = sum(t.num_rows for t in slow)
    print(f"{len(files)} files, {records:,} rows; the fast path answered for {answered} files")
    print(f"safe parser alone: {slow_seconds:.2f}s; fast path first: {quick_seconds:.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
