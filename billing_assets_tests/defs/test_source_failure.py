"""A source database that cannot be read stops only what needs the dimensions, and writes no table of its own."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from billing_assets.cli import main
from billing_assets.tables.schemas import (
    AGREEMENT_DAYS,
    CUMULATIVE_USAGE,
    DEDUPLICATED_RAW,
    DIMENSIONS,
    GOLD_TABLES,
    HOURLY_USAGE,
    QUARANTINED_READINGS,
    RAW_READINGS,
)
from billing_assets_tests.defs.test_dimension_faults import load
from billing_assets_tests.test_process_errors import one_error

START, END = "2026-03-28T00", "2026-03-28T03"
USAGE_TABLES = (RAW_READINGS, QUARANTINED_READINGS, DEDUPLICATED_RAW, HOURLY_USAGE, CUMULATIVE_USAGE)
DIMENSION_TABLES = (*(spec for dim in DIMENSIONS for spec in (dim.snapshots, dim.history)), AGREEMENT_DAYS)
GARBAGE = b"this is not a database, just text someone copied over it\n" * 100


def rows(warehouse: Path, table: str) -> list[dict]:
    """A table's rows in a stable order."""
    data = DeltaTable(str(warehouse / table)).to_pyarrow_table().to_pylist()
    return sorted(data, key=lambda row: [str(row[key]) for key in sorted(row)])


def has_table(warehouse: Path, table: str) -> bool:
    return (warehouse / table / "_delta_log").exists()


def process(root: Path, landing: Path, source: Path) -> subprocess.CompletedProcess:
    """``billing-assets process`` in its own process, warehouse and instance under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BILLING_", "AWS_"))}
    env.update(
        DAGSTER_HOME=str(root / "home"),
        BILLING_LANDING_URI=str(landing),
        BILLING_WAREHOUSE_URI=str(root / "warehouse"),
        BILLING_SOURCE_DB=str(source),
        BILLING_SPARK_MASTER="local[1]",
    )
    command = [sys.executable, "-m", "billing_assets.cli", "process", "--start", START, "--end", END]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_a_load_of_a_garbage_source_writes_no_table(quick_pipeline) -> None:
    quick_pipeline.source_db.write_bytes(GARBAGE)
    result = load(quick_pipeline, "2026-03-30")
    assert not result.success
    # Not even empty tables: the snapshots' existence is looked at, never created, before the source is read.
    assert not quick_pipeline.warehouse.exists() or list(quick_pipeline.warehouse.iterdir()) == []


def test_ingestion_and_usage_go_on_when_the_source_is_not_a_database(end_to_end, tmp_path: Path) -> None:
    landing, good = tmp_path / "landing", tmp_path / "source.db"
    args = ["generate-sample", "--meterpoints", "3", "--start", START, "--hours", "3", "--out", str(landing)]
    assert main([*args, "--source-db", str(good)]) == 0
    clean = process(tmp_path / "clean", landing, good)
    assert clean.returncode == 0, clean.stderr

    broken_root, broken = tmp_path / "broken", tmp_path / "broken.db"
    broken.write_bytes(GARBAGE)
    done = process(broken_root, landing, broken)

    assert done.returncode == 1
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(broken) in warnings[0] and "not a readable SQLite database" in warnings[0]
    assert "fix or replace the file (BILLING_SOURCE_DB)" in warnings[0]
    waiting = [line for line in done.stderr.splitlines() if line.startswith("[waiting] ")]
    assert len(waiting) == 1 and "consumption_gold" in waiting[0] and "need the dimensions" in waiting[0]
    _, log = one_error(done, str(broken))
    assert "SourceError" in log  # the load's failure, as Dagster logged it

    warehouse, reference = broken_root / "warehouse", tmp_path / "clean" / "warehouse"
    for spec in USAGE_TABLES:
        assert rows(warehouse, spec.name) == rows(reference, spec.name), spec.name
    assert rows(warehouse, HOURLY_USAGE.name)
    for spec in (*DIMENSION_TABLES, *GOLD_TABLES):
        assert not has_table(warehouse, spec.name), spec.name
        assert has_table(reference, spec.name), spec.name
    instance = dg.DagsterInstance.from_config(str(broken_root / "home"))
    # The UI shows the load as a failed run, and nothing else failed.
    [failed] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    steps = instance.all_logs(failed.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    assert [event.step_key for event in steps] == ["source_dimensions"]

    # Once the database is sound, the same command builds what waited, as the clean run did.
    broken.write_bytes(good.read_bytes())
    again = process(broken_root, landing, broken)
    assert again.returncode == 0, again.stderr
    for spec in (*USAGE_TABLES, *GOLD_TABLES):
        assert rows(warehouse, spec.name) == rows(reference, spec.name), spec.name
