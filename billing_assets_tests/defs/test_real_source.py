"""A source database shaped like the case study's, through every dimension and gold table, row by row.

The case study declares no keys, stores dates as ``DATE`` text and ids as 10-hex-character
text, with an integer ``id`` surrogate on product and an integer ``agreement_id``. Every id
reaches the warehouse as the same opaque string, so analysts join on equal strings everywhere.
"""

import sqlite3
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r, ts
from billing_assets_tests.defs.test_gold import check_results, project

CASE_STUDY_SCHEMA = """
CREATE TABLE product (id INTEGER, product_id TEXT, display_name TEXT, is_variable INTEGER);
CREATE TABLE meterpoint (meterpoint_id TEXT, region TEXT);
CREATE TABLE agreement (agreement_id INTEGER, agreement_valid_from DATE, agreement_valid_to DATE, product_id TEXT,
    meterpoint_id TEXT, account_id TEXT);
"""
PRODUCTS = [
    (1, "1dff0f3048", "Standard Variable", 1),
    (2, "5e0b6f9a21", "Fixed 12M", 0),
    (3, "0000004417", "Standard Variable", 1),  # all digits, leading zeros: still text, kept as written
]
METERPOINTS = [
    ("0432df65f7", "London"),
    ("9a1c3e5b7d", "Wales"),
    ("0000000001", "Scotland"),
    ("7e7e7e7e7e", "London"),  # readings, never an agreement
]
SWITCHER, OVERLAP, DIGITS, NO_AGREEMENT = (mp for mp, _ in METERPOINTS)
ACCOUNTS = ("a1b2c3d4e5", "b2c3d4e5f6", "c3d4e5f6a7")
AGREEMENTS = [
    (1, "2026-01-01", "2026-03-28", "1dff0f3048", SWITCHER, ACCOUNTS[0]),  # switches product on 28 March ...
    (2, "2026-03-28", None, "5e0b6f9a21", SWITCHER, ACCOUNTS[0]),  # ... to this open-ended one
    (9, "2026-02-01", None, "1dff0f3048", OVERLAP, ACCOUNTS[1]),  # overlaps 10, same start: 10 is the higher id
    (10, "2026-02-01", None, "ffffffffff", OVERLAP, ACCOUNTS[1]),  # no product row with this product_id
    # Stored as TEXT in the INTEGER column (it is not a number), next to the INTEGER rows above.
    ("c0ffee0042", "2026-01-15", None, "0000004417", DIGITS, ACCOUNTS[2]),
]
LOAD_DAY, INGESTION_HOUR = "2026-03-30", "2026-03-30-00"
DAYS = ("2026-03-27", "2026-03-28")
READINGS = [
    r("a", SWITCHER, "2026-03-27T10:00:00Z", 1.0),  # agreement 1: Standard Variable
    r("b", SWITCHER, "2026-03-28T10:00:00Z", 2.0),  # switch day: agreement 2 only, Fixed 12M
    r("c", OVERLAP, "2026-03-27T10:00:00Z", 4.0),  # covered by 10, whose product is unknown
    r("d", DIGITS, "2026-03-27T10:00:00Z", 0.5),  # agreement c0ffee0042: product 0000004417
    r("e", DIGITS, "2026-03-28T10:30:00Z", 0.25),
    r("f", NO_AGREEMENT, "2026-03-28T10:00:00Z", 8.0),
]


def write_case_study_source(path: Path) -> None:
    """The case study's DDL (no keys), its id and date shapes, and one id column of mixed storage."""
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(CASE_STUDY_SCHEMA)
        conn.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", PRODUCTS)
        conn.executemany("INSERT INTO meterpoint VALUES (?, ?)", METERPOINTS)
        conn.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", AGREEMENTS)
    storage = dict(conn.execute("SELECT agreement_id, typeof(agreement_id) FROM agreement").fetchall())
    dates = {t for (t,) in conn.execute("SELECT typeof(agreement_valid_from) FROM agreement")}
    conn.close()
    assert storage == {1: "integer", 2: "integer", 9: "integer", 10: "integer", "c0ffee0042": "text"}
    assert dates == {"text"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, spark) -> tuple[Pipeline, dg.ExecuteInProcessResult]:
    """The case-study source loaded once (with the load's run), readings ingested, every gold table built for DAYS."""
    pipeline = Pipeline(tmp_path_factory.mktemp("real_source"), spark)
    write_case_study_source(pipeline.source_db)
    pipeline.land(INGESTION_HOUR, "readings.json", READINGS)
    load = pipeline.materialize("dim_agreement", LOAD_DAY)
    pipeline.materialize("raw_readings", INGESTION_HOUR)
    pipeline.materialize("half_hourly_consumption", *DAYS)
    pipeline.materialize("active_agreements", *DAYS)
    return pipeline, load


