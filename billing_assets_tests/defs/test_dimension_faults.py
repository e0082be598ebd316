"""Loading the source database through the asset: every fault fails the run, names the problem, writes nothing."""

import sqlite3
from pathlib import Path

import dagster as dg
from deltalake import DeltaTable

from billing_assets.definitions import ASSETS
from billing_assets.defs.dimensions import source_dimensions
from billing_assets.source import sqlite as source
from billing_assets_tests.defs.test_gold import write_source

FIRST_DAY, NEXT_DAY = "2026-03-30", "2026-03-31"


def load(pipeline, day: str) -> dg.ExecuteInProcessResult:
    """Materialise ``source_dimensions`` for ``day`` without raising when it fails."""
    return dg.materialize(
        ASSETS,
        selection=list(source_dimensions.keys),
        resources=pipeline.resources,
        instance=pipeline.instance,
        partition_key=day,
        raise_on_error=False,
    )


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The error (and its causes) the failed step reported."""
    [event] = result.get_step_failure_events()
    return event.step_failure_data.error.to_string()


def table_versions(warehouse: Path) -> dict[str, int]:
    return {folder.name: DeltaTable(str(folder)).version() for folder in sorted(warehouse.iterdir())}


def execute(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


def test_each_source_fault_fails_the_load_names_the_problem_and_writes_nothing(pipeline, monkeypatch) -> None:
    db = pipeline.source_db
    # Missing before anything was ever loaded: the run fails and no table exists, not even an empty one.
    result = load(pipeline, FIRST_DAY)
    assert not result.success
    assert f"source database not found: {db}" in failure_text(result)
    assert not pipeline.warehouse.exists() or not any(pipeline.warehouse.iterdir())

    write_source(db)
    assert load(pipeline, FIRST_DAY).success
    before = table_versions(pipeline.warehouse)
    assert before

    def missing() -> None:
        db.rename(db.with_suffix(".moved"))

    def restore_missing() -> None:
        db.with_suffix(".moved").rename(db)

    holder: list[sqlite3.Connection] = []

    def locked() -> None:
        monkeypatch.setattr(source, "LOCK_TIMEOUT_SECONDS", 0.5)
        holder.append(sqlite3.connect(db))
        holder[0].execute("BEGIN EXCLUSIVE")

    def release_lock() -> None:
        holder.pop().rollback()

    faults = [
        (missing, restore_missing, "source database not found"),
        (locked, release_lock, "stayed locked for"),
        (
            lambda: execute(db, "ALTER TABLE product RENAME COLUMN display_name TO name"),
            lambda: execute(db, "ALTER TABLE product RENAME COLUMN name TO display_name"),
            "source table 'product' lacks columns ['display_name']",
        ),
        (
            lambda: execute(db, "ALTER TABLE meterpoint RENAME TO meterpoint_old"),
            lambda: execute(db, "ALTER TABLE meterpoint_old RENAME TO meterpoint"),
            "source table 'meterpoint' is missing",
        ),
        (
            lambda: execute(db, "UPDATE agreement SET agreement_valid_from = 'soon' WHERE agreement_id = 1"),
            lambda: write_source(db),
            "agreement.agreement_valid_from row 1: not a date: 'soon'",
        ),
    ]
    for break_source, repair, message in faults:
        break_source()
        try:
            result = load(pipeline, NEXT_DAY)
        finally:
            repair()
        assert not result.success, message
        assert message in failure_text(result)
        assert table_versions(pipeline.warehouse) == before, message  # nothing half-written

    # The same day loads once the source is sound again: the faults, not the day, failed it.
    assert load(pipeline, NEXT_DAY).success
    assert table_versions(pipeline.warehouse) != before
