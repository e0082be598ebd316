"""The core chain end to end on real Spark and Delta, against hand-computed expectations."""

import dagster as dg
import pytest

from billing_assets.definitions import ASSETS
from billing_assets.partitions import local_days
from billing_assets_tests.defs.scenario import H1, H2, M3_ID, land_scenario, r, running, ts

CUMULATIVE_SORT = ("meterpoint_id", "usage_hour")


def materialized_partitions(result: dg.ExecuteInProcessResult, asset: str) -> list[str]:
    return sorted(e.partition for e in result.get_asset_materialization_events() if e.asset_key.path == [asset])


def requested_partitions(evaluation) -> dict[str, list[str]]:
    """Asset -> partition keys an automation evaluation requested."""
    return {
        res.key.to_user_string(): sorted(
            ap.partition_key for ap in res.true_subset.expensively_compute_asset_partitions()
        )
        for res in evaluation.results
        if res.true_subset.size
    }


READINGS_GOLD = (
    "avg_consumption_per_half_hour_by_product",
    "half_hourly_consumption",
    "product_daily_consumption",
    "unmatched_readings",
)


def without_dimension_loads(requested: dict[str, list[str]]) -> dict[str, list[str]]:
    """Drop the daily source loads, which are requested for today whenever missing."""
    today = local_days.get_last_partition_key()
    loads = {key: requested.pop(key) for key in list(requested) if key.startswith("dim_")}
    assert all(keys == [today] for keys in loads.values()), loads
    return requested


def run_scenario(pipeline) -> dict[str, dg.ExecuteInProcessResult]:
    land_scenario(pipeline)
    results = {hour: pipeline.materialize("raw_readings", hour) for hour in (H1, H2)}
    pipeline.materialize("hourly_usage", "2026-03-07-07+0000", "2026-03-10-10+0000")
    pipeline.materialize("cumulative_usage", "2026-03")
    return results


def test_scenario_every_table_row_by_row(pipeline) -> None:
    results = run_scenario(pipeline)

    dedup = [
        (
            x["record_id"],
            x["meterpoint_id"],
            x["interval_start"],
            x["consumption"],
            x["recording_hour"],
            x["ingestion_hour"],
        )
        for x in pipeline.rows("deduplicated_raw", ("record_id",))
    ]
    assert dedup == sorted(
        [
            (M3_ID, "m3", ts("2026-03-10T07:00"), 1.0, "2026-03-10-07", H1),
            ("r1", "m1", ts("2026-03-10T07:00"), 0.5, "2026-03-10-07", H1),
            ("r2", "m1", ts("2026-03-10T07:30"), 0.25, "2026-03-10-07", H1),
            ("r3", "m2", ts("2026-03-07T07:30"), 1.5, "2026-03-07-07", H1),
            ("r5", "m1", ts("2026-03-10T08:00"), 0.75, "2026-03-10-08", H2),
            ("r6", "m2", ts("2026-03-10T08:30"), 0.2, "2026-03-10-08", H2),
            ("r8", "m2", ts("2026-03-10T10:05"), 0.4, "2026-03-10-10", H2),
        ]
    )

    raw = [
        (x["ingestion_hour"], x["source_file"], x["line_number"], x["record_id"])
        for x in pipeline.rows("raw_readings", ("ingestion_hour", "source_file", "line_number"))
    ]
    assert raw == [
        (H1, f"ingestion_hour={H1}/a.json", 1, "r1"),
        (H1, f"ingestion_hour={H1}/a.json", 2, "r2"),
        (H1, f"ingestion_hour={H1}/a.json", 3, "r2"),
        (H1, f"ingestion_hour={H1}/a.json", 4, "r3"),
        (H1, f"ingestion_hour={H1}/a.json", 5, "r2"),
        (H1, f"ingestion_hour={H1}/b.json", 1, M3_ID),
        (H2, f"ingestion_hour={H2}/d.json", 1, "r1"),
        (H2, f"ingestion_hour={H2}/d.json", 2, "r5"),
        (H2, f"ingestion_hour={H2}/d.json", 3, "r6"),
        (H2, f"ingestion_hour={H2}/d.json", 5, "r8"),
    ]

    quarantine = [
        (x["ingestion_hour"], x["source_file"].split("/")[1], x["line_number"], x["reason"], x["record_id"])
        for x in pipeline.rows("quarantined_readings", ("ingestion_hour", "source_file", "line_number"))
    ]
    assert quarantine == [
        (H1, "a.json", 5, "conflict", "r2"),
        (H1, "a.json", 6, "malformed_json", None),
        (H1, "a.json", 7, "too_late", "r4"),
        (H1, "c.json", 0, "unreadable_file", None),
        (H2, "d.json", 4, "from_future", "r7"),
    ]

    hourly = [
        (x["meterpoint_id"], x["usage_hour"], x["consumption"], x["reading_count"], x["recording_hour"])
        for x in pipeline.rows("hourly_usage", ("recording_hour", "meterpoint_id"))
    ]
    assert hourly == [
        ("m2", ts("2026-03-07T07:00"), 1.5, 1, "2026-03-07-07"),
        ("m1", ts("2026-03-10T07:00"), 0.75, 2, "2026-03-10-07"),
        ("m3", ts("2026-03-10T07:00"), 1.0, 1, "2026-03-10-07"),
        ("m1", ts("2026-03-10T08:00"), 0.75, 1, "2026-03-10-08"),
        ("m2", ts("2026-03-10T08:00"), 0.2, 1, "2026-03-10-08"),
        ("m2", ts("2026-03-10T10:00"), 0.4, 1, "2026-03-10-10"),
    ]

    expected = (
        running("m1", {"2026-03-10T07:00": 0.75, "2026-03-10T08:00": 0.75}, "2026-03-10T10:00")
        + running("m2", {"2026-03-07T07:00": 1.5, "2026-03-10T08:00": 0.2, "2026-03-10T10:00": 0.4}, "2026-03-10T10:00")
        + running("m3", {"2026-03-10T07:00": 1.0}, "2026-03-10T10:00")
    )
    assert pipeline.rows("cumulative_usage", CUMULATIVE_SORT) == sorted(
        expected, key=lambda x: (x["meterpoint_id"], str(x["usage_hour"]))
    )

    # Conservation, as reported in the materialisation metadata of each ingestion hour.
    for hour, (read, inserted, duplicates, conflicts, quarantined) in {
        H1: (9, 4, 1, 1, 3),
        H2: (5, 3, 1, 0, 1),
    }.items():
        [meta] = [
            e.materialization.metadata
            for e in results[hour].get_asset_materialization_events()
            if e.asset_key.path == ["raw_readings"]
        ]
        figures = {
            k: meta[f"records_{k}"].value for k in ("read", "inserted", "duplicates", "conflicts", "quarantined")
        }
        assert figures == dict(
            read=read, inserted=inserted, duplicates=duplicates, conflicts=conflicts, quarantined=quarantined
        )
        assert figures["read"] == inserted + duplicates + conflicts + quarantined

    # The raw run records exactly the recording hours that received rows.
    assert materialized_partitions(results[H1], "deduplicated_raw") == ["2026-03-07-07+0000", "2026-03-10-07+0000"]
    assert materialized_partitions(results[H2], "deduplicated_raw") == ["2026-03-10-08+0000", "2026-03-10-10+0000"]


