"""A snapshot of the asset graph: a change to partitions, lineage or automation shows up in review."""

import subprocess
import sys

import dagster as dg

from billing_assets.definitions import defs
from billing_assets.tables.schemas import ALL_TABLES


def describe(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    return f"{type(partitions_def).__name__}(fmt={partitions_def.fmt}, tz={partitions_def.timezone})"


HOURLY_UTC = "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H, tz=UTC)"
HOURLY_LOCAL = "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H%z, tz=Europe/London)"
DAILY = "DailyPartitionsDefinition(fmt=%Y-%m-%d, tz=Europe/London)"
MONTHLY = "MonthlyPartitionsDefinition(fmt=%Y-%m, tz=Europe/London)"
CHANGED = "upstream changed, or left stale by a failed run"
CHANGED_SPAN = "upstream partition changed, gaps up to a late-data window filled"
SOURCE = "today's source snapshot missing"
# Coverage changes count for gold only on days with readings (a source load touches every day).
COVERAGE = "upstream partition changed, no source load in progress"
GOLD = "upstream partition changed (agreement_days only where deduplicated_raw has data)"
READINGS_AND_COVERAGE = ["agreement_days", "deduplicated_raw"]
SETTLEMENT = "a month still being settled: an input changed, or the daily settlement tick"
SETTLED_FROM = ["agreement_days", "cumulative_usage"]

# asset: (partitions, deps, automation condition, group)
EXPECTED = {
    "raw_readings": (HOURLY_UTC, [], None, "raw"),
    "deduplicated_raw": (HOURLY_LOCAL, ["raw_readings"], None, "silver"),
    "hourly_usage": (HOURLY_LOCAL, ["deduplicated_raw"], CHANGED_SPAN, "usage"),
    "cumulative_usage": (MONTHLY, ["hourly_usage"], CHANGED, "usage"),
    "dim_agreement": (DAILY, [], SOURCE, "dimensions"),
    "dim_product": (DAILY, [], SOURCE, "dimensions"),
    "dim_meterpoint": (DAILY, [], SOURCE, "dimensions"),
    "agreement_days": (DAILY, ["dim_agreement", "dim_product"], None, "dimensions"),
    "half_hourly_consumption": (DAILY, ["deduplicated_raw"], GOLD, "gold"),
    "product_daily_consumption": (DAILY, READINGS_AND_COVERAGE, GOLD, "gold"),
    "avg_consumption_per_half_hour_by_product": (DAILY, READINGS_AND_COVERAGE, GOLD, "gold"),
    "unmatched_readings": (DAILY, READINGS_AND_COVERAGE, GOLD, "gold"),
    "active_agreements": (DAILY, ["agreement_days"], COVERAGE, "gold"),
    "statements": (MONTHLY, SETTLED_FROM, SETTLEMENT, "settlement"),
    "statement_adjustments": (MONTHLY, SETTLED_FROM, SETTLEMENT, "settlement"),
}


def test_asset_graph_snapshot() -> None:
    graph = defs().resolve_asset_graph()
    snapshot = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.is_executable, key
        condition = node.automation_condition
        snapshot[key.to_user_string()] = (
            describe(node.partitions_def),
            sorted(k.to_user_string() for k in node.parent_keys),
            condition.get_label() if condition else None,
            node.group_name,
        )
    assert snapshot == EXPECTED


def test_spark_assets_run_one_range_per_run() -> None:
    graph = defs().resolve_asset_graph()
    for name in EXPECTED:
        if name.startswith("dim_"):
            continue  # one load per day: no ranges
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None, name


def test_runs_execute_in_one_process_so_steps_share_one_spark_session() -> None:
    assert defs().executor is dg.in_process_executor


# asset check: blocking (billing invariants block; source problems and freshness only warn)
EXPECTED_CHECKS = {
    "raw_readings:records_conserved": True,
    "raw_readings:deduplicated_raw_unique_record_id": True,
    "raw_readings:deduplicated_raw_recording_hour": True,
    "raw_readings:newest_landing_hour_ingested": False,
    "deduplicated_raw:unique_record_id": True,
    "deduplicated_raw:recording_hour_matches_interval_start": True,
    "hourly_usage:matches_deduplicated_readings": True,
    "cumulative_usage:never_decreases_within_month": True,
    "cumulative_usage:equals_month_to_date_hourly_sum": True,
    "half_hourly_consumption:half_hours_sum_to_hours": True,
    "product_daily_consumption:products_plus_unmatched_sum_to_day": True,
    "avg_consumption_per_half_hour_by_product:sums_to_product_daily": True,
    "dim_agreement:overlapping_agreements": False,
    "dim_agreement:unknown_product": False,
    "dim_agreement:product_without_name": False,
    "dim_agreement:unknown_meterpoint": False,
    "dim_agreement:zero_length_agreements": False,
    "statements:append_only": True,
    "statements:too_late_readings_readable": False,
    "statements:unchanged_after_final": False,
}


def test_asset_checks_snapshot_and_the_freshness_schedule() -> None:
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    snapshot = {key.to_user_string(): graph.get_check_spec(key).blocking for key in graph.asset_check_keys}
    assert snapshot == EXPECTED_CHECKS
    schedule = definitions.resolve_schedule_def("landing_freshness_every_15_minutes")
    assert schedule.cron_schedule == "*/15 * * * *"
    job = definitions.resolve_job_def(schedule.job_name)
    assert job.asset_layer.asset_graph.asset_check_keys == {
        dg.AssetCheckKey(dg.AssetKey("raw_readings"), "newest_landing_hour_ingested")
    }


LAYERS = {"raw", "silver", "usage", "dimensions", "gold", "settlement"}
SOURCE_LOADS = {"dim_agreement", "dim_product", "dim_meterpoint"}
#: Settlement reads pinned Delta versions with delta-rs and polars: no Spark.
SETTLEMENT = {"statements", "statement_adjustments"}


def test_every_asset_explains_itself_description_group_kinds_and_its_table_columns() -> None:
    graph = defs().resolve_asset_graph()
    tables = {spec.name: spec for spec in ALL_TABLES}
    for key in graph.get_all_asset_keys():
        node, name = graph.get(key), key.to_user_string()
        assert node.description and "row" in node.description, name
        assert node.group_name in LAYERS, name
        # raw_readings adds "s3" when the landing zone is on S3 (defs/test_metadata.py).
        engine = "polars" if name in SETTLEMENT else "spark"
        assert set(node.kinds) == {engine, "delta"} | ({"sqlite"} if name in SOURCE_LOADS else set()), name
        spec = tables[node.metadata["dagster/table_name"]]
        assert spec.name == name
        columns = node.metadata["dagster/column_schema"].columns
        assert [(c.name, c.type) for c in columns] == [(f.name, str(f.type)) for f in spec.schema], name
        assert [c.name for c in columns if c.description == "partition column"] == [
            c for c in [spec.partition_by] if c
        ], name


def test_the_code_location_does_not_load_the_benchmark_tool() -> None:
    # In a fresh interpreter: this test process may have imported the bench for its own tests.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, billing_assets.definitions; "
            "print(sorted(m for m in sys.modules if 'bench' in m or m in ('duckdb', 'psutil')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]"
