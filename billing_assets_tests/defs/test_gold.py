"""Dimensions and gold tables on real Spark and Delta, against hand-computed expectations."""

import json
import sqlite3
from datetime import date

import dagster as dg
import pytest

from billing_assets.definitions import ASSETS
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r, ts
from billing_assets_tests.defs.test_pipeline import requested_partitions

#: Several Dagster runs per test: deselected by the inner loop (-m "not slow and not scenario").

# Shaped like the case study's database: text product ids, an integer ``id`` surrogate that
# nothing references, integer agreement ids (read as the strings "1", "2", ...), DATE columns.
STANDARD, STANDARD_TOO, FIXED, NAMELESS = "1dff0f3048", "2c8e41b7d0", "3a9f00c1e2", "4b7d2e9f61"
PRODUCTS = [
    (1, STANDARD, "Standard", 1),
    (2, STANDARD_TOO, "Standard", 1),
    (3, FIXED, "Fixed", 0),
    (4, NAMELESS, None, 1),
]
METERPOINTS = [("m1", "London"), ("m2", "Wales"), ("m3", "Scotland"), ("m4", "London"), ("m5", "Wales")]
AGREEMENTS = [
    (1, "2026-01-01", "2026-03-28", STANDARD, "m1", "A1"),  # switches product on 28 March ...
    (2, "2026-03-28", None, FIXED, "m1", "A1"),  # ... to this open-ended one
    (3, "2026-01-01", None, STANDARD_TOO, "m2", "A2"),  # another product id with the same display name
    (4, "2026-03-28", "2026-03-28", FIXED, "m3", "A3"),  # zero-length: covers nothing
]  # m4 has readings but never an agreement
MARCH, OCTOBER = "2026-03-30-00", "2026-10-26-00"
SOURCE_SCHEMA = (
    "CREATE TABLE product (id INTEGER, product_id TEXT, display_name TEXT, is_variable INTEGER);"
    "CREATE TABLE meterpoint (meterpoint_id TEXT, region TEXT);"
    "CREATE TABLE agreement (agreement_id INTEGER, agreement_valid_from DATE, agreement_valid_to DATE,"
    " product_id TEXT, meterpoint_id TEXT, account_id TEXT);"
)


def write_source(path, agreements=AGREEMENTS) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(SOURCE_SCHEMA)
        conn.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", PRODUCTS)
        conn.executemany("INSERT INTO meterpoint VALUES (?, ?)", METERPOINTS)
        conn.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", agreements)
    conn.close()


def land_readings(pipeline) -> None:
    pipeline.land(
        MARCH,
        "readings.json",
        [
            r("a", "m1", "2026-03-27T10:00:00Z", 1.0),
            r("b", "m2", "2026-03-27T10:00:00Z", 2.0),
            r("c", "m1", "2026-03-28T10:00:00Z", 0.5),  # switch day: the new agreement only
            r("d", "m1", "2026-03-28T10:30:00Z", 0.25),
            r("e", "m2", "2026-03-28T10:00:00Z", 1.0),
            r("f", "m3", "2026-03-28T10:00:00Z", 3.0),  # only a zero-length agreement
            r("g", "m4", "2026-03-28T10:00:00Z", 4.0),  # no agreement at all
            r("h", "m2", "2026-03-29T00:30:00Z", 1.0),  # spring change: 00:30 GMT, period 2
            r("i", "m2", "2026-03-29T01:00:00Z", 1.0),  # 02:00 BST, period 3
            r("j", "m2", "2026-03-29T22:30:00Z", 1.0),  # 23:30 BST, period 46
        ],
    )
    pipeline.land(
        OCTOBER,
        "readings.json",
        [
            r("k", "m2", "2026-10-24T23:00:00Z", 1.0),  # 00:00 BST on 25 October, period 1
            r("l", "m2", "2026-10-25T23:30:00Z", 1.0),  # 23:30 GMT, period 50
        ],
    )
    # The repeated hour as naive local time: first 01:30 is summer time, the second winter time.
    pipeline.land(
        OCTOBER,
        "legacy.json",
        json.dumps(
            {
                "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
                "data": [["2026-10-25 01:30:00", 1.0, "m2"], ["2026-10-25 01:30:00", 1.0, "m2"]],
            }
        ),
    )