def test_rematerialising_any_partition_leaves_every_table_equal(pipeline) -> None:
    run_scenario(pipeline)
    before = pipeline.snapshot()
    assert all(before[name] for name in ("raw_readings", "deduplicated_raw", "hourly_usage", "cumulative_usage"))
    pipeline.materialize("raw_readings", H1)
    pipeline.materialize("raw_readings", H2)
    pipeline.materialize("raw_readings", H1, H2)  # the same hours again, as one range run
    pipeline.materialize("deduplicated_raw", "2026-03-07-07+0000", "2026-03-10-10+0000")  # rebuild from raw
    pipeline.materialize("hourly_usage", "2026-03-10-07+0000")
    pipeline.materialize("hourly_usage", "2026-03-07-07+0000", "2026-03-10-10+0000")
    pipeline.materialize("cumulative_usage", "2026-03")
    assert pipeline.snapshot() == before


def test_processing_order_does_not_change_the_tables(pipeline, tmp_path, spark) -> None:
    """A backfill of an earlier hour after a later one converges to first-arrival-wins."""
    from billing_assets_tests.conftest import Pipeline

    run_scenario(pipeline)
    (tmp_path / "other").mkdir()
    reverse = Pipeline(tmp_path / "other", spark)
    land_scenario(reverse)
    reverse.materialize("raw_readings", H2)
    reverse.materialize("raw_readings", H1)
    for table in ("deduplicated_raw", "raw_readings", "quarantined_readings"):
        assert reverse.rows(table) == pipeline.rows(table), table