@pytest.fixture
def real(built) -> Pipeline:
    return built[0]


def table(pipeline: Pipeline, name: str, *columns: str, days: str | None = None) -> list[tuple]:
    """A table's rows projected on ``columns`` (only ``days`` when named: the partition column), in text order."""
    rows = pipeline.rows(name)
    if days is not None:
        rows = [row for row in rows if DAYS[0] <= row[days].isoformat() <= DAYS[1]]
    return in_order(project(rows, *columns))


def in_order(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: tuple("" if v is None else str(v) for v in row))


LOADED = (date(2026, 3, 30), None, True)  # valid_from_date, valid_to_date, is_current: seen on the one load
SCD2 = ("valid_from_date", "valid_to_date", "is_current")


def test_snapshots_hold_every_source_id_as_the_same_string(real) -> None:
    snapshot = date(2026, 3, 30)
    assert table(real, "product_snapshots", "id", "product_id", "display_name", "is_variable", "snapshot_date") == [
        ("1", "1dff0f3048", "Standard Variable", True, snapshot),
        ("2", "5e0b6f9a21", "Fixed 12M", False, snapshot),
        ("3", "0000004417", "Standard Variable", True, snapshot),
    ]
    assert table(real, "meterpoint_snapshots", "meterpoint_id", "region", "snapshot_date") == in_order(
        [(mp, region, snapshot) for mp, region in METERPOINTS]
    )
    columns = (
        "agreement_id",
        "agreement_valid_from",
        "agreement_valid_to",
        "product_id",
        "meterpoint_id",
        "account_id",
        "snapshot_date",
    )
    assert table(real, "agreement_snapshots", *columns) == [
        ("1", date(2026, 1, 1), date(2026, 3, 28), "1dff0f3048", SWITCHER, ACCOUNTS[0], snapshot),
        ("10", date(2026, 2, 1), None, "ffffffffff", OVERLAP, ACCOUNTS[1], snapshot),
        ("2", date(2026, 3, 28), None, "5e0b6f9a21", SWITCHER, ACCOUNTS[0], snapshot),
        ("9", date(2026, 2, 1), None, "1dff0f3048", OVERLAP, ACCOUNTS[1], snapshot),
        ("c0ffee0042", date(2026, 1, 15), None, "0000004417", DIGITS, ACCOUNTS[2], snapshot),
    ]


def test_dimension_histories_row_by_row(real) -> None:
    assert table(real, "dim_product", "id", "product_id", "display_name", "is_variable", *SCD2) == [
        ("1", "1dff0f3048", "Standard Variable", True, *LOADED),
        ("2", "5e0b6f9a21", "Fixed 12M", False, *LOADED),
        ("3", "0000004417", "Standard Variable", True, *LOADED),
    ]
    assert table(real, "dim_meterpoint", "meterpoint_id", "region", *SCD2) == [
        ("0000000001", "Scotland", *LOADED),
        ("0432df65f7", "London", *LOADED),
        ("7e7e7e7e7e", "London", *LOADED),
        ("9a1c3e5b7d", "Wales", *LOADED),
    ]
    columns = ("agreement_id", "agreement_valid_from", "agreement_valid_to", "product_id", "meterpoint_id")
    assert table(real, "dim_agreement", *columns, "account_id", *SCD2) == [
        ("1", date(2026, 1, 1), date(2026, 3, 28), "1dff0f3048", SWITCHER, ACCOUNTS[0], *LOADED),
        ("10", date(2026, 2, 1), None, "ffffffffff", OVERLAP, ACCOUNTS[1], *LOADED),
        ("2", date(2026, 3, 28), None, "5e0b6f9a21", SWITCHER, ACCOUNTS[0], *LOADED),
        ("9", date(2026, 2, 1), None, "1dff0f3048", OVERLAP, ACCOUNTS[1], *LOADED),
        ("c0ffee0042", date(2026, 1, 15), None, "0000004417", DIGITS, ACCOUNTS[2], *LOADED),
    ]
    for name in ("dim_product", "dim_meterpoint", "dim_agreement"):
        hashes = [row["row_hash"] for row in real.rows(name)]
        assert len(set(hashes)) == len(hashes) and all(len(h) == 64 for h in hashes), name


