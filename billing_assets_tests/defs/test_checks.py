"""Asset checks in real runs: every one passes on the pipeline's own output, a failure blocks."""

import shutil
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from billing_assets.definitions import ASSETS
from billing_assets.defs.freshness import landing_freshness_job, newest_landing_hour_ingested
from billing_assets.defs.ingestion import raw_readings
from billing_assets.domain.keys import hour_key
from billing_assets.partitions import billing_months, local_days, recording_hours, run_window
from billing_assets.process import process
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.steps import gold_checks, ingest_checks, usage_checks
from billing_assets.steps.ingest import HourCounts
from billing_assets.steps.invariants import CheckOutcome
from billing_assets.tables.schemas import (
    AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT,
    CUMULATIVE_USAGE,
    DEDUPLICATED_RAW,
    HALF_HOURLY_CONSUMPTION,
    HOURLY_USAGE,
    RAW_READINGS,
    UNMATCHED_READINGS,
)
from billing_assets.tables.selection import RunWindow
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import H1, H2, land_scenario, r, ts
from billing_assets_tests.defs.test_gold import MARCH, OCTOBER, land_readings, write_source

#: Checks that run inside materialisations (the freshness check has its own job).
IN_RUN_CHECKS = {
    ("raw_readings", "records_conserved"),
    ("raw_readings", "deduplicated_raw_unique_record_id"),
    ("raw_readings", "deduplicated_raw_recording_hour"),
    ("deduplicated_raw", "unique_record_id"),
    ("deduplicated_raw", "recording_hour_matches_interval_start"),
    ("hourly_usage", "matches_deduplicated_readings"),
    ("cumulative_usage", "never_decreases_within_month"),
    ("cumulative_usage", "equals_month_to_date_hourly_sum"),
    ("half_hourly_consumption", "half_hours_sum_to_hours"),
    ("product_daily_consumption", "products_plus_unmatched_sum_to_day"),
    ("avg_consumption_per_half_hour_by_product", "sums_to_product_daily"),
}


def evaluations(results: list[dg.ExecuteInProcessResult]) -> list[dg.AssetCheckEvaluation]:
    return [e for result in results for e in result.get_asset_check_evaluations()]


def build_checked(pipeline: Pipeline) -> list[dg.ExecuteInProcessResult]:
    """The scenario and gold readings through every asset, as the sensors would run them."""
    write_source(pipeline.source_db)
    land_scenario(pipeline)
    land_readings(pipeline)
    results = [pipeline.materialize("dim_agreement", "2026-03-30")]
    results += [pipeline.materialize("raw_readings", hour) for hour in (H1, H2, MARCH, OCTOBER)]
    results.append(pipeline.materialize("deduplicated_raw", "2026-03-10-07+0000", "2026-03-10-10+0000"))
    results.append(pipeline.materialize("hourly_usage", "2026-03-07-07+0000", "2026-03-29-23+0100"))
    results.append(pipeline.materialize("hourly_usage", "2026-10-25-00+0100", "2026-10-25-23+0000"))
    results.append(pipeline.materialize("cumulative_usage", "2026-03", "2026-10"))
    results.append(pipeline.materialize("half_hourly_consumption", "2026-03-07", "2026-03-29"))
    results.append(pipeline.materialize("half_hourly_consumption", "2026-10-25"))
    return results


@pytest.fixture(scope="module")
def checked(tmp_path_factory, spark, end_to_end) -> tuple[Pipeline, list[dg.ExecuteInProcessResult]]:
    pipeline = Pipeline(tmp_path_factory.mktemp("checked"), spark)
    return pipeline, build_checked(pipeline)


def test_every_in_run_check_runs_with_its_asset_and_passes_on_pipeline_output(checked) -> None:
    _, results = checked
    found = evaluations(results)
    assert {(e.asset_key.to_user_string(), e.check_name) for e in found} >= IN_RUN_CHECKS
    ours = [e for e in found if (e.asset_key.to_user_string(), e.check_name) in IN_RUN_CHECKS]
    assert [(e.asset_key.to_user_string(), e.check_name, e.metadata) for e in ours if not e.passed] == []
    assert all(e.blocking and e.severity == dg.AssetCheckSeverity.ERROR for e in ours)