def test_late_reading_changes_exactly_its_hour_and_the_rest_of_its_month(pipeline) -> None:
    run_scenario(pipeline)
    defs = dg.Definitions(assets=ASSETS, resources=pipeline.resources)
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=pipeline.instance)
    hourly_before = pipeline.rows("hourly_usage")
    cumulative_before = pipeline.rows("cumulative_usage", CUMULATIVE_SORT)

    pipeline.land("2026-03-10-10", "late.json", [r("late", "m1", "2026-03-07T12:15:00Z", 2.0)])
    raw = pipeline.materialize("raw_readings", "2026-03-10-10")
    assert materialized_partitions(raw, "deduplicated_raw") == ["2026-03-07-12+0000"]

    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=pipeline.instance, cursor=baseline.cursor)
    gold_day = ["2026-03-07"]
    assert without_dimension_loads(requested_partitions(evaluation)) == {
        "hourly_usage": ["2026-03-07-12+0000"],
        **dict.fromkeys(READINGS_GOLD, gold_day),
    }

    pipeline.materialize("hourly_usage", "2026-03-07-12+0000")
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=pipeline.instance, cursor=evaluation.cursor)
    assert without_dimension_loads(requested_partitions(evaluation)) == {"cumulative_usage": ["2026-03"]}
    pipeline.materialize("cumulative_usage", "2026-03")

    hourly_after = pipeline.rows("hourly_usage")
    assert [x for x in hourly_after if x not in hourly_before] == [
        {
            "meterpoint_id": "m1",
            "usage_hour": ts("2026-03-07T12:00"),
            "consumption": 2.0,
            "reading_count": 1,
            "recording_hour": "2026-03-07-12",
        }
    ]
    assert [x for x in hourly_before if x not in hourly_after] == []

    cumulative_after = pipeline.rows("cumulative_usage", CUMULATIVE_SORT)
    assert [x for x in cumulative_after if x["meterpoint_id"] != "m1"] == [
        x for x in cumulative_before if x["meterpoint_id"] != "m1"
    ]
    m1_before = {x["usage_hour"]: x["cumulative_consumption"] for x in cumulative_before if x["meterpoint_id"] == "m1"}
    m1_after = {x["usage_hour"]: x["cumulative_consumption"] for x in cumulative_after if x["meterpoint_id"] == "m1"}
    assert min(m1_after) == ts("2026-03-07T12:00") and max(m1_after) == max(m1_before)
    assert all(m1_after[h] == pytest.approx(m1_before.get(h, 0.0) + 2.0) for h in m1_after)


def test_watermark_boundaries_in_the_pipeline(quick_pipeline) -> None:
    hour = "2026-03-10-09"
    quick_pipeline.land(
        hour,
        "edges.json",
        [
            r("exactly_7d", "m1", "2026-03-03T09:00:00Z", 0.1),
            r("over_7d", "m1", "2026-03-03T08:59:59Z", 0.1),
            r("exactly_drift", "m1", "2026-03-10T10:05:00Z", 0.1),
            r("over_drift", "m1", "2026-03-10T10:05:00.001Z", 0.1),
        ],
    )
    quick_pipeline.materialize("raw_readings", hour)
    assert [x["record_id"] for x in quick_pipeline.rows("deduplicated_raw", ("record_id",))] == [
        "exactly_7d",
        "exactly_drift",
    ]
    assert {x["record_id"]: x["reason"] for x in quick_pipeline.rows("quarantined_readings")} == {
        "over_7d": "too_late",
        "over_drift": "from_future",
    }


def test_malformed_input_the_batch_survives_and_every_bad_record_has_a_reason(quick_pipeline) -> None:
    hour = "2026-03-10-09"
    good = [r(f"g{i}", "m1", f"2026-03-10T08:{i:02d}:00Z", 0.1) for i in range(3)]
    quick_pipeline.land(hour, "good.json", good)
    quick_pipeline.land(
        hour,
        "mixed.json",
        "\n".join(
            [
                "{",
                '{"record_id": "x"}',
                "[]",
                '{"record_id": "g9", "meterpoint_id":'
                ' "m1", "interval_start": "2026-03-10T08:30:00Z", "consumption": -1}',
            ]
        ),
    )
    quick_pipeline.land(hour, "empty.json", b"")
    quick_pipeline.land(hour, "binary.json", bytes(range(256)))
    result = quick_pipeline.materialize("raw_readings", hour)
    assert [x["record_id"] for x in quick_pipeline.rows("deduplicated_raw", ("record_id",))] == ["g0", "g1", "g2"]
    quarantine = quick_pipeline.rows("quarantined_readings", ("source_file", "line_number"))
    assert [(x["source_file"].split("/")[1], x["line_number"], x["reason"]) for x in quarantine] == [
        ("binary.json", 0, "unreadable_file"),
        ("empty.json", 0, "unreadable_file"),
        ("mixed.json", 1, "malformed_json"),
        ("mixed.json", 2, "missing_field"),
        ("mixed.json", 3, "malformed_record"),
        ("mixed.json", 4, "invalid_consumption"),
    ]
    assert all(x["detail"] for x in quarantine)
    [meta] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    assert meta["records_read"].value == 9 and meta["records_quarantined"].value == 6
