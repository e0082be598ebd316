"""Settlement through the real pipeline: a billed month, then four kinds of news, each one reconciliation.

Real Spark ingestion and Delta tables, the real source load, the ``settle_statements`` asset
decided as of given instants; every figure worked out by hand below. March 2026 in London:
the month runs from 1 March 00:00 GMT to 1 April 00:00 BST (31 March 23:00 UTC); its initial
statement is due a day later, its final one 60 days later.
"""

import hashlib
from pathlib import Path

import dagster as dg
import polars as pl
from deltalake import DeltaTable

from billing_assets.definitions import ASSETS
from billing_assets.steps.statements import verify_run
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r
from billing_assets_tests.defs.test_gold import FIXED, STANDARD, write_source

MONTH = "2026-03"
AGREEMENTS = [
    (1, "2026-01-01", None, STANDARD, "m1", "A1"),
    (2, "2026-01-01", None, STANDARD, "m2", "A2"),
]
#: The source corrected: m1 switched to the fixed product on 10 March, not later (the switch day
#: belongs to the new agreement), so the day of its readings moves to another line.
CORRECTED = [
    (1, "2026-01-01", "2026-03-10", STANDARD, "m1", "A1"),
    (3, "2026-03-10", None, FIXED, "m1", "A1"),
    AGREEMENTS[1],
]
#: (meterpoint, agreement, product, days, readings, too-late readings, too-late kWh, corrected, correction kWh, kWh)
LINE = (
    "meterpoint_id",
    "agreement_id",
    "product_id",
    "days",
    "reading_count",
    "too_late_count",
    "too_late_kwh",
    "corrected_count",
    "correction_kwh",
    "kwh",
)


def settle(pipeline: Pipeline, as_of: str) -> dg.ExecuteInProcessResult:
    """The statement decision for March, as of ``as_of``."""
    [owner] = [asset for asset in ASSETS if dg.AssetKey("statements") in asset.keys]
    return dg.materialize(
        ASSETS,
        selection=list(owner.keys),
        resources=pipeline.resources,
        instance=pipeline.instance,
        partition_key=MONTH,
        run_config={"ops": {"settle_statements": {"config": {"as_of": as_of}}}},
    )


def ingest(pipeline: Pipeline, hour: str, records: list[dict], usage_hours: tuple[str, str] | None) -> None:
    """Land one file in ``hour``, ingest it, and refresh the hourly usage of ``usage_hours`` (first, last)."""
    pipeline.land(hour, "readings.json", records)
    pipeline.materialize("raw_readings", hour)
    if usage_hours is not None:
        pipeline.materialize("hourly_usage", *usage_hours)


def runs(warehouse: Path, table: str) -> pl.DataFrame:
    return pl.read_delta(str(warehouse / table))


def lines(warehouse: Path, run: int) -> list[tuple]:
    found = runs(warehouse, "statements").filter(pl.col("run") == run)
    return sorted(found.select(LINE).rows())


def adjustments(warehouse: Path, run: int) -> list[tuple]:
    found = runs(warehouse, "statement_adjustments").filter(pl.col("run") == run)
    columns = ("meterpoint_id", "previous_run", "kwh_before", "kwh_after", "kwh_difference", "reasons")
    return sorted(found.select(columns).rows())


def run_kinds(warehouse: Path) -> list[tuple[int, str]]:
    return sorted(set(runs(warehouse, "statements").select("run", "run_kind").rows()))


def files_of_version(table: Path, version: int) -> dict[str, str]:
    """The data files live at ``version``, with the SHA-256 of their bytes."""
    paths = DeltaTable(str(table), version=version).get_add_actions(flatten=True).column("path").to_pylist()
    return {path: hashlib.sha256((table / path).read_bytes()).hexdigest() for path in paths}


