"""``billing-assets bench`` at toy size: it prints the figures and the three engines agree."""

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from billing_assets.bench.compare import differences
from billing_assets.bench.run import HISTORY_COLUMNS, BenchResult, bench_command, markdown_row
from billing_assets.cli import main

PERFORMANCE = Path(__file__).parents[1] / "docs" / "performance.md"
#: A history row: date (the bench adds the time), command, machine, records, then seconds or "—",
#: then two peaks. Rows of older measurements may lack the time or the records.
ROW = re.compile(
    r"^\| \d{4}-\d\d-\d\d(?: \d\d:\d\d)? \| `bench [^`|]+` \| \d+ cores, \d+ GiB \| (?:[\d,]+|—) \|"
    r"(?: (?:[\d.]+|—) \|){6}(?: (?:[\d,]+ MiB|—) \|){2}$"
)


@pytest.mark.parametrize(
    ("warehouse", "markdown"), [("local", True), pytest.param("s3", False, marks=pytest.mark.slow)]
)  # s3: starts a server
def test_bench_prints_the_table_and_the_engines_agree(
    end_to_end, warehouse: str, markdown: bool, tmp_path: Path, spark, capsys
) -> None:
    # Summer time, across the London month boundary (April starts 23:00 UTC on 31 March), so
    # naive local times and billing months both matter. Without --latency: its cold run starts
    # a second JVM, which would double the test's time.
    argv = ["bench", "--meterpoints", "20", "--hours", "3", "--start", "2026-03-31T21", "--workdir", str(tmp_path)]
    # The local run also times the source load (first and daily) over a generated source.
    more = ["--markdown", "--agreements", "30"] if markdown else []
    assert main([*argv, "--warehouse", warehouse, *more]) == 0

    stdout, err = capsys.readouterr()
    # --markdown: the report goes to stderr, stdout is one row of the documented history table.
    out = err if markdown else stdout
    if markdown:
        assert ROW.match(stdout.strip()), stdout
        assert re.match(r"^\| \d{4}-\d\d-\d\d \d\d:\d\d \| ", stdout)
        assert stdout.count("\n") == 1
        assert "| `bench --meterpoints 20 --hours 3 --start 2026-03-31T21` |" in stdout
        assert stdout.strip().count(" | ") == len(HISTORY_COLUMNS) - 1
    assert f"from 2026-03-31T21 UTC, warehouse {warehouse}" in out
    assert ("[bench] warehouse on S3: s3://" in err) == (warehouse == "s3")
    assert "now ingestion hours 2026-03-31-21 .. 2026-03-31-23" in err  # the pipeline's progress is passed through
    # Per asset: seconds, and the Spark jobs its runs started with the seconds inside them.
    per_asset = (
        r"pipeline per asset: source_dimensions [\d.]+s \(\d+ jobs, [\d.]+s in jobs\), raw_readings [\d.]+s \(\d+ jobs"
    )
    assert re.search(per_asset, out), out
    if markdown:
        assert "source load, 30 agreements and meterpoints (local warehouse):" in out
        assert re.search(r"first load \(\S+ \.\. \S+\): [\d.]+s, \d+ coverage days written, peak RSS", out)
        assert re.search(r"daily load \(\S+ \.\. \S+\): [\d.]+s, 1 coverage days written, peak RSS", out)
    assert re.search(r"pipeline driver peak RSS: Python [\d,]+ MiB, JVM [\d,]+ MiB", out)
    assert re.search(r"^engine\s+seconds\s+readings/s\s+vs plain Spark", out, re.M)
    for engine in ("pipeline chain", "pipeline, all", "plain Spark", "DuckDB"):
        assert re.search(rf"^{engine}\s+[\d.]+\s+[\d,.]+\s+[\d.]+x", out, re.M), engine
    assert re.search(r"^plain Spark\s+[\d.]+\s+[\d,.]+\s+1\.00x", out, re.M)
    assert re.search(r"engines agree: hourly totals \(\d+ hours\) and monthly running totals \(2 months\)", out)
    assert "DISAGREE" not in out
    assert list(tmp_path.iterdir()) == []  # without --keep nothing is left behind


def test_a_markdown_row_fits_the_history_table_of_the_performance_doc() -> None:
    result = BenchResult(480_567, 42.24, 85.71, 14.5, 1.6, 25.93, None, 367 << 20, 0)
    when = datetime(2026, 12, 6, 16, 36, 20, tzinfo=UTC)
    command = bench_command(5000, 48, datetime(2026, 3, 28, tzinfo=UTC), True, "local")
    row = markdown_row(when, command, "2 cores, 24 GiB", result)
    assert row == (
        "| 2026-12-06 16:36 | `bench --meterpoints 5000 --hours 48 --latency` | 2 cores, 24 GiB | 480,567"
        " | 42.2 | 85.7 | 14.5 | 1.6 | 25.9 | — | 367 MiB | — |"
    )
    s3 = bench_command(20, 3, datetime(2026, 3, 31, 21, tzinfo=UTC), False, "s3")
    assert s3 == "bench --meterpoints 20 --hours 3 --start 2026-03-31T21 --warehouse s3"

    # The documented table has exactly these columns, and every row pasted into it has their shape.
    lines = PERFORMANCE.read_text().split("\n")
    header = "| " + " | ".join(HISTORY_COLUMNS) + " |"
    assert header in lines
    rows = lines[lines.index(header) + 2 :]
    rows = rows[: next((i for i, line in enumerate(rows) if not line.startswith("|")), len(rows))]
    assert rows and all(ROW.match(line) for line in rows), [line for line in rows if not ROW.match(line)]
    assert ROW.match(row)


def test_differences_name_missing_hours_and_values_beyond_tolerance() -> None:
    expected = {"2026-03-28T00": 1.0, "2026-03-28T01": 2.0, "2026-03-28T02": 3.0}
    actual = {"2026-03-28T00": 1.0 + 1e-9, "2026-03-28T01": 2.001, "2026-03-28T03": 3.0}
    assert differences(expected, actual) == [
        "2026-03-28T02: only in one",
        "2026-03-28T03: only in one",
        "2026-03-28T01: 2.0 != 2.001",
    ]