def build_gold(pipeline):
    """Load the source, ingest the readings, and build every gold table for the scenario's days."""
    write_source(pipeline.source_db)
    land_readings(pipeline)
    pipeline.materialize("dim_agreement", "2026-03-30")
    for hour in (MARCH, OCTOBER):
        pipeline.materialize("raw_readings", hour)
    for first, last in (("2026-03-27", "2026-03-29"), ("2026-10-25", "2026-10-25")):
        pipeline.materialize("half_hourly_consumption", first, last)
    pipeline.materialize("active_agreements", "2026-03-27", "2026-03-29")
    return pipeline


@pytest.fixture(scope="module")
def gold(tmp_path_factory, spark, end_to_end):
    """Built once for the read-only tests of this module."""
    return build_gold(Pipeline(tmp_path_factory.mktemp("gold"), spark))


def project(rows, *columns):
    return [tuple(row[c] for c in columns) for row in rows]


def test_half_hourly_consumption_with_settlement_periods_on_clock_change_days(gold) -> None:
    rows = gold.rows("half_hourly_consumption", ("interval_start",))
    assert project(
        rows, "interval_start", "settlement_date", "settlement_period", "meterpoint_count", "consumption"
    ) == [
        (ts("2026-03-27T10:00"), date(2026, 3, 27), 21, 2, 3.0),
        (ts("2026-03-28T10:00"), date(2026, 3, 28), 21, 4, 8.5),
        (ts("2026-03-28T10:30"), date(2026, 3, 28), 22, 1, 0.25),
        (ts("2026-03-29T00:30"), date(2026, 3, 29), 2, 1, 1.0),
        (ts("2026-03-29T01:00"), date(2026, 3, 29), 3, 1, 1.0),
        (ts("2026-03-29T22:30"), date(2026, 3, 29), 46, 1, 1.0),  # the short day has 46 periods
        (ts("2026-10-24T23:00"), date(2026, 10, 25), 1, 1, 1.0),
        (ts("2026-10-25T00:30"), date(2026, 10, 25), 4, 1, 1.0),  # 01:30 BST
        (ts("2026-10-25T01:30"), date(2026, 10, 25), 6, 1, 1.0),  # 01:30 GMT
        (ts("2026-10-25T23:30"), date(2026, 10, 25), 50, 1, 1.0),  # the long day has 50 periods
    ]


def test_product_tables_split_the_switch_day_and_group_by_display_name(gold) -> None:
    daily = gold.rows("product_daily_consumption", ("date", "product_display_name"))
    assert project(daily, "date", "product_display_name", "meterpoint_count", "consumption") == [
        (date(2026, 3, 27), "Standard", 2, 3.0),  # m1 (STANDARD) and m2 (STANDARD_TOO)
        (date(2026, 3, 28), "Fixed", 1, 0.75),  # m1 after the switch, no double counting
        (date(2026, 3, 28), "Standard", 1, 1.0),
        (date(2026, 3, 29), "Standard", 1, 3.0),
        (date(2026, 10, 25), "Standard", 1, 4.0),
    ]
    avg = gold.rows("avg_consumption_per_half_hour_by_product", ("interval_start", "product_display_name"))
    assert project(avg, "interval_start", "product_display_name", "meterpoint_count", "consumption", "avg_consumption")[
        :4
    ] == [
        (ts("2026-03-27T10:00"), "Standard", 2, 3.0, 1.5),
        (ts("2026-03-28T10:00"), "Fixed", 1, 0.5, 0.5),
        (ts("2026-03-28T10:00"), "Standard", 1, 1.0, 1.0),
        (ts("2026-03-28T10:30"), "Fixed", 1, 0.25, 0.25),
    ]
    assert len(avg) == 4 + 3 + 4


def test_unmatched_readings_are_listed_not_lost(gold) -> None:
    rows = gold.rows("unmatched_readings", ("record_id",))
    assert project(rows, "record_id", "meterpoint_id", "consumption", "reason", "settlement_date") == [
        ("f", "m3", 3.0, "no_agreement", date(2026, 3, 28)),
        ("g", "m4", 4.0, "no_agreement", date(2026, 3, 28)),
    ]


