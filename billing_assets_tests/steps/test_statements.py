"""The statement step on a real (small, Spark-free) warehouse: pinned reads, append-only runs, verify, repair.

Input tables are written with delta-rs directly, as the pipeline would have left them, for
February 2026 in London (GMT: local days are UTC days).
"""

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from billing_assets.domain.settlement import INITIAL, RECONCILIATION, Lifecycle
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets.steps import statements as step
from billing_assets.steps.statements import month_rows, settle_month, statement, verify_run
from billing_assets.tables.schemas import (
    AGREEMENT_DAYS,
    DEDUPLICATED_RAW,
    HOURLY_USAGE,
    QUARANTINED_READINGS,
    STATEMENT_ADJUSTMENTS,
    STATEMENTS,
    TableSpec,
)
from billing_assets.tables.warehouse import Warehouse

MONTH, ZONE = "2026-02", "Europe/London"
LIFECYCLE = Lifecycle(timedelta(days=1), timedelta(days=60))
INITIAL_TIME = datetime(2026, 3, 2, tzinfo=UTC)
LATER = datetime(2026, 3, 5, tzinfo=UTC)


def append(warehouse: Warehouse, spec: TableSpec, rows: list[dict]) -> None:
    write_deltalake(
        warehouse.uri(spec),
        pa.Table.from_pylist(rows, schema=spec.schema),
        mode="append",
        partition_by=[spec.partition_by],
        storage_options=warehouse.storage.delta_options(),
    )


def hour(day: int, at: int) -> dict:
    instant = datetime(2026, 2, day, at, tzinfo=UTC)
    return {"usage_hour": instant, "recording_hour": instant.strftime("%Y-%m-%d-%H")}


def usage(meterpoint: str, day: int, at: int, kwh: float, count: int) -> dict:
    return {"meterpoint_id": meterpoint, "consumption": kwh, "reading_count": count, **hour(day, at)}


def covered(meterpoint: str, agreement: str, product: str, name: str, first: int, last: int) -> list[dict]:
    return [
        {
            "agreement_id": agreement,
            "meterpoint_id": meterpoint,
            "account_id": f"acc-{meterpoint}",
            "product_id": product,
            "product_display_name": name,
            "product_is_variable": False,
            "covers_readings": True,
            "is_active": True,
            "unmatched_reason": None,
            "date": date(2026, 2, day),
        }
        for day in range(first, last + 1)
    ]


