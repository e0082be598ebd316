"""``SpanOf``: changed hours a few apart are one requested range; hours a late-data window apart are not."""

from datetime import datetime, timedelta

import dagster as dg

from billing_assets.automation import MAX_FILLED_GAP, UPSTREAM_CHANGED_SPAN

HOURS = dg.HourlyPartitionsDefinition(start_date="2026-03-01-00", fmt="%Y-%m-%d-%H")


@dg.asset(partitions_def=HOURS)
def upstream() -> None: ...


@dg.asset(deps=[upstream], partitions_def=HOURS, automation_condition=UPSTREAM_CHANGED_SPAN)
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