def test_every_accepted_reading_appears_exactly_once_in_product_tables_or_unmatched(gold) -> None:
    readings = gold.rows("deduplicated_raw")
    product_total = sum(x["consumption"] for x in gold.rows("product_daily_consumption"))
    unmatched = gold.rows("unmatched_readings")
    half_hourly_total = sum(x["consumption"] for x in gold.rows("half_hourly_consumption"))
    assert len(readings) == 14
    assert product_total + sum(x["consumption"] for x in unmatched) == pytest.approx(
        sum(x["consumption"] for x in readings)
    )
    assert half_hourly_total == pytest.approx(sum(x["consumption"] for x in readings))
    matched_ids = {x["record_id"] for x in readings} - {x["record_id"] for x in unmatched}
    assert len(matched_ids) + len(unmatched) == len(readings)


def check_results(pipeline, result: dg.ExecuteInProcessResult) -> dict:
    """Check name -> evaluation, from one run."""
    records = pipeline.instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = [r.event_log_entry.dagster_event.event_specific_data for r in records]
    return {e.check_name: e for e in evaluations}


def test_source_checks_pass_on_a_clean_source_and_flag_each_problem(pipeline) -> None:
    write_source(pipeline.source_db, AGREEMENTS[:3])
    clean = check_results(pipeline, pipeline.materialize("dim_agreement", "2026-03-30"))
    assert {name: c.passed for name, c in clean.items()} == dict.fromkeys(
        [
            "overlapping_agreements",
            "unknown_product",
            "product_without_name",
            "unknown_meterpoint",
            "zero_length_agreements",
        ],
        True,
    )

    broken = [
        *AGREEMENTS,
        (5, "2026-02-01", "2026-04-01", STANDARD_TOO, "m2", "A2"),  # overlaps agreement 3
        (6, "2026-01-01", None, "ffffffffff", "m4", "A4"),  # no such product
        (7, "2026-01-01", None, STANDARD, "m9", "A9"),  # no such meterpoint
        (8, "2026-01-01", None, NAMELESS, "m5", "A5"),  # a product without a display name
    ]
    write_source(pipeline.source_db, broken)
    found = check_results(pipeline, pipeline.materialize("dim_agreement", "2026-03-31"))
    assert {name: c.metadata["agreement_ids"].value for name, c in found.items()} == {
        "overlapping_agreements": ["3", "5"],
        "unknown_product": ["6"],
        "product_without_name": ["8"],
        "unknown_meterpoint": ["7"],
        "zero_length_agreements": ["4"],
    }
    assert not any(c.passed for c in found.values())
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in found.values())
    # Overlap resolved, never double counted: one covering agreement per meterpoint and day.
    covering = [(x["meterpoint_id"], x["date"]) for x in pipeline.rows("agreement_days") if x["covers_readings"]]
    assert len(covering) == len(set(covering))
    on_overlap = [
        x["agreement_id"]
        for x in pipeline.rows("agreement_days")
        if x["covers_readings"] and x["meterpoint_id"] == "m2" and x["date"] == date(2026, 3, 1)
    ]
    assert on_overlap == ["5"]  # the later-starting agreement wins
    reasons = {x["agreement_id"]: x["unmatched_reason"] for x in pipeline.rows("agreement_days")}
    assert reasons == {
        "1": None,
        "2": None,
        "3": None,
        "5": None,
        "6": "unknown_product",
        "7": None,
        "8": "product_without_name",
    }


def test_active_agreements_rule(gold) -> None:
    rows = gold.rows("active_agreements", ("as_of_date", "agreement_id"))
    assert project(
        rows, "as_of_date", "agreement_id", "meterpoint_id", "product_display_name", "product_is_variable"
    ) == [
        (date(2026, 3, 27), "1", "m1", "Standard", True),
        (date(2026, 3, 27), "3", "m2", "Standard", True),
        (date(2026, 3, 28), "3", "m2", "Standard", True),  # 1 ended, 2 only starts: valid_from < D is strict
        (date(2026, 3, 29), "2", "m1", "Fixed", False),
        (date(2026, 3, 29), "3", "m2", "Standard", True),
    ]


