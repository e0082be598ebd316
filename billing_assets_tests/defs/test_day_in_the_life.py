"""A day in the life: data arrives over time; only sensor ticks, automation and the runs they request act.

At the end every table must equal a from-scratch processing of the same files.
"""

import json
import shutil
from collections import Counter, defaultdict
from datetime import UTC, datetime

import dagster as dg

from billing_assets.definitions import ASSETS
from billing_assets.defs.sensors import landing_sensor
from billing_assets.landing.sample import generate_sample
from billing_assets.partitions import RANGE_END, RANGE_START, billing_months, local_days, recording_hours
from billing_assets.source.sample_db import write_sample_source
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.test_pipeline import materialized_partitions

START = datetime(2026, 3, 28, tzinfo=UTC)
HOURS = 48


def owner_of(key: str) -> dg.AssetsDefinition:
    [owner] = [a for a in ASSETS if dg.AssetKey(key) in a.keys]
    return owner


def run_requested(pipeline: Pipeline, evaluation) -> Counter[str]:
    """Execute an automation evaluation's requests as the daemon would with backfills: one run per range.

    Returns how many runs each asset definition (by op name) had.
    """
    by_owner: dict[str, set[str]] = defaultdict(set)
    for result in evaluation.results:
        if result.true_subset.size:
            keys = {ap.partition_key for ap in result.true_subset.expensively_compute_asset_partitions()}
            by_owner[owner_of(result.key.to_user_string()).node_def.name] |= keys
    runs: Counter[str] = Counter()
    for asset in ASSETS:  # graph order: upstream first
        keys = by_owner.get(asset.node_def.name)
        if not keys:
            continue
        partitions_def = asset.partitions_def
        name = next(iter(asset.keys)).to_user_string()
        if name.startswith("dim_"):
            for key in sorted(keys):
                pipeline.materialize(name, key)
                runs[asset.node_def.name] += 1
            continue
        for key_range in partitions_def.subset_with_partition_keys(keys).get_partition_key_ranges(partitions_def):
            pipeline.materialize(name, key_range.start, key_range.end)
            runs[asset.node_def.name] += 1
    return runs


def tick_and_settle(pipeline: Pipeline, defs: dg.Definitions, sensor_cursor, automation_cursor):
    """One landing sensor tick and its runs, then automation until it requests nothing; runs by asset."""
    zone = pipeline.resources["landing"]
    tick = landing_sensor(dg.build_sensor_context(cursor=sensor_cursor, resources={"landing": zone}))
    runs: Counter[str] = Counter()
    for request in tick.run_requests or []:
        if request.partition_key:
            pipeline.materialize("raw_readings", request.partition_key)
        else:
            pipeline.materialize("raw_readings", request.tags[RANGE_START], request.tags[RANGE_END])
        runs["raw_readings"] += 1
    while True:
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=pipeline.instance, cursor=automation_cursor)
        automation_cursor = evaluation.cursor
        done = run_requested(pipeline, evaluation)
        runs += done
        if not done:
            return tick, runs, tick.cursor, automation_cursor


