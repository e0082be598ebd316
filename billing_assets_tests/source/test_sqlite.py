"""Reading the SQLite source: good data converts, every kind of bad source fails with a clear message."""

import sqlite3
from datetime import date

import pytest

from billing_assets.source import sqlite as source
from billing_assets.source.sample_db import write_sample_source
from billing_assets_tests.defs.test_gold import write_source


def test_reads_and_converts_all_tables(tmp_path) -> None:
    write_source(tmp_path / "s.db")
    tables = source.read_source(str(tmp_path / "s.db"))
    agreements = tables["agreement"].to_pylist()
    assert agreements[0] == {
        "agreement_id": 1,
        "agreement_valid_from": date(2026, 1, 1),
        "agreement_valid_to": date(2026, 3, 28),
        "product_id": 101,
        "meterpoint_id": "m1",
        "account_id": "A1",
    }
    assert agreements[1]["agreement_valid_to"] is None
    assert tables["product"].column("is_variable").to_pylist() == [True, True, False, True]
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
    write_source(path, [(1, "soon", None, 101, "m1", "A1")])
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
