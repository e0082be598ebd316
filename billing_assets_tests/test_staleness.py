"""Stale partitions from the instance alone: inputs materialised after a partition, or a partition never made."""

import dagster as dg

from billing_assets.staleness import Gate, newest_input, stale_partitions

HOURS = dg.HourlyPartitionsDefinition(start_date="2026-03-28-00:00", timezone="Europe/London")
DAYS = dg.DailyPartitionsDefinition(start_date="2026-03-28", timezone="Europe/London")
UP, DATA, DOWN = dg.AssetKey("up"), dg.AssetKey("data"), dg.AssetKey("down")


def materialize(instance: dg.DagsterInstance, key: dg.AssetKey, *partitions: str) -> None:
    for partition in partitions:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def test_newest_input_maps_hours_to_the_local_day_holding_them() -> None:
    # 29 March 2026 is the spring change in London: the day has 23 hours, 00:00 GMT to 23:00 BST.
    ids = {"2026-03-28-23:00": 5, "2026-03-29-00:00": 7, "2026-03-29-23:00": 9, "2026-03-30-00:00": 2}
    assert newest_input(HOURS, ids, DAYS) == {"2026-03-28": 5, "2026-03-29": 9, "2026-03-30": 2}


def test_a_partition_is_stale_when_an_input_is_newer_or_it_was_never_made() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize(instance, UP, "2026-03-28", "2026-03-29", "2026-03-30")
    materialize(instance, DOWN, "2026-03-28", "2026-03-29")
    materialize(instance, UP, "2026-03-29")  # after down's: a late change, or a run that died
    assert stale_partitions(instance, [DOWN], DAYS, {UP: DAYS}) == {"2026-03-29", "2026-03-30"}

    materialize(instance, DOWN, "2026-03-29", "2026-03-30")
    assert stale_partitions(instance, [DOWN], DAYS, {UP: DAYS}) == set()


def test_a_multi_asset_is_as_old_as_its_oldest_spec() -> None:
    instance = dg.DagsterInstance.ephemeral()
    other = dg.AssetKey("down_too")
    materialize(instance, DOWN, "2026-03-28")
    materialize(instance, UP, "2026-03-28")
    materialize(instance, other, "2026-03-28")
    assert stale_partitions(instance, [DOWN, other], DAYS, {UP: DAYS}) == {"2026-03-28"}


def test_a_gated_input_counts_only_where_the_data_input_has_partitions() -> None:
    instance = dg.DagsterInstance.ephemeral()
    materialize(instance, UP, "2026-03-28", "2026-03-29", "2026-03-30")  # coverage of every day
    materialize(instance, DATA, "2026-03-29-10:00")  # readings on one day only
    gate = Gate(gated=UP, data=DATA)
    assert stale_partitions(instance, [DOWN], DAYS, {UP: DAYS, DATA: HOURS}, gate) == {"2026-03-29"}