def test_source_change_keeps_history_and_refreshes_exactly_the_affected_gold_days(pipeline) -> None:
    gold = build_gold(pipeline)
    defs = dg.Definitions(assets=ASSETS, resources=gold.resources)
    baseline = dg.evaluate_automation_conditions(defs=defs, instance=gold.instance)
    changed = [
        (1, "2026-01-01", "2026-03-27", STANDARD, "m1", "A1"),  # ends a day earlier: a day with readings
        AGREEMENTS[1],
        (3, "2026-01-03", None, STANDARD_TOO, "m2", "A2"),  # starts two days later: days without readings
        AGREEMENTS[3],
    ]
    write_source(gold.source_db, changed)
    result = gold.materialize("dim_agreement", "2026-03-31")

    history = gold.rows("dim_agreement", ("agreement_id", "valid_from_date"))
    versions = [x for x in history if x["agreement_id"] == "1"]
    assert project(versions, "agreement_valid_to", "valid_from_date", "valid_to_date", "is_current") == [
        (date(2026, 3, 28), date(2026, 3, 30), date(2026, 3, 31), False),
        (date(2026, 3, 27), date(2026, 3, 31), None, True),
    ]
    assert all(x["is_current"] for x in history if x["agreement_id"] not in ("1", "3"))
    assert sorted(
        e.partition for e in result.get_asset_materialization_events() if e.asset_key.path == ["agreement_days"]
    ) == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-03-27"]

    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=gold.instance, cursor=baseline.cursor)
    requested = requested_partitions(evaluation)
    # Coverage changed on four days; only one holds readings, so gold has one day to redo.
    assert requested["product_daily_consumption"] == ["2026-03-27"]
    assert requested["active_agreements"] == ["2026-01-01", "2026-01-02", "2026-01-03", "2026-03-27"]
    assert "half_hourly_consumption" not in requested  # readings did not change

    gold.materialize("product_daily_consumption", "2026-03-27")
    daily = gold.rows("product_daily_consumption", ("date", "product_display_name"))
    assert project(daily, "date", "product_display_name", "meterpoint_count", "consumption")[0] == (
        date(2026, 3, 27),
        "Standard",
        1,
        2.0,
    )
    assert ("a", "no_agreement") in project(gold.rows("unmatched_readings"), "record_id", "reason")

    # Re-running either load day changes nothing: each day keeps the snapshot first taken.
    before = gold.snapshot()
    gold.materialize("dim_agreement", "2026-03-31")
    gold.materialize("dim_agreement", "2026-03-30")
    assert gold.snapshot() == before


GOLD_TABLES = ("half_hourly_consumption", "product_daily_consumption", "avg_consumption_per_half_hour_by_product")


def spark_jobs_during(spark, action) -> int:
    """How many Spark jobs ``action`` started (this session's job ids are consecutive)."""
    tracker = spark.sparkContext.statusTracker()
    before = max(tracker.getJobIdsForGroup(None), default=-1)
    action()
    return max(tracker.getJobIdsForGroup(None), default=-1) - before


def test_gold_over_days_without_readings_costs_no_spark_job_and_a_long_range_changes_nothing(pipeline) -> None:
    """A start-up requests gold for every day since the start: only days with readings are work."""
    build_gold(pipeline)
    tables = GOLD_TABLES + ("unmatched_readings",)
    before = {table: pipeline.rows(table) for table in tables}

    # A month with coverage (agreements 1 and 3 run through it) but not one reading.
    jobs = spark_jobs_during(
        pipeline.spark, lambda: pipeline.materialize("half_hourly_consumption", "2026-05-01", "2026-05-31")
    )
    assert jobs == 0
    latest = pipeline.instance.get_latest_materialization_event(dg.AssetKey("product_daily_consumption"))
    assert latest.asset_materialization.metadata["days_with_data"].value == 0

    # The whole year in one run rewrites exactly what the two ranges wrote.
    pipeline.materialize("half_hourly_consumption", "2026-01-01", "2026-12-01")
    assert {table: pipeline.rows(table) for table in tables} == before
    assert all(before[table] for table in GOLD_TABLES)
