"""A snapshot of the asset graph: a change to partitions, lineage or automation shows up in review."""

import dagster as dg

from billing_assets.definitions import defs


def describe(partitions_def) -> str | None:
    if partitions_def is None:
        return None
    return f"{type(partitions_def).__name__}(fmt={partitions_def.fmt}, tz={partitions_def.timezone})"


def test_asset_graph_snapshot() -> None:
    graph = defs().resolve_asset_graph()
    snapshot = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        condition = node.automation_condition
        snapshot[key.to_user_string()] = {
            "partitions": describe(node.partitions_def),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "automation": condition.get_label() if condition else None,
            "group": node.group_name,
            "executable": node.is_executable,
        }
    assert snapshot == {
        "cumulative_usage": {
            "partitions": "MonthlyPartitionsDefinition(fmt=%Y-%m, tz=Europe/London)",
            "deps": ["hourly_usage"],
            "automation": "upstream partition changed (late data and backfills included)",
            "group": "usage",
            "executable": True,
        },
        "deduplicated_raw": {
            "partitions": "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H%z, tz=Europe/London)",
            "deps": ["raw_readings"],
            "automation": None,
            "group": "silver",
            "executable": True,
        },
        "hourly_usage": {
            "partitions": "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H%z, tz=Europe/London)",
            "deps": ["deduplicated_raw"],
            "automation": "upstream partition changed (late data and backfills included)",
            "group": "usage",
            "executable": True,
        },
        "raw_readings": {
            "partitions": "HourlyPartitionsDefinition(fmt=%Y-%m-%d-%H, tz=UTC)",
            "deps": [],
            "automation": None,
            "group": "raw",
            "executable": True,
        },
    }


def test_spark_assets_run_one_range_per_run() -> None:
    graph = defs().resolve_asset_graph()
    for name in ("raw_readings", "deduplicated_raw", "hourly_usage", "cumulative_usage"):
        policy = graph.get(dg.AssetKey(name)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run is None, name


def test_runs_execute_in_one_process_so_steps_share_one_spark_session() -> None:
    assert defs().executor is dg.in_process_executor
