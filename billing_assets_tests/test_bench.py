"""``billing-assets bench`` at toy size: it prints the figures and the three engines agree."""

import re
from pathlib import Path

import pytest

from billing_assets.bench.compare import differences
from billing_assets.cli import main


@pytest.mark.scenario
@pytest.mark.parametrize("warehouse", ["local", pytest.param("s3", marks=pytest.mark.slow)])  # s3: starts a server
def test_bench_prints_the_table_and_the_engines_agree(warehouse: str, tmp_path: Path, spark, capsys) -> None:
    # Summer time, across the London month boundary (April starts 23:00 UTC on 31 March), so
    # naive local times and billing months both matter. Without --latency: its cold run starts
    # a second JVM, which would double the test's time.
    argv = ["bench", "--meterpoints", "20", "--hours", "3", "--start", "2026-03-31T21", "--workdir", str(tmp_path)]
    assert main([*argv, "--warehouse", warehouse]) == 0

    out, err = capsys.readouterr()
    assert f"from 2026-03-31T21 UTC, warehouse {warehouse}" in out
    assert ("[bench] warehouse on S3: s3://" in err) == (warehouse == "s3")
    assert "now ingestion hours 2026-03-31-21 .. 2026-03-31-23" in err  # the pipeline's progress is passed through
    assert re.search(r"pipeline seconds per asset: source_dimensions [\d.]+, raw_readings [\d.]+", out)
    assert re.search(r"pipeline driver peak RSS: Python [\d,]+ MiB, JVM [\d,]+ MiB", out)
    assert re.search(r"^engine\s+seconds\s+readings/s\s+vs plain Spark", out, re.M)
    for engine in ("pipeline chain", "pipeline, all", "plain Spark", "DuckDB"):
        assert re.search(rf"^{engine}\s+[\d.]+\s+[\d,.]+\s+[\d.]+x", out, re.M), engine
    assert re.search(r"^plain Spark\s+[\d.]+\s+[\d,.]+\s+1\.00x", out, re.M)
    assert re.search(r"engines agree: hourly totals \(\d+ hours\) and monthly running totals \(2 months\)", out)
    assert "DISAGREE" not in out
    assert list(tmp_path.iterdir()) == []  # without --keep nothing is left behind


def test_differences_name_missing_hours_and_values_beyond_tolerance() -> None:
    expected = {"2026-03-28T00": 1.0, "2026-03-28T01": 2.0, "2026-03-28T02": 3.0}
    actual = {"2026-03-28T00": 1.0 + 1e-9, "2026-03-28T01": 2.001, "2026-03-28T03": 3.0}
    assert differences(expected, actual) == [
        "2026-03-28T02: only in one",
        "2026-03-28T03: only in one",
        "2026-03-28T01: 2.0 != 2.001",
    ]
