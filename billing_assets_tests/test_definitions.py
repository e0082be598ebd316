"""A snapshot of the asset graph: a change to partitions, lineage or automation shows up in review."""

import dagster as dg

from billing_assets.definitions import defs


def describe(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    return f"{type(partitions_def).__name__}(fmt={partitions_def.fmt}, tz={partitions_def.timezone})"


HOURLY_UTC = "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H, tz=UTC)"
HOURLY_LOCAL = "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H%z, tz=Europe/London)"
DAILY = "DailyPartitionsDefinition(fmt=%Y-%m-%d, tz=Europe/London)"
MONTHLY = "MonthlyPartitionsDefinition(fmt=%Y-%m, tz=Europe/London)"
CHANGED = "upstream partition changed (late data and backfills included)"
SOURCE = "today's source snapshot missing"
READINGS_AND_COVERAGE = ["agreement_days", "deduplicated_raw"]

# asset: (partitions, deps, automation condition, group)
EXPECTED = {
    "raw_readings": (HOURLY_UTC, [], None, "raw"),
    "deduplicated_raw": (HOURLY_LOCAL, ["raw_readings"], None, "silver"),
    "hourly_usage": (HOURLY_LOCAL, ["deduplicated_raw"], CHANGED, "usage"),
    "cumulative_usage": (MONTHLY, ["hourly_usage"], CHANGED, "usage"),
    "dim_agreement": (DAILY, [], SOURCE, "dimensions"),
    "dim_product": (DAILY, [], SOURCE, "dimensions"),
    "dim_meterpoint": (DAILY, [], SOURCE, "dimensions"),
    "agreement_days": (DAILY, ["dim_agreement", "dim_product"], None, "dimensions"),
    "half_hourly_consumption": (DAILY, ["deduplicated_raw"], CHANGED, "gold"),
    "product_daily_consumption": (DAILY, READINGS_AND_COVERAGE, CHANGED, "gold"),
    "avg_consumption_per_half_hour_by_product": (DAILY, READINGS_AND_COVERAGE, CHANGED, "gold"),
    "unmatched_readings": (DAILY, READINGS_AND_COVERAGE, CHANGED, "gold"),
    "active_agreements": (DAILY, ["agreement_days"], CHANGED, "gold"),
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
