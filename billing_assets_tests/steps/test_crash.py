"""A hard kill (SIGKILL of the whole process group) between the commits of one raw_readings run.

``raw_readings`` commits three tables one after another: deduplicated_raw, then
quarantined_readings, then raw_readings. The real ``billing-assets process`` command is
killed right after the first and, on a second attempt, right after the second of those
commits; a re-run must then converge to exactly what a clean run on a fresh warehouse
builds, and the Dagster side must still learn about the recording hours the killed run
committed (the killed run died before it could report them; the re-run reports them).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from billing_assets.instance import INSTANCE_CONFIG, fail_abandoned_runs
from billing_assets.partitions import recording_partition_key
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r

#: Several Dagster runs per test: deselected by the inner loop (-m "not slow and not scenario").

HOUR = "2026-03-10-09"
#: How long a killed-run attempt may take to reach its commit (JVM start included).
COMMIT_TIMEOUT = 240


def land_hour(pipeline: Pipeline) -> None:
    """One ingestion hour: readings into 24 recording hours, duplicates, a conflict, bad lines."""
    start = datetime(2026, 3, 9, 10, tzinfo=UTC)
    records = []
    for h in range(24):
        at = (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        records += [r(f"a-{h}", "m1", at, 0.25 + h), r(f"b-{h}", "m2", at, 1.0)]
    pipeline.land(HOUR, "a.json", records)
    pipeline.land(HOUR, "b.json", [*records[:10], r("a-3", "m1", "2026-03-09T13:00:00Z", 99.0)])
    pipeline.land(HOUR, "c.json", "not json\n" + json.dumps(r("old", "m1", "2026-03-01T00:00:00Z", 1.0)) + "\n")


def data_versions(table: Path) -> list[int]:
    """Committed versions of a table after its creation (version 0 is the empty table)."""
    log = table / "_delta_log"
    if not log.is_dir():
        return []
    return sorted(int(name.split(".")[0]) for name in os.listdir(log) if name.endswith(".json"))[1:]


def kill_after_commit(root: Path, env: dict, table: str) -> None:
    """Run ``billing-assets process`` for HOUR and SIGKILL its process group once ``table`` has a data commit."""
    command = [str(Path(sys.executable).parent / "billing-assets"), "process", "--start", "2026-03-10T09"]
    log = open(root / f"killed-{table}.log", "w")
    proc = subprocess.Popen(
        [*command, "--end", "2026-03-10T10"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + COMMIT_TIMEOUT
    try:
        while not data_versions(root / "warehouse" / table):
            assert proc.poll() is None, (root / f"killed-{table}.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"no commit to {table} within {COMMIT_TIMEOUT}s"
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
    assert proc.returncode == -signal.SIGKILL


def committed_hours(warehouse: Path) -> list[str]:
    """Recording hours holding rows in deduplicated_raw."""
    rows = DeltaTable(str(warehouse / "deduplicated_raw")).to_pyarrow_table(columns=["recording_hour"])
    return sorted(set(rows.column("recording_hour").to_pylist()))


def finish(pipeline: Pipeline, hours: list[str]) -> None:
    """What the automation runs after the ingestion: hourly usage for the hours, then their month."""
    pipeline.materialize("hourly_usage", recording_partition_key(hours[0]), recording_partition_key(hours[-1]))
    pipeline.materialize("cumulative_usage", "2026-03")


def test_killed_between_commits_the_rerun_converges_and_reports_the_hours(end_to_end, tmp_path, spark) -> None:
    (tmp_path / "crash").mkdir()
    crashed = Pipeline(tmp_path / "crash", spark)
    land_hour(crashed)
    home = tmp_path / "crash" / "home"
    home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "BILLING_LANDING_URI": str(crashed.landing),
        "BILLING_WAREHOUSE_URI": str(crashed.warehouse),
        "BILLING_SOURCE_DB": str(tmp_path / "no-source.db"),
        "BILLING_SPARK_MASTER": "local[1]",
    }

    # Killed after deduplicated_raw is committed, before quarantine and raw are.
    kill_after_commit(tmp_path / "crash", env, "deduplicated_raw")
    hours = committed_hours(crashed.warehouse)
    assert len(hours) == 24
    assert data_versions(crashed.warehouse / "raw_readings") == []
    assert data_versions(crashed.warehouse / "quarantined_readings") == []

    # Killed again, now between the quarantine commit and the raw one. This command first
    # marks the run it finds abandoned failed and frees its pool slot, else it would wait for ever.
    instance = dg.DagsterInstance.from_config(str(home))
    [first_run] = instance.get_runs()
    kill_after_commit(tmp_path / "crash", env, "quarantined_readings")
    assert data_versions(crashed.warehouse / "raw_readings") == []
    assert len(data_versions(crashed.warehouse / "deduplicated_raw")) == 1  # nothing to change on the retry
    assert instance.get_run_by_id(first_run.run_id).status == dg.DagsterRunStatus.FAILURE
    [second_run] = [run for run in instance.get_runs() if run.run_id != first_run.run_id]
    assert second_run.status == dg.DagsterRunStatus.STARTED
    assert fail_abandoned_runs(instance) == [second_run.run_id]  # what the next command does first
    assert fail_abandoned_runs(instance) == []

    # The second command, before it was killed, announced what the first had committed and
    # never reported (recovery at its start): automation learns of those hours either way.
    crashed.instance = instance
    announced = instance.get_materialized_partitions(dg.AssetKey("deduplicated_raw"))
    assert announced == {recording_partition_key(h) for h in hours}
    crashed.materialize("raw_readings", HOUR)
    finish(crashed, hours)

    (tmp_path / "clean").mkdir()
    clean = Pipeline(tmp_path / "clean", spark)
    land_hour(clean)
    clean.materialize("raw_readings", HOUR)
    finish(clean, hours)
    assert crashed.snapshot() == clean.snapshot()
    assert len(crashed.rows("raw_readings")) == 59 and len(crashed.rows("quarantined_readings")) == 3