def test_source_checks_name_the_agreements_by_their_string_ids(built) -> None:
    found = check_results(*built)
    assert {name: c.metadata["agreement_ids"].value for name, c in found.items()} == {
        "overlapping_agreements": ["9", "10"],  # integer ids keep their numeric order
        "unknown_product": ["10"],
        "product_without_name": [],
        "unknown_meterpoint": [],
        "zero_length_agreements": [],
    }


def test_agreement_days_row_by_row(real) -> None:
    columns = (
        "date",
        "agreement_id",
        "meterpoint_id",
        "account_id",
        "product_id",
        "product_display_name",
        "product_is_variable",
        "covers_readings",
        "is_active",
        "unmatched_reason",
    )
    mar27, mar28 = date(2026, 3, 27), date(2026, 3, 28)
    standard = ("1dff0f3048", "Standard Variable", True)
    digits = ("c0ffee0042", DIGITS, ACCOUNTS[2], "0000004417", "Standard Variable", True, True, True, None)
    unknown = ("10", OVERLAP, ACCOUNTS[1], "ffffffffff", None, None, True, True, "unknown_product")
    outvoted = ("9", OVERLAP, ACCOUNTS[1], *standard, False, True, None)  # 10 wins the tie: 10 > 9
    assert table(real, "agreement_days", *columns, days="date") == [
        (mar27, "1", SWITCHER, ACCOUNTS[0], *standard, True, True, None),
        (mar27, *unknown),
        (mar27, *outvoted),
        (mar27, *digits),
        (mar28, *unknown),
        # The first day of 2 covers readings but is not "active" (valid_from < D is strict).
        (mar28, "2", SWITCHER, ACCOUNTS[0], "5e0b6f9a21", "Fixed 12M", False, True, False, None),
        (mar28, *outvoted),
        (mar28, *digits),
    ]


def test_active_agreements_row_by_row(real) -> None:
    columns = ("as_of_date", "agreement_id", "meterpoint_id", "product_display_name", "product_is_variable")
    mar27, mar28 = date(2026, 3, 27), date(2026, 3, 28)
    assert table(real, "active_agreements", *columns) == [
        (mar27, "1", SWITCHER, "Standard Variable", True),
        (mar27, "10", OVERLAP, None, None),
        (mar27, "9", OVERLAP, "Standard Variable", True),
        (mar27, "c0ffee0042", DIGITS, "Standard Variable", True),
        (mar28, "10", OVERLAP, None, None),
        (mar28, "9", OVERLAP, "Standard Variable", True),
        (mar28, "c0ffee0042", DIGITS, "Standard Variable", True),
    ]


def test_half_hourly_consumption_row_by_row(real) -> None:
    columns = ("interval_start", "settlement_date", "settlement_period", "meterpoint_count", "consumption")
    assert table(real, "half_hourly_consumption", *columns) == [
        (ts("2026-03-27T10:00"), date(2026, 3, 27), 21, 3, 5.5),  # a, c, d
        (ts("2026-03-28T10:00"), date(2026, 3, 28), 21, 2, 10.0),  # b, f
        (ts("2026-03-28T10:30"), date(2026, 3, 28), 22, 1, 0.25),  # e
    ]


def test_product_tables_row_by_row(real) -> None:
    assert table(
        real, "product_daily_consumption", "date", "product_display_name", "meterpoint_count", "consumption"
    ) == [
        (date(2026, 3, 27), "Standard Variable", 2, 1.5),  # two product ids, one display name
        (date(2026, 3, 28), "Fixed 12M", 1, 2.0),
        (date(2026, 3, 28), "Standard Variable", 1, 0.25),
    ]
    columns = ("interval_start", "product_display_name", "meterpoint_count", "consumption", "avg_consumption")
    assert table(real, "avg_consumption_per_half_hour_by_product", *columns, "settlement_date") == [
        (ts("2026-03-27T10:00"), "Standard Variable", 2, 1.5, 0.75, date(2026, 3, 27)),
        (ts("2026-03-28T10:00"), "Fixed 12M", 1, 2.0, 2.0, date(2026, 3, 28)),
        (ts("2026-03-28T10:30"), "Standard Variable", 1, 0.25, 0.25, date(2026, 3, 28)),
    ]


def test_unmatched_readings_row_by_row(real) -> None:
    columns = ("record_id", "meterpoint_id", "interval_start", "consumption", "reason", "settlement_date")
    assert table(real, "unmatched_readings", *columns) == [
        ("c", OVERLAP, ts("2026-03-27T10:00"), 4.0, "unknown_product", date(2026, 3, 27)),
        ("f", NO_AGREEMENT, ts("2026-03-28T10:00"), 8.0, "no_agreement", date(2026, 3, 28)),
    ]