def test_conservation_figures_are_in_the_check_metadata(checked) -> None:
    pipeline, results = checked
    [h1_run] = [res for res in results if res.dagster_run.tags.get("dagster/partition") == H1]
    [conserved] = [e for e in h1_run.get_asset_check_evaluations() if e.check_name == "records_conserved"]
    figures = conserved.metadata["per_ingestion_hour"].value[H1]
    # a.json: 5 readings (r2 twice more: a duplicate and a conflict), 1 malformed, 1 too late;
    # b.json: 1 reading; c.json: 1 unreadable file.
    assert figures == {
        "read": 9,
        "inserted": 4,
        "duplicates": 1,
        "conflicts": 1,
        "quarantined": 3,
        "raw_rows": 6,
        "quarantine_rows": 3,
        "conflict_rows": 1,
    }
    [materialization] = h1_run.get_asset_materialization_events()[-1:]
    assert materialization.materialization.metadata["records_read"].value == 9


def test_a_re_send_moved_to_another_hour_is_a_conflict_not_a_second_reading(pipeline) -> None:
    pipeline.land(H1, "a.json", [r("r1", "m1", "2026-03-10T07:00:00Z", 0.5)])
    pipeline.land(H2, "b.json", [r("r1", "m1", "2026-03-10T08:15:00Z", 0.5)])
    start = datetime.fromisoformat(f"{H1[:10]}T{H1[11:]}:00+00:00")
    process(start, start + timedelta(hours=2), pipeline.resources, pipeline.instance, echo=lambda _: None)

    assert [(row["record_id"], row["recording_hour"]) for row in pipeline.rows("deduplicated_raw")] == [
        ("r1", "2026-03-10-07")
    ]
    [conflict] = pipeline.rows("quarantined_readings")
    assert (conflict["reason"], conflict["ingestion_hour"]) == ("conflict", H2)
    assert [row["consumption"] for row in pipeline.rows("hourly_usage")] == [0.5]
    # The repair path ranks the moved copy against the first one the same way.
    before = pipeline.rows("deduplicated_raw")
    pipeline.materialize("deduplicated_raw", "2026-03-10-07+0000", "2026-03-10-08+0000")
    assert pipeline.rows("deduplicated_raw") == before

    # Backfilled in the other order, the earlier arrival still wins and the later hour is emptied.
    (pipeline.landing.parent / "reversed").mkdir()
    other = Pipeline(pipeline.landing.parent / "reversed", pipeline.spark)
    other.land(H1, "a.json", [r("r1", "m1", "2026-03-10T07:00:00Z", 0.5)])
    other.land(H2, "b.json", [r("r1", "m1", "2026-03-10T08:15:00Z", 0.5)])
    other.materialize("raw_readings", H2)
    other.materialize("raw_readings", H1)
    assert other.rows("deduplicated_raw") == before