def too_late(record_id: str, meterpoint: str, instant: datetime, kwh: float, ingestion_hour: str) -> dict:
    raw = {"record_id": record_id, "meterpoint_id": meterpoint, "interval_start": instant.isoformat()}
    raw["consumption"] = kwh
    return {
        "source_file": "late.json",
        "line_number": 1,
        "record_id": record_id,
        "reason": "too_late",
        "detail": f"interval_start {instant.isoformat()} outside the watermark",
        "raw": json.dumps(raw),
        "ingestion_hour": ingestion_hour,
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    """mp1 under a1 (Fixed) all February with 1.75 kWh; one too-late reading of 0.4 kWh on the 1st."""
    built = Warehouse(str(tmp_path / "warehouse"))
    append(built, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2), usage("mp1", 10, 8, 0.25, 1)])
    append(built, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    append(
        built,
        QUARANTINED_READINGS,
        [too_late("r-late", "mp1", datetime(2026, 2, 1, 5, tzinfo=UTC), 0.4, "2026-02-12-09")],
    )
    append(
        built,
        DEDUPLICATED_RAW,
        [
            {
                "record_id": "r-other",
                "meterpoint_id": "mp1",
                "interval_start": datetime(2026, 2, 1, 5, tzinfo=UTC),
                "consumption": 0.1,
                "ingestion_hour": "2026-02-01-06",
                "source_file": "f.json",
                "line_number": 1,
                "recording_hour": "2026-02-01-05",
            }
        ],
    )
    return built


def lines(frame: pl.DataFrame) -> list[tuple]:
    return frame.select("run", "run_kind", "agreement_id", "reading_count", "too_late_count", "kwh").rows()


def version(warehouse: Warehouse, spec: TableSpec) -> int:
    return DeltaTable(warehouse.uri(spec)).version()


def test_runs_are_decided_appended_and_verified_from_the_versions_they_read(warehouse: Warehouse) -> None:
    assert settle_month(warehouse, MONTH, ZONE, LIFECYCLE, datetime(2026, 3, 1, 12, tzinfo=UTC)).run is None

    first = settle_month(warehouse, MONTH, ZONE, LIFECYCLE, INITIAL_TIME)

    assert (first.run, first.kind, first.lines, first.adjustments) == (1, INITIAL, 1, 0)
    assert lines(statement(warehouse, MONTH)) == [(1, INITIAL, "a1", 3, 0, 1.75)]
    recorded = statement(warehouse, MONTH).row(0, named=True)
    assert (recorded["hourly_usage_version"], recorded["agreement_days_version"]) == (0, 0)

    # A late reading within the watermark: hourly_usage moves on; the reconciliation bills it
    # and, its first, the too-late reading too.
    append(warehouse, HOURLY_USAGE, [usage("mp1", 28, 22, 0.5, 1)])
    second = settle_month(warehouse, MONTH, ZONE, LIFECYCLE, LATER)

    assert (second.run, second.kind, second.adjustments) == (2, RECONCILIATION, 1)
    assert lines(statement(warehouse, MONTH)) == [(2, RECONCILIATION, "a1", 5, 1, 2.65)]
    adjustment = month_rows(warehouse.open(STATEMENT_ADJUSTMENTS), MONTH).row(0, named=True)
    assert (adjustment["run"], adjustment["previous_run"], adjustment["kwh_before"], adjustment["kwh_after"]) == (
        2,
        1,
        1.75,
        2.65,
    )
    assert adjustment["reasons"] == ["late_reading", "too_late_reading"]

    # A decision with nothing changed appends nothing, not even an empty commit.
    before = version(warehouse, STATEMENTS), version(warehouse, STATEMENT_ADJUSTMENTS)
    assert settle_month(warehouse, MONTH, ZONE, LIFECYCLE, LATER + timedelta(hours=1)).run is None
    assert (version(warehouse, STATEMENTS), version(warehouse, STATEMENT_ADJUSTMENTS)) == before

    # Each run recomputes from the versions it recorded, whatever the inputs hold now.
    append(warehouse, HOURLY_USAGE, [usage("mp1", 27, 1, 9.0, 1)])
    assert verify_run(warehouse, MONTH, ZONE, 1) == []
    assert verify_run(warehouse, MONTH, ZONE, 2) == []
    assert statement(warehouse, MONTH, 1)["kwh"].to_list() == [1.75]  # a run once written never changes


def test_verify_names_a_line_that_differs_from_its_recomputation(warehouse: Warehouse) -> None:
    settle_month(warehouse, MONTH, ZONE, LIFECYCLE, INITIAL_TIME)
    stored = pl.from_arrow(DeltaTable(warehouse.uri(STATEMENTS)).to_pyarrow_table())
    # A forged second run claiming more kWh from the same inputs.
    forged = stored.with_columns(pl.lit(2).cast(pl.Int32).alias("run"), pl.lit(9.99).alias("kwh"))
    write_deltalake(warehouse.uri(STATEMENTS), forged.to_arrow().cast(STATEMENTS.schema), mode="append")

    problems = verify_run(warehouse, MONTH, ZONE, 2)

    assert len(problems) == 2 and "9.99" in problems[0] and "1.75" in problems[1]


def test_two_writers_of_one_months_run_cannot_both_commit(warehouse: Warehouse) -> None:
    settle_month(warehouse, MONTH, ZONE, LIFECYCLE, INITIAL_TIME)
    rows = statement(warehouse, MONTH).with_columns(pl.lit(2).cast(pl.Int32).alias("run"))
    first, second = warehouse.open(STATEMENTS), warehouse.open(STATEMENTS)

    step._append(first, rows, MONTH, 2)
    with pytest.raises(CommitFailedError):
        step._append(second, rows, MONTH, 2)

    assert sorted(month_rows(warehouse.open(STATEMENTS), MONTH)["run"].to_list()) == [1, 2]


def test_adjustments_a_crash_left_unwritten_are_written_by_the_next_decision(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    settle_month(warehouse, MONTH, ZONE, LIFECYCLE, INITIAL_TIME)
    moved = covered("mp1", "a1", "p1", "Fixed", 1, 9) + covered("mp1", "a3", "p3", "Green", 10, 28)
    write_deltalake(
        warehouse.uri(AGREEMENT_DAYS),
        pa.Table.from_pylist(moved, schema=AGREEMENT_DAYS.schema),
        mode="overwrite",
        partition_by=["date"],
    )
    real_append = step._append

    def crash_before_adjustments(table, frame, month, run):  # noqa: ANN001, ANN202 - a test double
        if table.spec is STATEMENT_ADJUSTMENTS:
            raise KeyboardInterrupt("killed between the two commits")
        real_append(table, frame, month, run)

    monkeypatch.setattr(step, "_append", crash_before_adjustments)
    with pytest.raises(KeyboardInterrupt):
        settle_month(warehouse, MONTH, ZONE, LIFECYCLE, LATER)
    monkeypatch.setattr(step, "_append", real_append)
    assert month_rows(warehouse.open(STATEMENT_ADJUSTMENTS), MONTH).is_empty()

    again = settle_month(warehouse, MONTH, ZONE, LIFECYCLE, LATER)

    assert (again.repaired_run, again.run) == (2, None)
    adjustments = month_rows(warehouse.open(STATEMENT_ADJUSTMENTS), MONTH)
    # The too-late reading (0.4 kWh on the 1st, under a1) and the 10th moving to a3 (Green).
    assert adjustments.select("run", "kwh_before", "kwh_after", "reasons").rows() == [
        (2, 1.75, 2.15, ["too_late_reading", "coverage_changed"])
    ]
    assert sorted(statement(warehouse, MONTH).select("product_id", "kwh").rows()) == [("p1", 1.9), ("p3", 0.25)]


def test_daily_usage_follows_local_days_in_a_zone_whose_hours_start_at_half_past(tmp_path: Path) -> None:
    # Kolkata (+05:30): February starts at 2026-01-31 18:30 UTC; recording hours are keyed HHMM.
    warehouse = Warehouse(str(tmp_path / "warehouse"))
    rows = [
        (datetime(2026, 1, 31, 17, 30, tzinfo=UTC), 5.0),  # 23:00 on 31 January: not February's
        (datetime(2026, 1, 31, 18, 30, tzinfo=UTC), 1.0),  # 00:00 on 1 February
        (datetime(2026, 2, 1, 17, 30, tzinfo=UTC), 2.0),  # 23:00 on 1 February
        (datetime(2026, 2, 28, 17, 30, tzinfo=UTC), 0.125),  # 23:00 on 28 February
        (datetime(2026, 2, 28, 18, 30, tzinfo=UTC), 7.0),  # 00:00 on 1 March
    ]
    append(
        warehouse,
        HOURLY_USAGE,
        [
            {
                "meterpoint_id": "mp1",
                "usage_hour": instant,
                "consumption": kwh,
                "reading_count": 1,
                "recording_hour": instant.strftime("%Y-%m-%d-%H%M"),
            }
            for instant, kwh in rows
        ],
    )

    daily = step.daily_usage(warehouse.open(HOURLY_USAGE), MONTH, "Asia/Kolkata")

    found = daily.select("usage_hour", pl.col("consumption").cast(pl.Float64))
    assert found.rows() == [
        (datetime(2026, 1, 31, 18, 30, tzinfo=UTC), 3.0),
        (datetime(2026, 2, 27, 18, 30, tzinfo=UTC), 0.125),
    ]


def test_a_month_is_settled_and_verified_on_s3_as_on_local_disk(s3_warehouse: WarehouseResource) -> None:
    warehouse = s3_warehouse.get_warehouse()
    append(warehouse, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2), usage("mp1", 10, 8, 0.25, 1)])
    append(warehouse, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    quarantine = [too_late("r-late", "mp1", datetime(2026, 2, 1, 5, tzinfo=UTC), 0.4, "2026-02-12-09")]
    append(warehouse, QUARANTINED_READINGS, quarantine)

    first = settle_month(warehouse, MONTH, ZONE, LIFECYCLE, INITIAL_TIME, retention_days=425)
    second = settle_month(warehouse, MONTH, ZONE, LIFECYCLE, LATER, retention_days=425)

    assert (first.run, second.run, second.kind) == (1, 2, RECONCILIATION)
    assert lines(statement(warehouse, MONTH)) == [(2, RECONCILIATION, "a1", 4, 1, 2.15)]
    assert verify_run(warehouse, MONTH, ZONE, 1) == [] and verify_run(warehouse, MONTH, ZONE, 2) == []