def test_sensor_and_automation_alone_build_the_same_tables_as_a_fresh_run(tmp_path, spark) -> None:
    staging = tmp_path / "staging"
    summary = generate_sample(str(staging), meterpoints=6, start=START, hours=HOURS, seed=11)
    late = {
        "record_id": "late-into-old-folder",
        "meterpoint_id": summary.meterpoints[0],
        "interval_start": "2026-03-27T20:00:00Z",
        "consumption": 0.7,
    }

    (tmp_path / "life").mkdir()
    life = Pipeline(tmp_path / "life", spark)
    write_sample_source(str(life.source_db), summary.meterpoints, START.date())
    defs = dg.Definitions(assets=ASSETS, resources=life.resources)
    sensor_cursor = None
    # The automation sensor runs from the start, before any data: its first evaluation is the baseline.
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=life.instance)
    automation_cursor = baseline.cursor
    runs = run_requested(life, baseline)
    folders = sorted(staging.iterdir())
    for batch_start in range(0, len(folders), 8):
        for folder in folders[batch_start : batch_start + 8]:
            shutil.copytree(folder, life.landing / folder.name)
        if batch_start == 16:  # a file arrives late in a folder processed long ago
            life.land("2026-03-28-00", "zz-late.json", [late])
        tick, done, sensor_cursor, automation_cursor = tick_and_settle(life, defs, sensor_cursor, automation_cursor)
        runs += done
    assert tick.run_requests is None or len(tick.run_requests) <= 1

    (tmp_path / "fresh").mkdir()
    fresh = Pipeline(tmp_path / "fresh", spark)
    shutil.copytree(life.landing, fresh.landing, dirs_exist_ok=True)
    shutil.copyfile(life.source_db, fresh.source_db)
    fresh.materialize("dim_agreement", local_days.get_last_partition_key())
    fresh.materialize("raw_readings", "2026-03-28-00", "2026-03-29-23")
    hours = sorted({row["recording_hour"] for row in fresh.rows("deduplicated_raw")})
    first, last = (datetime.strptime(h, "%Y-%m-%d-%H").replace(tzinfo=UTC) for h in (hours[0], hours[-1]))
    fresh.materialize(
        "hourly_usage", *(recording_hours.get_partition_key_for_timestamp(t.timestamp()) for t in (first, last))
    )
    fresh.materialize(
        "cumulative_usage", *(billing_months.get_partition_key_for_timestamp(t.timestamp()) for t in (first, last))
    )
    days = (local_days.get_first_partition_key(), local_days.get_last_partition_key())
    fresh.materialize("half_hourly_consumption", *days)
    fresh.materialize("active_agreements", *days)

    a, b = life.snapshot(), fresh.snapshot()
    for name in a:
        if a[name] != b[name]:
            extra = [x for x in a[name] if x not in b[name]][:5]
            missing = [x for x in b[name] if x not in a[name]][:5]
            print("DIFF", name, len(a[name]), len(b[name]), "life-only", extra, "fresh-only", missing)
    assert life.snapshot() == fresh.snapshot()
    assert "late-into-old-folder" in {row["record_id"] for row in life.rows("deduplicated_raw")}
    assert life.rows("product_daily_consumption") and life.rows("unmatched_readings")
    print(f"day in the life: {runs.total()} runs; {json.dumps({k: len(v) for k, v in life.snapshot().items()})}")

    # A UI backfill that changes nothing: the raw hours re-run, and nothing downstream is requested.
    before = life.snapshot()
    backfill = life.materialize("raw_readings", "2026-03-28-00", "2026-03-29-23")
    assert {
        e.materialization.metadata["recording_hours_rewritten"].value
        for e in backfill.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("raw_readings")
    } == {0}
    assert materialized_partitions(backfill, "deduplicated_raw") == []
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=life.instance, cursor=automation_cursor)
    assert run_requested(life, evaluation) == Counter()
    assert life.snapshot() == before

    # Two late readings three hours apart, in one file: one run per asset reaches every table.
    meter = "late-meter-0001"
    life.land(
        "2026-03-29-10",
        "zz-two-late.json",
        [
            {
                "record_id": "late-a",
                "meterpoint_id": meter,
                "interval_start": "2026-03-28T01:00:00Z",
                "consumption": 0.5,
            },
            {
                "record_id": "late-b",
                "meterpoint_id": meter,
                "interval_start": "2026-03-28T04:30:00Z",
                "consumption": 0.25,
            },
        ],
    )
    _, runs, _, _ = tick_and_settle(life, defs, sensor_cursor, automation_cursor)
    assert runs == Counter(
        {
            "raw_readings": 1,
            "hourly_usage": 1,
            "cumulative_usage": 1,
            "consumption_gold": 1,  # the readings-based gold tables: one multi-asset
        }
    ), runs
    month_end = max(
        (row for row in life.rows("cumulative_usage") if row["meterpoint_id"] == meter), key=lambda r: r["usage_hour"]
    )
    assert month_end["cumulative_consumption"] == 0.75
    assert {row["record_id"] for row in life.rows("unmatched_readings") if row["meterpoint_id"] == meter} == {
        "late-a",
        "late-b",
    }
