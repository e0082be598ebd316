"""The daily source load recomputes only the coverage days that can have changed, and still equals a full rebuild."""

from datetime import date

import pytest

from billing_assets.steps.dimensions import load_dimensions
from billing_assets.tables.delta_io import read_table
from billing_assets.tables.schemas import AGREEMENT, AGREEMENT_DAYS, PRODUCT
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.dimensions import agreement_days
from billing_assets_tests.defs.test_gold import AGREEMENTS, STANDARD, write_source

FIRST = date(2026, 1, 1)


def _rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.select(*AGREEMENT_DAYS.schema.names).collect())


def _rebuilt(spark, warehouse: Warehouse, last: date) -> list[tuple]:
    """Coverage computed from scratch from the current dimensions, every day since ``FIRST``."""
    agreements = read_table(spark, warehouse.open(AGREEMENT.history)).filter("is_current")
    products = read_table(spark, warehouse.open(PRODUCT.history)).filter("is_current")
    return _rows(agreement_days(agreements, products, FIRST, last))


def test_a_daily_load_recomputes_only_new_days_and_the_spans_the_source_changed(spark, tmp_path) -> None:
    source, warehouse = tmp_path / "source.db", Warehouse(str(tmp_path / "warehouse"))
    write_source(source)

    def load(day: date) -> list[str]:
        return load_dimensions(spark, warehouse, str(source), day, FIRST, day).changed_days

    first_load = load(date(2026, 3, 30))
    assert len(first_load) == (date(2026, 3, 30) - FIRST).days + 1  # m2 is covered every day
    assert load(date(2026, 3, 30)) == []  # the same day again: nothing can have changed
    assert load(date(2026, 3, 31)) == ["2026-03-31"]  # the next day, the same source: only the new day

    # Agreement 1 ends a day earlier: 27 March loses m1's coverage; nothing else changes.
    write_source(source, [(1, "2026-01-01", "2026-03-27", STANDARD, "m1", "A1"), *AGREEMENTS[1:]])
    assert load(date(2026, 4, 1)) == ["2026-03-27", "2026-04-01"]

    table = _rows(read_table(spark, warehouse.open(AGREEMENT_DAYS)))
    assert table == _rebuilt(spark, warehouse, date(2026, 4, 1))


def test_a_load_that_fails_at_the_coverage_commit_is_redone_by_the_next_one(spark, tmp_path) -> None:
    """The histories are written after the coverage: a failed load leaves the changes to be found again."""
    source, warehouse = tmp_path / "source.db", Warehouse(str(tmp_path / "warehouse"))
    write_source(source)
    load_dimensions(spark, warehouse, str(source), date(2026, 3, 30), FIRST, date(2026, 3, 30))
    write_source(source, [(1, "2026-01-01", "2026-03-27", STANDARD, "m1", "A1"), *AGREEMENTS[1:]])
    # A real failure of the next coverage commit: its log entry's name is taken (as a folder).
    log = tmp_path / "warehouse" / AGREEMENT_DAYS.name / "_delta_log"
    blocker = log / f"{warehouse.open(AGREEMENT_DAYS).delta.version() + 1:020d}.json"
    blocker.mkdir()
    with pytest.raises(Exception):  # noqa: B017 - whichever error delta-rs gives, the load must stop
        load_dimensions(spark, warehouse, str(source), date(2026, 3, 31), FIRST, date(2026, 3, 31))
    blocker.rmdir()

    changed = load_dimensions(spark, warehouse, str(source), date(2026, 3, 31), FIRST, date(2026, 3, 31)).changed_days
    assert changed == ["2026-03-27", "2026-03-31"]
    table = _rows(read_table(spark, warehouse.open(AGREEMENT_DAYS)))
    assert table == _rebuilt(spark, warehouse, date(2026, 3, 31))
