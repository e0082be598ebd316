"""The ``settle_statements`` asset: one decision per month partition, materialised in process (no Spark)."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl
from deltalake import DeltaTable

from billing_assets.defs.statements import settle_statements
from billing_assets.partitions import billing_months, local_days
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.tables.schemas import AGREEMENT_DAYS, HOURLY_USAGE, QUARANTINED_READINGS, RAW_READINGS, STATEMENTS
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.steps.test_statements import append, covered, usage


def decide(
    root: Path, instance: dg.DagsterInstance, as_of: str, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [settle_statements],
        raise_on_error=raise_on_error,
        instance=instance,
        partition_key="2026-02",
        resources={"warehouse": WarehouseResource(uri=str(root))},
        run_config={"ops": {"settle_statements": {"config": {"as_of": as_of}}}},
    )


def test_each_decision_appends_a_run_or_nothing_and_says_which(tmp_path: Path) -> None:
    root = tmp_path / "warehouse"
    warehouse = Warehouse(str(root))
    append(warehouse, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2), usage("mp1", 10, 8, 0.25, 1)])
    append(warehouse, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    instance = dg.DagsterInstance.ephemeral()

    first = decide(root, instance, "2026-03-02T00:00:00+00:00")
    again = decide(root, instance, "2026-03-02T06:00:00+00:00")  # nothing changed: a materialisation, no run
    final = decide(root, instance, "2026-05-01T00:00:00+00:00")

    decisions = [
        result.asset_materializations_for_node("settle_statements")[0].metadata["decisions"].value
        for result in (first, again, final)
    ]
    assert decisions == [
        {"2026-02": "run 1 (initial): 1.750 kWh, 1 meter(s), 0 adjustment(s)"},
        {"2026-02": "no run"},
        {"2026-02": "run 2 (final): 1.750 kWh, 1 meter(s), 0 adjustment(s), +0.000 kWh against run 1"},
    ]
    # What the UI shows of each materialisation: the run's kind, kWh, meters and change.
    shown = [result.asset_materializations_for_node("settle_statements")[0].metadata for result in (first, final)]
    assert [(m["run_kinds"].value, m["kwh"].value, m["meters"].value) for m in shown] == [
        ("initial", 1.75, 1),
        ("final", 1.75, 1),
    ]
    assert [m["kwh_difference_against_previous_runs"].value for m in shown] == [0.0, 0.0]
    stored = pl.read_delta(str(root / STATEMENTS.name)).sort("run")
    assert stored.select("run", "run_kind", "kwh").rows() == [(1, "initial", 1.75), (2, "final", 1.75)]
    assert all(check.passed for result in (first, again, final) for check in result.get_asset_check_evaluations())

    # After the final run a reading (a rebuild, a backfill) still changes February: never billed
    # into it, but a WARN says so; so does a too-late reading that cannot be read back.
    append(warehouse, HOURLY_USAGE, [usage("mp1", 27, 1, 9.0, 1)])
    unreadable = {"source_file": "x.json", "line_number": 0, "record_id": None, "reason": "too_late"}
    append(
        warehouse, QUARANTINED_READINGS, [{**unreadable, "detail": "?", "raw": "?", "ingestion_hour": "2026-02-20-00"}]
    )
    sealed = decide(root, instance, "2026-05-02T00:00:00+00:00")
    checks = {check.check_name: check for check in sealed.get_asset_check_evaluations()}
    assert not checks["unchanged_after_final"].passed
    assert checks["unchanged_after_final"].metadata["months"].value == ["2026-02"]
    assert checks["unchanged_after_final"].severity == dg.AssetCheckSeverity.WARN
    assert not checks["too_late_readings_readable"].passed
    assert checks["too_late_readings_readable"].metadata["unreadable_by_month"].value == {"2026-02": 1}
    assert pl.read_delta(str(root / STATEMENTS.name))["run"].max() == 2
    assert checks["append_only"].passed

    # A run rewritten behind the asset's back fails the blocking check: history shows it.
    DeltaTable(str(root / STATEMENTS.name)).delete("run = 1")
    rewritten = decide(root, instance, "2026-05-03T00:00:00+00:00", raise_on_error=False)
    assert not rewritten.success  # a blocking check fails the run
    checks = {check.check_name: check for check in rewritten.get_asset_check_evaluations()}
    assert not checks["append_only"].passed
    assert checks["append_only"].metadata["rewriting_commits"].value["statements"] == ["version 3: DELETE"]

    # The inputs now keep the versions the runs recorded for as long as they may be verified.
    for spec in (HOURLY_USAGE, AGREEMENT_DAYS):
        configuration = DeltaTable(str(root / spec.name)).metadata().configuration
        assert configuration["delta.logRetentionDuration"] == "interval 425 days"
        assert configuration["delta.deletedFileRetentionDuration"] == "interval 425 days"


def ingested(warehouse: Warehouse, hour: str) -> None:
    """One raw reading ingested in ``hour``: the data's clock then reads the end of that hour."""
    instant = datetime.strptime(hour, "%Y-%m-%d-%H").replace(tzinfo=UTC)
    row = {"record_id": hour, "meterpoint_id": "mp1", "interval_start": instant, "consumption": 0.0}
    row |= {"recording_hour": hour, "source_file": "f.json", "line_number": 1, "ingestion_hour": hour}
    append(warehouse, RAW_READINGS, [row])


