"""Reading the SQLite source: good data converts, every kind of bad source fails with a clear message."""

import sqlite3
from datetime import date

import pyarrow as pa
import pytest

from billing_assets.source import sqlite as source
from billing_assets.source.sample_db import write_sample_source
from billing_assets_tests.defs.test_gold import AGREEMENTS, STANDARD, write_source


def test_reads_and_converts_all_tables(tmp_path) -> None:
    write_source(tmp_path / "s.db")
    tables = source.read_source(str(tmp_path / "s.db"))
    agreements = tables["agreement"].to_pylist()
    assert agreements[0] == {
        "agreement_id": "1",
        "agreement_valid_from": date(2026, 1, 1),
        "agreement_valid_to": date(2026, 3, 28),
        "product_id": STANDARD,
        "meterpoint_id": "m1",
        "account_id": "A1",
    }
    assert agreements[1]["agreement_valid_to"] is None
    assert tables["product"].column("id").to_pylist() == ["1", "2", "3", "4"]
    assert tables["product"].column("is_variable").to_pylist() == [True, True, False, True]
    assert all(field.type == pa.string() for t in tables.values() for field in t.schema if field.name.endswith("id"))
    assert tables["product"].column("display_name").to_pylist()[-1] is None  # product_without_name
    assert tables["meterpoint"].num_rows == 5


def test_missing_database_names_the_path_and_variable(tmp_path) -> None:
    with pytest.raises(source.SourceError, match=r"source database not found: .*nope.db \(set BILLING_SOURCE_DB\)"):
        source.read_source(str(tmp_path / "nope.db"))


