"""``billing-assets statement``: print, ``--out``, ``--verify`` and the one-line refusals (no Spark)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from billing_assets.cli import main
from billing_assets.domain.settlement import Lifecycle
from billing_assets.steps.statements import settle_month
from billing_assets.tables.schemas import AGREEMENT_DAYS, HOURLY_USAGE, STATEMENTS
from billing_assets.tables.warehouse import Warehouse
from billing_assets_tests.steps.test_statements import append, covered, usage

MONTH = "2026-02"


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Warehouse:
    """A warehouse whose February has one initial run: mp1, 1.75 kWh under a1."""
    built = Warehouse(str(tmp_path / "warehouse"))
    append(built, HOURLY_USAGE, [usage("mp1", 3, 10, 1.5, 2), usage("mp1", 10, 8, 0.25, 1)])
    append(built, AGREEMENT_DAYS, covered("mp1", "a1", "p1", "Fixed", 1, 28))
    lifecycle = Lifecycle(timedelta(days=1), timedelta(days=60))
    assert settle_month(built, MONTH, "Europe/London", lifecycle, datetime(2026, 3, 2, tzinfo=UTC)).run == 1
    monkeypatch.setenv("BILLING_WAREHOUSE_URI", built.root)
    monkeypatch.setenv("BILLING_LANDING_URI", str(tmp_path / "landing"))
    return built


def test_prints_the_latest_run_and_writes_it_to_parquet(
    warehouse: Warehouse, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["statement", "--month", MONTH]) == 0
    printed = capsys.readouterr().out
    assert "mp1" in printed and "1.75" in printed and "initial" in printed and printed.rstrip().endswith("1 row")

    out = tmp_path / "out" / "february.parquet"
    assert main(["statement", "--month", MONTH, "--run", "1", "--out", str(out)]) == 0
    written = pl.read_parquet(out)
    assert written.select("meterpoint_id", "run", "kwh").rows() == [("mp1", 1, 1.75)]
    assert written.columns == STATEMENTS.schema.names

    assert main(["statement", "--month", MONTH, "--out", str(out)]) == 2  # exists, no --force
    assert "exists; add --force" in capsys.readouterr().err
    assert main(["statement", "--month", MONTH, "--out", str(out), "--force"]) == 0


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--month", "2026-2"], 2, "--month must be YYYY-MM, got '2026-2'"),
        (["--month", MONTH, "--run", "0"], 2, "--run must be 1 or more"),
        (["--month", "2026-03"], 1, "2026-03 has no statement"),
        (["--month", MONTH, "--run", "7"], 1, "2026-02 has no statement run 7"),
    ],
)
def test_a_request_it_cannot_serve_is_one_line(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    assert main(["statement", *argv]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_out_may_not_write_into_the_warehouse(warehouse: Warehouse, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["statement", "--month", MONTH, "--out", f"{warehouse.root}/x.parquet"]) == 2
    assert "inside the warehouse" in capsys.readouterr().err


def test_verify_recomputes_the_run_from_the_versions_it_recorded(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    append(warehouse, HOURLY_USAGE, [usage("mp1", 20, 1, 3.0, 1)])  # later input: not what run 1 read

    assert main(["statement", "--month", MONTH, "--verify"]) == 0
    assert "2026-02 run 1 (initial) verified: 1 line(s) recomputed from hourly_usage@0" in capsys.readouterr().out

    # A second run whose kWh its inputs do not give.
    stored = statement_rows(warehouse).with_columns(pl.lit(2).cast(pl.Int32).alias("run"), pl.lit(9.5).alias("kwh"))
    write_deltalake(warehouse.uri(STATEMENTS), stored.to_arrow().cast(STATEMENTS.schema), mode="append")
    assert main(["statement", "--month", MONTH, "--verify"]) == 1
    captured = capsys.readouterr()
    assert "stored, not recomputed" in captured.out and "9.5" in captured.out
    assert "2026-02 run 2 does not verify: 2 line(s) differ" in captured.err


def test_verify_says_when_the_versions_a_run_read_are_gone(
    warehouse: Warehouse, capsys: pytest.CaptureFixture[str]
) -> None:
    # February's usage rewritten since, and a vacuum with no retention: version 0's files are gone.
    rewritten = pl.read_delta(warehouse.uri(HOURLY_USAGE)).with_columns(pl.col("consumption") * 2)
    write_deltalake(warehouse.uri(HOURLY_USAGE), rewritten.to_arrow(), mode="overwrite")
    removed = DeltaTable(warehouse.uri(HOURLY_USAGE)).vacuum(
        retention_hours=0, enforce_retention_duration=False, dry_run=False
    )
    assert removed  # the files version 0 read

    assert main(["statement", "--month", MONTH, "--verify"]) == 2
    err = capsys.readouterr().err
    assert "2026-02 run 1 cannot be recomputed: the versions it read (hourly_usage@0" in err
    assert "BILLING_STATEMENT_RETENTION_DAYS" in err and err.count("\n") == 1


def statement_rows(warehouse: Warehouse) -> pl.DataFrame:
    return pl.read_delta(warehouse.uri(STATEMENTS))
