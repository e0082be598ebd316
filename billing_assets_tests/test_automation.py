"""``SpanOf``: changed hours a few apart are one requested range; hours a late-data window apart are not.

``RangedAutomationSensor``: the sensor launches each range as one run, not a run per hour or a backfill.
"""

from datetime import datetime, timedelta

import dagster as dg

from billing_assets.automation import (
    MAX_FILLED_GAP,
    PRIORITY_TAG,
    UPSTREAM_CHANGED,
    NoRunOf,
    RangedAutomationSensor,
    SpanOf,
    ranged_requests,
)
from billing_assets.definitions import defs
from billing_assets.partitions import range_tags

GOLD_TABLES = (
    "half_hourly_consumption",
    "product_daily_consumption",
    "avg_consumption_per_half_hour_by_product",
    "unmatched_readings",
)
HOURS = dg.HourlyPartitionsDefinition(start_date="2026-03-01-00", fmt="%Y-%m-%d-%H")


@dg.asset(partitions_def=HOURS)
def upstream() -> None: ...


# hourly_usage's condition, without the wait for ingestion runs (no raw_readings in this graph).
@dg.asset(deps=[upstream], partitions_def=HOURS, automation_condition=SpanOf(UPSTREAM_CHANGED))
def downstream() -> None: ...


def requested_after_updates(instance: dg.DagsterInstance, cursor, hours: list[str]):
    """Record materialisations of ``upstream`` for the hours, then evaluate; the keys requested and the cursor."""
    for hour in hours:
        assert dg.materialize([upstream], instance=instance, partition_key=hour).success
    result = dg.evaluate_automation_conditions(
        defs=dg.Definitions(assets=[upstream, downstream]), instance=instance, cursor=cursor
    )
    [requested] = [r for r in result.results if r.key == downstream.key]
    keys = {ap.partition_key for ap in requested.true_subset.expensively_compute_asset_partitions()}
    return sorted(keys), result.cursor


def test_gaps_are_filled_up_to_a_late_data_window_and_no_further() -> None:
    instance = dg.DagsterInstance.ephemeral()
    _, cursor = requested_after_updates(instance, None, [])  # the sensor's first tick: a baseline

    keys, cursor = requested_after_updates(instance, cursor, ["2026-03-10-01", "2026-03-10-04"])
    assert keys == ["2026-03-10-01", "2026-03-10-02", "2026-03-10-03", "2026-03-10-04"]

    # Handled partitions are not requested again until upstream changes again.
    keys, cursor = requested_after_updates(instance, cursor, [])
    assert keys == []

    # A gap of exactly a week (the late-data window) is filled: one run.
    keys, cursor = requested_after_updates(instance, cursor, ["2026-03-01-00", "2026-03-08-01"])
    assert len(keys) == 7 * 24 + 2 and keys[0] == "2026-03-01-00" and keys[-1] == "2026-03-08-01"

    # Further apart: a re-processing of two distant periods stays two ranges.
    gap = datetime(2026, 3, 20, 12) - datetime(2026, 3, 12, 1)
    assert gap > MAX_FILLED_GAP > timedelta(days=7)
    keys, cursor = requested_after_updates(instance, cursor, ["2026-03-12-00", "2026-03-20-12"])
    assert keys == ["2026-03-12-00", "2026-03-20-12"]


def test_the_sensor_launches_one_run_per_range_with_dagsters_range_tags() -> None:
    instance = dg.DagsterInstance.ephemeral()
    sensor = RangedAutomationSensor("automation", target=dg.AssetSelection.all(), run_tags={"team": "billing"})
    repository = dg.Definitions(assets=[upstream, downstream], sensors=[sensor]).get_repository_def()

    def tick(cursor, hours: list[str]):
        for hour in hours:
            assert dg.materialize([upstream], instance=instance, partition_key=hour).success
        data = repository.get_sensor_def("automation").evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=cursor, repository_def=repository)
        )
        return data.run_requests or [], data.cursor

    requests, cursor = tick(None, [])
    assert requests == []
    # Two late hours and a distant one: the gap between the first two is filled, the third stays apart.
    requests, cursor = tick(cursor, ["2026-03-10-01", "2026-03-10-04", "2026-03-25-00"])
    tags = {"team": "billing", "dagster/sensor_name": "automation"}
    assert [(r.asset_selection, r.partition_key, dict(r.tags)) for r in requests] == [
        ([downstream.key], None, {**tags, **range_tags("2026-03-10-01", "2026-03-10-04")}),
        ([downstream.key], "2026-03-25-00", {**tags, "dagster/partition": "2026-03-25-00"}),
    ]
    # Requested partitions are handled: the next tick requests nothing.
    requests, _ = tick(cursor, [])
    assert requests == []


def test_a_multi_asset_stays_whole_each_asset_gets_its_range_and_usage_goes_first() -> None:
    graph = defs().resolve_asset_graph()
    gold = [dg.AssetKey(name) for name in GOLD_TABLES]
    active, hourly = dg.AssetKey("active_agreements"), dg.AssetKey("hourly_usage")
    # Dagster's requests: one per partition, every asset of that partition in it.
    days = ["2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29"]
    requests = [
        dg.RunRequest(asset_selection=[active, *gold] if day in days[1:3] else [active], partition_key=day)
        for day in days
    ] + [
        dg.RunRequest(asset_selection=[hourly], partition_key=hour)
        for hour in ("2026-03-27-10+0000", "2026-03-27-11+0000")
    ]

    ranged = ranged_requests(requests, graph)
    assert [(sorted(k.to_user_string() for k in r.asset_selection), r.partition_key, r.tags) for r in ranged] == [
        (["hourly_usage"], None, {**range_tags("2026-03-27-10+0000", "2026-03-27-11+0000"), PRIORITY_TAG: "1"}),
        (["active_agreements"], None, range_tags("2026-03-26", "2026-03-29")),
        (sorted(GOLD_TABLES), None, range_tags("2026-03-27", "2026-03-28")),
    ]


DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-01")
SEEN_DURING_LOAD: list[int] = []


@dg.asset(partitions_def=DAYS)
def load(context: dg.AssetExecutionContext) -> None:
    # Evaluated from inside the load's own run, which is in progress right now.
    SEEN_DURING_LOAD.append(requested_days(context.instance))


@dg.asset(deps=[load], partitions_def=DAYS, automation_condition=NoRunOf("load"))
def after_load() -> None: ...


def requested_days(instance: dg.DagsterInstance) -> int:
    result = dg.evaluate_automation_conditions(defs=dg.Definitions(assets=[load, after_load]), instance=instance)
    [after] = [r for r in result.results if r.key == after_load.key]
    return after.true_subset.size


def test_nothing_downstream_starts_while_the_source_load_runs() -> None:
    instance = dg.DagsterInstance.ephemeral()
    idle = requested_days(instance)
    assert idle > 0  # every candidate day while nothing runs
    assert dg.materialize([load], instance=instance, partition_key="2026-03-10").success
    assert SEEN_DURING_LOAD == [0]
    assert requested_days(instance) == idle