def test_changed_schema_names_the_missing_column(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_source(path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE product RENAME COLUMN display_name TO name")
    conn.close()
    with pytest.raises(source.SourceError, match=r"'product' lacks columns \['display_name'\]"):
        source.read_source(str(path))


def test_missing_table_is_named(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_source(path)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE meterpoint")
    conn.close()
    with pytest.raises(source.SourceError, match="'meterpoint' is missing"):
        source.read_source(str(path))


def test_locked_database_fails_after_the_timeout(tmp_path, monkeypatch) -> None:
    path = tmp_path / "s.db"
    write_source(path)
    monkeypatch.setattr(source, "LOCK_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(source.SourceError, match="stayed locked"):
            source.read_source(str(path))
    finally:
        holder.rollback()
        holder.close()


def test_bad_values_and_non_databases_fail_clearly(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_source(path, [(1, "soon", None, STANDARD, "m1", "A1")])
    with pytest.raises(source.SourceError, match=r"agreement.agreement_valid_from row 1: not a date: 'soon'"):
        source.read_source(str(path))
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(source.SourceError, match="not a readable SQLite database"):
        source.read_source(str(tmp_path / "junk.db"))


def test_sample_database_has_the_awkward_cases(tmp_path) -> None:
    meterpoints = [f"mp{i:02d}" for i in range(40)]
    write_sample_source(str(tmp_path / "s.db"), meterpoints, date(2026, 3, 28))
    tables = source.read_source(str(tmp_path / "s.db"))
    agreements = tables["agreement"].to_pylist()
    covered = {a["meterpoint_id"] for a in agreements}
    assert set(meterpoints) - covered  # meterpoints with readings but no agreement
    assert any(a["agreement_valid_to"] is None for a in agreements)  # open-ended
    assert any(a["agreement_valid_from"] == a["agreement_valid_to"] for a in agreements)  # zero-length
    by_meter: dict[str, list] = {}
    for a in agreements:
        by_meter.setdefault(a["meterpoint_id"], []).append(a)
    switches = [
        rows
        for rows in by_meter.values()
        if len(rows) == 2 and rows[0]["agreement_valid_to"] == rows[1]["agreement_valid_from"]
    ]
    assert switches and all(rows[0]["product_id"] != rows[1]["product_id"] for rows in switches)
    names = [p["display_name"] for p in tables["product"].to_pylist()]
    assert len(set(names)) < len(names)  # product ids sharing a display name


def test_sample_database_is_shaped_like_the_case_study(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_sample_source(str(path), [f"{i:010x}" for i in range(40)], date(2026, 3, 28))
    conn = sqlite3.connect(path)
    declared = {
        table: [(c[1], c[2], c[5]) for c in conn.execute(f"PRAGMA table_info({table})")]
        for table in ("product", "meterpoint", "agreement")
    }
    stored = {
        (column, kind)
        for column in ("product_id", "account_id", "agreement_valid_from")
        for (kind,) in conn.execute(f"SELECT DISTINCT typeof({column}) FROM agreement")
    }
    conn.close()
    assert declared == {  # (name, declared type, part of a primary key): none is
        "product": [
            ("id", "INTEGER", 0),
            ("product_id", "TEXT", 0),
            ("display_name", "TEXT", 0),
            ("is_variable", "INTEGER", 0),
        ],
        "meterpoint": [("meterpoint_id", "TEXT", 0), ("region", "TEXT", 0)],
        "agreement": [
            ("agreement_id", "INTEGER", 0),
            ("agreement_valid_from", "DATE", 0),
            ("agreement_valid_to", "DATE", 0),
            ("product_id", "TEXT", 0),
            ("meterpoint_id", "TEXT", 0),
            ("account_id", "TEXT", 0),
        ],
    }
    assert stored == {("product_id", "text"), ("account_id", "text"), ("agreement_valid_from", "text")}
    tables = source.read_source(str(path))
    hex_ids = [
        *tables["product"].column("product_id").to_pylist(),
        *tables["agreement"].column("account_id").to_pylist(),
    ]
    assert all(len(x) == 10 and int(x, 16) >= 0 for x in hex_ids)
    assert set(tables["agreement"].column("product_id").to_pylist()) <= set(hex_ids)


def write_untyped(path, agreements, products=((1, "p1", "Standard", 1),)) -> None:
    """Columns without a declared type: SQLite stores each value exactly as given (no affinity)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE product (id, product_id, display_name, is_variable);"
            "CREATE TABLE meterpoint (meterpoint_id, region);"
            "CREATE TABLE agreement (agreement_id, agreement_valid_from, agreement_valid_to, product_id,"
            " meterpoint_id, account_id);"
        )
        conn.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", products)
        conn.execute("INSERT INTO meterpoint VALUES ('m1', 'London')")
        conn.executemany("INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)", agreements)
    conn.close()


def test_ids_of_any_storage_class_become_the_same_strings(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_untyped(
        path,
        [
            (7, "2026-01-01", None, 101, "m1", 42),  # integers
            ("1dff0f3048", "2026-01-01", None, "101", "m1", "0042"),  # text, leading zeros kept
            (8.0, "2026-01-01", None, 101.0, 1234567890123456789, None),  # integral reals; a large integer
        ],
        products=[(1, 101, "Standard", 1), ("2", "1dff0f3048", "Fixed", 0)],
    )
    conn = sqlite3.connect(path)
    stored = {t for (t,) in conn.execute("SELECT typeof(agreement_id) FROM agreement")}
    conn.close()
    assert stored == {"integer", "text", "real"}
    tables = source.read_source(str(path))
    assert project(tables["agreement"], "agreement_id", "product_id", "meterpoint_id", "account_id") == [
        ("7", "101", "m1", "42"),
        ("1dff0f3048", "101", "m1", "0042"),
        ("8", "101", "1234567890123456789", None),
    ]
    assert project(tables["product"], "id", "product_id") == [("1", "101"), ("2", "1dff0f3048")]


def project(data: pa.Table, *columns: str) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in data.to_pylist()]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (7.5, r"agreement.agreement_id row 2: not an id \(a non-integral number\): 7.5"),
        (float("inf"), r"agreement.agreement_id row 2: not an id \(a non-integral number\): inf"),
        (b"\x01\x02", r"agreement.agreement_id row 2: not an id \(a blob\): b'\\x01\\x02'"),
    ],
)
def test_a_fractional_or_blob_id_names_the_row(tmp_path, value, message) -> None:
    write_untyped(
        tmp_path / "s.db", [(1, "2026-01-01", None, "p1", "m1", "a"), (value, "2026-01-01", None, "p1", "m1", "a")]
    )
    with pytest.raises(source.SourceError, match=message):
        source.read_source(str(tmp_path / "s.db"))


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE agreement SET agreement_id = NULL WHERE agreement_id = 3", "agreement.agreement_id row 3: missing id"),
        (
            "UPDATE agreement SET meterpoint_id = NULL WHERE agreement_id = 2",
            "agreement.meterpoint_id row 2: missing id",
        ),
        ("UPDATE agreement SET meterpoint_id = '' WHERE agreement_id = 2", "agreement.meterpoint_id row 2: missing id"),
        ("UPDATE product SET product_id = NULL WHERE id = 4", "product.product_id row 4: missing id"),
        (
            "UPDATE meterpoint SET meterpoint_id = '  ' WHERE region = 'Wales'",
            "meterpoint.meterpoint_id row 2: missing id",
        ),
    ],
)
def test_a_missing_key_names_the_table_column_and_row(tmp_path, statement, message) -> None:
    path = tmp_path / "s.db"
    write_source(path)
    with sqlite3.connect(path) as conn:
        conn.execute(statement)
    conn.close()
    with pytest.raises(source.SourceError, match=message):
        source.read_source(str(path))


def test_ids_that_are_not_keys_may_be_missing(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_source(path, [(1, "2026-01-01", None, None, "m1", None)])  # no product (unknown_product), no account
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE product SET id = NULL")
    conn.close()
    tables = source.read_source(str(path))
    assert project(tables["agreement"], "agreement_id", "product_id", "account_id") == [("1", None, None)]
    assert tables["product"].column("id").to_pylist() == [None] * 4


@pytest.mark.parametrize("value", ["2026-02-30", "28/03/2026", "2026-03", 20260328])
def test_an_unparseable_date_names_the_row(tmp_path, value) -> None:
    path = tmp_path / "s.db"
    write_source(path, [*AGREEMENTS[:2], (3, "2026-01-01", value, STANDARD, "m2", "A2")])
    with pytest.raises(source.SourceError, match=rf"agreement.agreement_valid_to row 3: not a date: {value!r}"):
        source.read_source(str(path))


def test_a_missing_id_column_is_named(tmp_path) -> None:
    path = tmp_path / "s.db"
    write_source(path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE agreement DROP COLUMN account_id")
    conn.close()
    with pytest.raises(source.SourceError, match=r"'agreement' lacks columns \['account_id'\]"):
        source.read_source(str(path))


def test_extra_columns_and_tables_are_ignored(tmp_path) -> None:
    write_source(tmp_path / "plain.db")
    path = tmp_path / "s.db"
    write_source(path)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE agreement ADD COLUMN tariff_code BLOB")
        conn.execute("UPDATE agreement SET tariff_code = x'00ff'")
        conn.execute("ALTER TABLE product ADD COLUMN notes TEXT")
        conn.execute("CREATE TABLE account (account_id TEXT, name TEXT)")
        conn.execute("INSERT INTO account VALUES ('A1', 'someone')")
    conn.close()
    assert source.read_source(str(path)) == source.read_source(str(tmp_path / "plain.db"))
