"""A day in the life: data arrives over time; only sensor ticks, automation and the runs they request act.

At the end every table must equal a from-scratch processing of the same files.
"""

import json
import shutil
from collections import Counter
from datetime import UTC, datetime

import dagster as dg

from billing_assets.automation import automation_sensor
from billing_assets.definitions import ASSETS
from billing_assets.defs.sensors import landing_sensor
from billing_assets.landing.sample import generate_sample
from billing_assets.partitions import RANGE_END, RANGE_START, billing_months, local_days, range_tags, recording_hours
from billing_assets.source.sample_db import write_sample_source
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.test_pipeline import materialized_partitions

#: Several Dagster runs per test: deselected by the inner loop (-m "not slow and not scenario").

START = datetime(2026, 3, 28, tzinfo=UTC)
HOURS = 48


def owner_of(key: dg.AssetKey) -> dg.AssetsDefinition:
    [owner] = [a for a in ASSETS if key in a.keys]
    return owner


def automation_tick(pipeline: Pipeline, defs: dg.Definitions, cursor) -> tuple[list[dg.RunRequest], str | None]:
    """One tick of the code location's automation sensor, as the daemon runs it: its run requests and cursor."""
    repository = defs.get_repository_def()
    data = repository.get_sensor_def(automation_sensor.name).evaluate_tick(
        dg.build_sensor_context(instance=pipeline.instance, cursor=cursor, repository_def=repository)
    )
    return list(data.run_requests or []), data.cursor


def launch(pipeline: Pipeline, requests: list[dg.RunRequest]) -> Counter[str]:
    """Execute run requests as the daemon would, one run each in order; how many runs each asset definition had."""
    runs: Counter[str] = Counter()
    for request in requests:
        # The landing sensor targets the ingestion job (raw_readings); automation names its assets.
        selection = request.asset_selection or [dg.AssetKey("raw_readings")]
        partitions = (
            {"partition_key": request.partition_key}
            if request.partition_key
            else {"tags": range_tags(request.tags[RANGE_START], request.tags[RANGE_END])}
        )
        result = dg.materialize(
            ASSETS, selection=selection, resources=pipeline.resources, instance=pipeline.instance, **partitions
        )
        assert result.success
        runs.update({owner_of(key).node_def.name for key in selection})
    return runs


def tick_and_settle(pipeline: Pipeline, defs: dg.Definitions, sensor_cursor, automation_cursor):
    """One landing sensor tick and its runs, then automation until it requests nothing; runs by asset."""
    zone = pipeline.resources["landing"]
    tick = landing_sensor(dg.build_sensor_context(cursor=sensor_cursor, resources={"landing": zone}))
    runs = launch(pipeline, list(tick.run_requests or []))
    while True:
        requests, automation_cursor = automation_tick(pipeline, defs, automation_cursor)
        done = launch(pipeline, requests)
        runs += done
        if not done:
            return tick, runs, tick.cursor, automation_cursor


def test_sensor_and_automation_alone_build_the_same_tables_as_a_fresh_run(end_to_end, tmp_path, spark) -> None:
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
    defs = dg.Definitions(assets=ASSETS, sensors=[automation_sensor], resources=life.resources)
    sensor_cursor = None
    # The automation sensor runs from the start, before any data: its first evaluation is the baseline.
    requests, automation_cursor = automation_tick(life, defs, None)
    runs = launch(life, requests)
    folders = sorted(staging.iterdir())
    # Three arrivals of 16 hours each: the clock change (hour 25) and the late file arrive in the second.
    for batch_start in range(0, len(folders), 16):
        for folder in folders[batch_start : batch_start + 16]:
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
    fresh.materialize("statements", billing_months.get_first_partition_key(), billing_months.get_last_partition_key())

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
    requests, automation_cursor = automation_tick(life, defs, automation_cursor)
    assert requests == []
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
    _, runs, sensor_cursor, automation_cursor = tick_and_settle(life, defs, sensor_cursor, automation_cursor)
    assert runs == Counter(
        {
            "raw_readings": 1,
            "hourly_usage": 1,
            "cumulative_usage": 1,
            "consumption_gold": 1,  # the readings-based gold tables: one multi-asset
            "settle_statements": 1,  # March's inputs changed: a decision (no run: March is not over)
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

    # A reading of March's last hour lands in the ingestion hour after March's initial date (1
    # April 23:00 UTC): March changed and, by the data's clock, is due. The automation alone
    # writes its initial statement, which bills what cumulative_usage holds for the month, but
    # at the latest value of the readings the sample re-sent with another value.
    life.land(
        "2026-04-02-00",
        "zz-month-end.json",
        [
            {
                "record_id": "month-end",
                "meterpoint_id": meter,
                "interval_start": "2026-03-31T22:00:00Z",
                "consumption": 1.0,
            }
        ],
    )
    _, runs, _, _ = tick_and_settle(life, defs, sensor_cursor, automation_cursor)
    assert runs["settle_statements"] == 1, runs
    statements = life.rows("statements")
    assert {(row["billing_month"], row["run"], row["run_kind"]) for row in statements} == {("2026-03", 1, "initial")}
    totals: dict[str, float] = {}
    for row in life.rows("cumulative_usage"):
        if row["billing_month"] == "2026-03":
            totals[row["meterpoint_id"]] = max(totals.get(row["meterpoint_id"], 0.0), row["cumulative_consumption"])
    accepted: dict[str, float] = {}
    for row in statements:
        accepted[row["meterpoint_id"]] = accepted.get(row["meterpoint_id"], 0.0) + row["kwh"] - row["correction_kwh"]
    assert accepted.keys() == totals.keys()
    assert all(abs(accepted[m] - totals[m]) < 1e-9 for m in totals), {m: (accepted[m], totals[m]) for m in totals}
    assert totals[meter] == 1.75  # the two late readings and the month's last one
    conflicts = [row for row in life.rows("quarantined_readings") if row["reason"] == "conflict"]
    assert conflicts and sum(row["corrected_count"] for row in statements) == len({r["record_id"] for r in conflicts})