def test_a_failing_blocking_check_fails_the_run_and_stops_what_follows(quick_pipeline) -> None:
    # A table damaged outside the pipeline: r9 twice, in two hours. The next run touching one
    # of those hours finds it, fails, and nothing downstream runs on the damaged numbers.
    quick_pipeline.land(H1, "a.json", [r("r1", "m1", "2026-03-10T07:00:00Z", 0.5)])
    quick_pipeline.materialize("raw_readings", H1)
    table = str(quick_pipeline.warehouse / DEDUPLICATED_RAW.name)
    damage = DeltaTable(table).to_pyarrow_table()
    damage = pa.concat_tables(
        [
            damage.set_column(0, "record_id", pa.array(["r9"])),
            damage.set_column(0, "record_id", pa.array(["r9"]))
            .set_column(damage.schema.get_field_index("recording_hour"), "recording_hour", pa.array(["2026-03-10-08"]))
            .set_column(
                damage.schema.get_field_index("interval_start"),
                "interval_start",
                pa.array([datetime(2026, 3, 10, 8, tzinfo=UTC)], damage.schema.field("interval_start").type),
            ),
        ]
    )
    write_deltalake(table, damage, mode="append")
    quick_pipeline.land(H2, "b.json", [r("r2", "m1", "2026-03-10T07:30:00Z", 0.25)])
    start = datetime.fromisoformat(f"{H2[:10]}T{H2[11:]}:00+00:00")
    with pytest.raises(dg.DagsterError, match="blocking asset check failed"):
        process(
            start, start + timedelta(hours=1), quick_pipeline.resources, quick_pipeline.instance, echo=lambda _: None
        )

    [failed_run] = quick_pipeline.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    assert failed_run.tags["dagster/partition"] == H2
    records = quick_pipeline.instance.get_records_for_run(
        failed_run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    found = {e.check_name: e for e in (x.event_log_entry.dagster_event.event_specific_data for x in records)}
    unique = found["deduplicated_raw_unique_record_id"]
    assert (unique.passed, unique.severity, unique.blocking) == (False, dg.AssetCheckSeverity.ERROR, True)
    assert unique.metadata["duplicates"].value == [
        {"record_id": "r9", "copies": 2, "recording_hours": ["2026-03-10-07", "2026-03-10-08"]}
    ]
    assert found["records_conserved"].passed and found["deduplicated_raw_recording_hour"].passed
    # The write happened and is recorded (its figures are visible); nothing downstream ran.
    assert quick_pipeline.instance.get_latest_materialization_event(raw_readings.key) is not None
    assert quick_pipeline.instance.get_latest_materialization_event(dg.AssetKey("hourly_usage")) is None


def run_freshness(pipeline: Pipeline) -> dg.ExecuteInProcessResult:
    defs = dg.Definitions(
        assets=ASSETS,
        asset_checks=[newest_landing_hour_ingested],
        jobs=[landing_freshness_job],
        resources=pipeline.resources,
    )
    return defs.resolve_job_def("landing_freshness").execute_in_process(instance=pipeline.instance)


def test_freshness_check_warns_until_the_newest_complete_hour_is_ingested(quick_pipeline) -> None:
    assert run_freshness(quick_pipeline).get_asset_check_evaluations()[0].passed  # nothing landed yet

    quick_pipeline.land(H1, "a.json", [r("r1", "m1", "2026-03-10T07:00:00Z", 0.5)])
    quick_pipeline.land(H2, "b.json", [r("r2", "m1", "2026-03-10T08:00:00Z", 0.5)])
    # The current hour is still being written: not complete, not expected yet.
    quick_pipeline.land(hour_key(datetime.now(UTC)), "c.json", [r("r3", "m1", "2026-03-10T08:30:00Z", 0.5)])
    quick_pipeline.materialize("raw_readings", H1)
    stale = run_freshness(quick_pipeline)
    [evaluation] = stale.get_asset_check_evaluations()
    assert stale.success  # a WARN never fails the run
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert evaluation.metadata["newest_complete_hour"].value == H2
    assert evaluation.metadata["minutes_overdue"].value > 0

    quick_pipeline.materialize("raw_readings", H2)
    [evaluation] = run_freshness(quick_pipeline).get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["newest_complete_hour"].value == H2


# The check functions on deliberately broken copies of the tables the pipeline wrote.


def window(partitions_def: dg.TimeWindowPartitionsDefinition, first: str, last: str) -> RunWindow:
    """The window of a run over partitions ``[first, last]``, as the asset derives it."""
    start = partitions_def.time_window_for_partition_key(first).start
    return run_window(dg.TimeWindow(start, partitions_def.time_window_for_partition_key(last).end))


#: Local days 27 to 29 March; in UTC 2026-03-27-00 .. 2026-03-29-22 (the 29th is 23 hours).
MARCH_DAYS = window(local_days, "2026-03-27", "2026-03-29")


@pytest.fixture
def broken(checked, tmp_path) -> Warehouse:
    """A copy of the checked warehouse, free to corrupt."""
    pipeline, _ = checked
    shutil.copytree(pipeline.warehouse, tmp_path / "warehouse")
    return WarehouseResource(uri=str(tmp_path / "warehouse")).get_warehouse()


def table(warehouse: Warehouse, spec) -> DeltaTable:
    return DeltaTable(warehouse.uri(spec))


def append(warehouse: Warehouse, spec, rows: list[dict]) -> None:
    write_deltalake(
        warehouse.uri(spec),
        pa.Table.from_pylist(rows, schema=spec.schema),
        mode="append",
        partition_by=[spec.partition_by],
    )


def test_unique_record_ids_finds_a_copy_in_a_neighbouring_hour(spark, broken) -> None:
    hours = ["2026-03-10-07"]

    def unique() -> CheckOutcome:
        return ingest_checks.deduplicated_invariants(spark, broken, hours)[ingest_checks.UNIQUE_RECORD_ID]

    assert unique().passed
    [winner] = [x for x in table(broken, DEDUPLICATED_RAW).to_pyarrow_table().to_pylist() if x["record_id"] == "r1"]
    append(
        broken,
        DEDUPLICATED_RAW,
        [{**winner, "interval_start": ts("2026-03-11T07:00"), "recording_hour": "2026-03-11-07"}],
    )
    passed, metadata = unique()
    assert not passed
    assert metadata["duplicated_record_ids"] == 1
    assert metadata["duplicates"] == [
        {"record_id": "r1", "copies": 2, "recording_hours": ["2026-03-10-07", "2026-03-11-07"]}
    ]
    assert metadata["scope"] == "recording_hour 2026-03-03-05 .. 2026-03-17-08"


def test_recording_hours_match_finds_a_row_filed_under_the_wrong_hour(spark, broken) -> None:
    hours = ["2026-03-10-08"]

    def matching() -> CheckOutcome:
        return ingest_checks.deduplicated_invariants(spark, broken, hours)[ingest_checks.RECORDING_HOUR]

    assert matching().passed
    table(broken, DEDUPLICATED_RAW).update(
        predicate="record_id = 'r5'", updates={"interval_start": "interval_start + INTERVAL '1 hour'"}
    )
    passed, metadata = matching()
    assert not passed
    assert metadata["rows_in_wrong_hour"] == 1
    assert [row["record_id"] for row in metadata["wrong_rows"]] == ["r5"]
    # A row of a neighbouring hour filed wrongly is not this run's: only the hours written are checked.
    assert metadata["rows_checked"] == sum(
        1 for x in table(broken, DEDUPLICATED_RAW).to_pyarrow_table().to_pylist() if x["recording_hour"] in hours
    )


def test_records_conserved_needs_the_counts_and_the_tables_to_agree(checked, spark, broken) -> None:
    _, results = checked
    [run] = [res for res in results if res.dagster_run.tags.get("dagster/partition") == H1]
    figures = run.get_asset_materialization_events()[-1].materialization.metadata["per_ingestion_hour"].value[H1]
    counts = {H1: HourCounts(**figures)}
    assert ingest_checks.records_conserved(spark, broken, counts, {}).passed

    lost = {H1: HourCounts(**{**figures, "inserted": figures["inserted"] - 1})}
    passed, metadata = ingest_checks.records_conserved(spark, broken, lost, {})
    assert not passed and metadata["unbalanced_hours"] == [H1]
    assert metadata["per_ingestion_hour"][H1]["read"] == 9

    table(broken, RAW_READINGS).delete("record_id = 'r1'")
    passed, metadata = ingest_checks.records_conserved(spark, broken, counts, {})
    assert not passed and metadata["per_ingestion_hour"][H1]["raw_rows"] == 5


def test_hourly_matches_readings_finds_a_corrupted_hour(spark, broken) -> None:
    hours = window(recording_hours, "2026-03-10-07+0000", "2026-03-10-10+0000")
    assert usage_checks.hourly_matches_readings(spark, broken, hours).passed
    table(broken, HOURLY_USAGE).update(
        predicate="recording_hour = '2026-03-10-08' AND meterpoint_id = 'm1'",
        updates={"consumption": "consumption + 1"},
    )
    passed, metadata = usage_checks.hourly_matches_readings(spark, broken, hours)
    assert not passed
    assert metadata["hours_mismatched"] == 1
    [mismatch] = metadata["mismatches"]
    assert mismatch["recording_hour"] == "2026-03-10-08"
    assert float(mismatch["consumption_actual"]) - float(mismatch["consumption_expected"]) == pytest.approx(1.0)
    assert mismatch["readings_actual"] == mismatch["readings_expected"]


def test_cumulative_checks_find_a_broken_running_total(spark, broken) -> None:
    march = window(billing_months, "2026-03", "2026-03")  # UTC hours 2026-02-28-00 .. 2026-03-31-22

    def outcomes() -> tuple:
        found = usage_checks.cumulative_invariants(spark, broken, march)
        return found[usage_checks.NEVER_DECREASES], found[usage_checks.MONTH_TO_DATE_SUM]

    assert all(outcome.passed for outcome in outcomes())
    table(broken, CUMULATIVE_USAGE).update(
        predicate="meterpoint_id = 'm1' AND usage_hour = '2026-03-10 08:00:00+00:00'",
        updates={"cumulative_consumption": "cumulative_consumption - 1"},
    )
    (passed, metadata), (summed, sums) = outcomes()
    assert not passed and metadata["decreasing_rows"] == 1
    assert metadata["decreases"][0]["usage_hour"].startswith("2026-03-10 08:00")
    assert not summed and sums["rows_not_month_to_date_sum"] == 1 and sums["hourly_rows_missing"] == 0

    table(broken, CUMULATIVE_USAGE).delete("meterpoint_id = 'm2' AND usage_hour = '2026-03-10 08:00:00+00:00'")
    _, (summed, sums) = outcomes()
    assert not summed and sums["hourly_rows_missing"] == 1


def test_gold_checks_find_a_total_that_no_longer_adds_up(spark, broken) -> None:
    assert gold_checks.half_hours_sum_to_hours(spark, broken, MARCH_DAYS).passed
    assert gold_checks.products_plus_unmatched_sum_to_day(spark, broken, MARCH_DAYS).passed
    assert gold_checks.product_half_hours_sum_to_days(spark, broken, MARCH_DAYS).passed

    table(broken, UNMATCHED_READINGS).delete("record_id = 'g'")  # 4.0 kWh on 28 March lost
    passed, metadata = gold_checks.products_plus_unmatched_sum_to_day(spark, broken, MARCH_DAYS)
    assert not passed and metadata["days_mismatched"] == 1
    assert [str(m["day"]) for m in metadata["mismatches"]] == ["2026-03-28"]

    table(broken, HALF_HOURLY_CONSUMPTION).update(
        predicate="interval_start = '2026-03-29 01:00:00+00:00'", updates={"consumption": "consumption * 2"}
    )
    passed, metadata = gold_checks.half_hours_sum_to_hours(spark, broken, MARCH_DAYS)
    assert not passed and [m["recording_hour"] for m in metadata["mismatches"]] == ["2026-03-29-01"]

    table(broken, AVG_CONSUMPTION_PER_HALF_HOUR_BY_PRODUCT).delete("interval_start = '2026-03-27 10:00:00+00:00'")
    passed, metadata = gold_checks.product_half_hours_sum_to_days(spark, broken, MARCH_DAYS)
    assert not passed and metadata["product_days_mismatched"] == 1