def test_without_an_instant_the_month_is_settled_by_the_datas_clock_not_the_wall_clock(tmp_path: Path) -> None:
    # February processed months later (a backfill): the wall clock says February is long sealed,
    # but its readings of March are not in yet, so no run; once they are, an initial run, not final.
    root = tmp_path / "warehouse"
    warehouse = Warehouse(str(root))
    append(warehouse, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2)])
    append(warehouse, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    instance = dg.DagsterInstance.ephemeral()

    nothing_yet = decide(root, instance, "")
    ingested(warehouse, "2026-02-27-10")
    month_open = decide(root, instance, "")
    ingested(warehouse, "2026-03-02-05")  # ends 06:00 UTC, past the initial date (2 March 00:00)
    initial = decide(root, instance, "")

    decisions = [
        result.asset_materializations_for_node("settle_statements")[0].metadata["decisions"].value["2026-02"]
        for result in (nothing_yet, month_open, initial)
    ]
    assert decisions == ["no run", "no run", "run 1 (initial): 1.500 kWh, 1 meter(s), 0 adjustment(s)"]
    assert initial.asset_materializations_for_node("settle_statements")[0].metadata["as_of"].value == (
        "2026-03-02T06:00:00+00:00"
    )


def test_a_decision_needs_an_instant_with_an_offset(tmp_path: Path) -> None:
    result = dg.materialize(
        [settle_statements],
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="2026-02",
        resources={"warehouse": WarehouseResource(uri=str(tmp_path / "warehouse"))},
        run_config={"ops": {"settle_statements": {"config": {"as_of": "2026-03-02T00:00:00"}}}},
        raise_on_error=False,
    )
    assert not result.success


def requested_months(instance: dg.DagsterInstance, at: datetime, cursor: object = None) -> tuple[list[str], object]:
    upstream = [
        dg.AssetSpec("cumulative_usage", partitions_def=billing_months),
        dg.AssetSpec("agreement_days", partitions_def=local_days),
    ]
    result = dg.evaluate_automation_conditions(
        defs=dg.Definitions(
            assets=[settle_statements, *upstream], resources={"warehouse": WarehouseResource(uri="unused")}
        ),
        instance=instance,
        cursor=cursor,
        evaluation_time=at,
    )
    [requested] = [r for r in result.results if r.key == dg.AssetKey(STATEMENTS.name)]
    return sorted(
        ap.partition_key for ap in requested.true_subset.expensively_compute_asset_partitions()
    ), result.cursor


def test_the_daily_tick_requests_the_months_still_within_reach_of_their_final_run() -> None:
    instance = dg.DagsterInstance.ephemeral()
    # Every month from January holds usage and coverage, as the pipeline leaves them.
    for month in ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"):
        instance.report_runless_asset_event(dg.AssetMaterialization("cumulative_usage", partition=month))
    for day in local_days.get_partition_keys_in_range(dg.PartitionKeyRange("2025-12-25", "2026-06-01")):
        instance.report_runless_asset_event(dg.AssetMaterialization("agreement_days", partition=day))
    _, cursor = requested_months(instance, datetime(2026, 6, 1, 9, 0, tzinfo=UTC))  # the inputs' changes, handled
    before, cursor = requested_months(instance, datetime(2026, 6, 1, 9, 50, tzinfo=UTC), cursor)
    after, cursor = requested_months(instance, datetime(2026, 6, 1, 10, 1, tzinfo=UTC), cursor)
    later, _ = requested_months(instance, datetime(2026, 6, 1, 10, 5, tzinfo=UTC), cursor)

    assert before == [] and later == []
    # February's final run was due on 30 April: out of reach. March's (30 May) is requested once
    # more and finds it sealed; June is this month, requested and not yet due.
    assert after == ["2026-03", "2026-04", "2026-05", "2026-06"]


def test_a_month_without_its_running_total_is_never_requested() -> None:
    # The source load comes before the first readings: coverage changed, nothing to bill.
    instance = dg.DagsterInstance.ephemeral()
    for day in local_days.get_partition_keys_in_range(dg.PartitionKeyRange("2026-05-01", "2026-05-31")):
        instance.report_runless_asset_event(dg.AssetMaterialization("agreement_days", partition=day))
    _, cursor = requested_months(instance, datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    assert requested_months(instance, datetime(2026, 6, 1, 10, 1, tzinfo=UTC), cursor)[0] == []
    instance.report_runless_asset_event(dg.AssetMaterialization("cumulative_usage", partition="2026-05"))
    assert requested_months(instance, datetime(2026, 6, 1, 10, 2, tzinfo=UTC), cursor)[0] == ["2026-05"]