def test_a_billed_month_gets_one_reconciliation_per_kind_of_news_and_its_first_run_never_changes(
    pipeline: Pipeline,
) -> None:
    warehouse = pipeline.warehouse
    write_source(pipeline.source_db, AGREEMENTS)
    pipeline.materialize("dim_agreement", "2026-04-01")
    # Two and zero days late: m1 1.0 + 0.5 kWh on the 10th, m2 2.0 kWh on the 12th.
    first = [r("a", "m1", "2026-03-10T10:00:00Z", 1.0), r("b", "m1", "2026-03-10T10:30:00Z", 0.5)]
    first.append(r("c", "m2", "2026-03-12T09:00:00Z", 2.0))
    ingest(pipeline, "2026-03-12-12", first, ("2026-03-10-10+0000", "2026-03-12-09+0000"))

    # The initial run, a day after the month ends.
    settle(pipeline, "2026-04-02T00:00:00+00:00")
    assert run_kinds(warehouse) == [(1, "initial")]
    assert lines(warehouse, 1) == [
        ("m1", "1", STANDARD, 1, 2, 0, 0.0, 0, 0.0, 1.5),
        ("m2", "2", STANDARD, 1, 1, 0, 0.0, 0, 0.0, 2.0),
    ]
    assert adjustments(warehouse, 1) == []
    statements = warehouse / "statements"
    first_run = files_of_version(statements, DeltaTable(str(statements)).version())
    first_rows = runs(warehouse, "statements").sort("meterpoint_id")

    # 1. A late reading within the watermark: m2 at 21:00 BST on the 31st, three days late.
    ingest(pipeline, "2026-04-03-00", [r("d", "m2", "2026-03-31T20:00:00Z", 0.25)], ("2026-03-31-21+0100",) * 2)
    settle(pipeline, "2026-04-03T12:00:00+00:00")
    assert run_kinds(warehouse)[-1] == (2, "reconciliation")
    assert lines(warehouse, 2) == [
        ("m1", "1", STANDARD, 1, 2, 0, 0.0, 0, 0.0, 1.5),
        ("m2", "2", STANDARD, 2, 2, 0, 0.0, 0, 0.0, 2.25),
    ]
    assert adjustments(warehouse, 2) == [("m2", 1, 2.0, 2.25, 0.25, ["late_reading"])]

    # 2. That reading sent again, corrected to 0.35: deduplication keeps the first copy (a
    # conflict in the quarantine), the bill takes the latest. hourly_usage does not change.
    ingest(pipeline, "2026-04-03-01", [r("d", "m2", "2026-03-31T20:00:00Z", 0.35)], None)
    assert [row["reason"] for row in pipeline.rows("quarantined_readings")] == ["conflict"]
    settle(pipeline, "2026-04-03T13:00:00+00:00")
    assert run_kinds(warehouse)[-1] == (3, "reconciliation")
    assert lines(warehouse, 3)[1] == ("m2", "2", STANDARD, 2, 2, 0, 0.0, 1, 0.1, 2.35)
    assert adjustments(warehouse, 3) == [("m2", 2, 2.25, 2.35, 0.1, ["resent_correction"])]

    # 3. A source correction: m1's day moves from agreement 1 (Standard) to 3 (Fixed); same kWh.
    write_source(pipeline.source_db, CORRECTED)
    pipeline.materialize("dim_agreement", "2026-04-04")
    settle(pipeline, "2026-04-04T12:00:00+00:00")
    assert run_kinds(warehouse)[-1] == (4, "reconciliation")
    assert lines(warehouse, 4)[0] == ("m1", "3", FIXED, 1, 2, 0, 0.0, 0, 0.0, 1.5)
    assert adjustments(warehouse, 4) == [("m1", 3, 1.5, 1.5, 0.0, ["coverage_changed"])]

    # 4. A reading past the watermark: m1 on the 20th arrives 15 days later, quarantined as
    # too_late for the operational tables, billed by the next reconciliation.
    ingest(pipeline, "2026-04-04-01", [r("e", "m1", "2026-03-20T10:00:00Z", 0.6)], None)
    assert sorted(row["reason"] for row in pipeline.rows("quarantined_readings")) == ["conflict", "too_late"]
    settle(pipeline, "2026-04-04T13:00:00+00:00")
    assert run_kinds(warehouse)[-1] == (5, "reconciliation")
    assert lines(warehouse, 5)[0] == ("m1", "3", FIXED, 2, 3, 1, 0.6, 0, 0.0, 2.1)
    assert adjustments(warehouse, 5) == [("m1", 4, 1.5, 2.1, 0.6, ["too_late_reading"])]

    # Nothing changed since: a decision adds no run and no adjustment.
    before = (runs(warehouse, "statements").height, runs(warehouse, "statement_adjustments").height)
    settle(pipeline, "2026-04-04T14:00:00+00:00")
    assert (runs(warehouse, "statements").height, runs(warehouse, "statement_adjustments").height) == before

    # The first statement is as it was written: its rows, and its files byte for byte.
    assert runs(warehouse, "statements").filter(pl.col("run") == 1).sort("meterpoint_id").equals(first_rows)
    live = files_of_version(statements, DeltaTable(str(statements)).version())
    assert {name: live.get(name) for name in first_run} == first_run
    # And every run recomputes from the versions it recorded.
    for run in range(1, 6):
        assert pipeline_verify(pipeline, run) == []


def pipeline_verify(pipeline: Pipeline, run: int) -> list[str]:
    """What differs between a stored run and its recomputation from the versions it recorded."""
    warehouse = pipeline.resources["warehouse"].get_warehouse()
    return verify_run(warehouse, MONTH, "Europe/London", run)
