"""The command line, as a scheduled job would use it."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
from deltalake import DeltaTable

from billing_assets.cli import main
from billing_assets.domain.watermark import LATE_DATA_WINDOW, is_complete, latest_complete_hour, watermark_reason
from billing_assets.tables.schemas import ALL_TABLES


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_sample_is_deterministic_and_has_both_formats(tmp_path: Path) -> None:
    args = ["generate-sample", "--meterpoints", "5", "--start", "2026-03-28T00", "--hours", "6", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a"), "--source-db", str(tmp_path / "a.db")]) == 0
    assert main([*args, "--out", str(tmp_path / "b"), "--source-db", str(tmp_path / "b.db")]) == 0
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()
    a = tree(tmp_path / "a")
    assert a == tree(tmp_path / "b")
    assert sorted({name.split("/")[0] for name in a}) == [f"ingestion_hour=2026-03-28-{h:02d}" for h in range(6)]
    names = [name.split("/")[1] for name in a]
    assert any(n.startswith("legacy-") for n in names) and any(n.startswith("readings-") for n in names)
    main([*args[:-1], "4", "--out", str(tmp_path / "c"), "--source-db", ""])
    assert tree(tmp_path / "c") != a


def _command_environment(tmp_path: Path, monkeypatch) -> tuple[Path, Path, Path]:
    """The landing zone, warehouse and Dagster home of a command run under ``tmp_path``."""
    landing, warehouse, home = tmp_path / "landing", tmp_path / "warehouse", tmp_path / "home"
    monkeypatch.setenv("BILLING_LANDING_URI", str(landing))
    monkeypatch.setenv("BILLING_WAREHOUSE_URI", str(warehouse))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("BILLING_SOURCE_DB", str(tmp_path / "source.db"))
    return landing, warehouse, home


def test_process_runs_every_asset_and_records_runs_in_the_instance(
    end_to_end, tmp_path: Path, spark, monkeypatch, capsys
) -> None:
    landing, warehouse, home = _command_environment(tmp_path, monkeypatch)
    assert main(["generate-sample", "--meterpoints", "4", "--start", "2026-03-31T20", "--hours", "6"]) == 0
    assert main(["process", "--start", "2026-03-31T20", "--end", "2026-04-01T02", "--batch-hours", "2"]) == 0

    err = capsys.readouterr().err
    assert "[ingest] 4/6 done, 2 left" in err and "now ingestion hours 2026-04-01-00 .. 2026-04-01-01" in err
    instance = dg.DagsterInstance.from_config(str(home))
    runs = instance.get_runs()
    # Source, three ingestion batches, hourly_usage, cumulative_usage (both months in one range),
    # every gold table of the two days in one run, active_agreements for every day the load covered,
    # and the statement decision for every month the load covered.
    assert len(runs) == 9 and all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    # By the data's clock (01 April 02:00 UTC) March ended three hours ago: no statement is due yet.
    assert DeltaTable(str(warehouse / "statements")).to_pyarrow_table().num_rows == 0
    # The load changed the coverage of every day since the start; gold is work only where readings are.
    assert instance.get_materialized_partitions(dg.AssetKey("product_daily_consumption")) == {
        "2026-03-31",
        "2026-04-01",
    }
    assert len(instance.get_materialized_partitions(dg.AssetKey("active_agreements"))) > 300
    # The window crosses the London month boundary (April starts 23:00 UTC on 31 March).
    months = set(DeltaTable(str(warehouse / "cumulative_usage")).to_pyarrow_table().column("billing_month").to_pylist())
    assert months == {"2026-03", "2026-04"}
    for spec in ALL_TABLES:
        if spec.name.endswith("_snapshots") or spec.name in {"quarantined_readings"}:
            continue  # tables, not assets
        assert instance.get_latest_materialization_event(dg.AssetKey(spec.name)) is not None, spec.name
    assert DeltaTable(str(warehouse / "product_daily_consumption")).to_pyarrow_table().num_rows > 0


def test_generate_sample_by_default_ends_at_the_latest_complete_hour_from_a_utc_midnight(tmp_path: Path) -> None:
    before = datetime.now(UTC)
    args = ["generate-sample", "--meterpoints", "2", "--hours", "30", "--out", str(tmp_path / "landing")]
    assert main([*args, "--source-db", "", "--start-date-file", str(tmp_path / "start_date")]) == 0
    after = datetime.now(UTC)
    hours = sorted(datetime.strptime(p.name, "ingestion_hour=%Y-%m-%d-%H") for p in (tmp_path / "landing").iterdir())
    first, last = hours[0].replace(tzinfo=UTC), hours[-1].replace(tzinfo=UTC)
    assert last in {latest_complete_hour(before), latest_complete_hour(after)}
    assert is_complete(last, before) and not is_complete(last + timedelta(hours=1), after)
    assert (first.hour, first.minute) == (0, 0)
    assert timedelta(hours=29) <= last - first < timedelta(hours=29 + 24)
    assert (tmp_path / "start_date").read_text() == f"{first.date().isoformat()}\n"


def accepted_readings(landing: Path) -> list[datetime]:
    """The ``interval_start`` of every reading in a landing zone that its ingestion hour accepts (both formats)."""
    found = []
    for folder in landing.iterdir():
        hour = datetime.strptime(folder.name, "ingestion_hour=%Y-%m-%d-%H").replace(tzinfo=UTC)
        starts = []
        for path in folder.glob("readings-*.json"):
            for line in path.read_text().splitlines():
                try:
                    starts.append(datetime.strptime(json.loads(line)["interval_start"], "%Y-%m-%dT%H:%M:%SZ"))
                except (ValueError, KeyError, TypeError):
                    continue  # the sample's malformed lines
        starts = [start.replace(tzinfo=UTC) for start in starts]
        for path in folder.glob("legacy-*.json"):  # naive local times
            for row in json.loads(path.read_text())["data"]:
                local = datetime.strptime(row[0], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Europe/London"))
                starts.append(local.astimezone(UTC))
        found += [start for start in starts if watermark_reason(start, hour) is None]
    return found


def test_a_sample_that_sets_the_start_date_brings_the_7_days_before_it_in_its_first_hour(tmp_path: Path) -> None:
    args = ["generate-sample", "--meterpoints", "3", "--start", "2026-03-28T00", "--hours", "3", "--source-db", ""]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "new"), "--start-date-file", str(tmp_path / "start_date")]) == 0
    first = datetime(2026, 3, 28, tzinfo=UTC)
    assert min(accepted_readings(tmp_path / "plain")) >= first - timedelta(minutes=30)
    # Every half hour of the 7 days before the first ingestion hour, the oldest exactly 7 days late
    # (an older one would be quarantined too_late), and nothing the rules would not accept.
    oldest = first - LATE_DATA_WINDOW
    backlog = accepted_readings(tmp_path / "new")
    slots = {start.replace(minute=start.minute // 30 * 30, second=0) for start in backlog if start < first}
    assert min(backlog) == oldest and slots == {oldest + timedelta(minutes=30 * i) for i in range(7 * 48)}


def test_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env.update(PATH=str(tmp_path), DAGSTER_HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "billing_assets.cli", "process", "--start", "2026-03-31T20", "--end", "2026-03-31T21"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: Spark needs Java 17+: no `java` on PATH and JAVA_HOME is unset "
        "(install e.g. Debian's openjdk-17-jre-headless)"
    ]


def test_process_settles_a_month_once_the_datas_clock_passes_its_initial_date(
    end_to_end, tmp_path: Path, spark, monkeypatch, capsys
) -> None:
    # March ends at 23:00 UTC on the 31st (BST); its initial statement is due a day later. The
    # sample's last hour ends at 02:00 UTC on 2 April, so by the data's clock it is due.
    landing, warehouse, home = _command_environment(tmp_path, monkeypatch)
    assert main(["generate-sample", "--meterpoints", "2", "--start", "2026-03-31T20", "--hours", "30"]) == 0
    assert main(["process", "--start", "2026-03-31T20", "--end", "2026-04-02T02"]) == 0

    statements = DeltaTable(str(warehouse / "statements")).to_pyarrow_table().to_pylist()
    assert {(row["billing_month"], row["run"], row["run_kind"]) for row in statements} == {("2026-03", 1, "initial")}
    usage = DeltaTable(str(warehouse / "cumulative_usage")).to_pyarrow_table().to_pylist()
    march = [row for row in usage if row["billing_month"] == "2026-03"]
    totals = {}
    for row in march:
        totals[row["meterpoint_id"]] = max(totals.get(row["meterpoint_id"], 0.0), row["cumulative_consumption"])
    billed = {}
    for row in statements:
        billed[row["meterpoint_id"]] = billed.get(row["meterpoint_id"], 0.0) + row["kwh"]
    assert billed.keys() == totals.keys() and all(abs(billed[m] - totals[m]) < 1e-9 for m in totals)

    capsys.readouterr()
    assert main(["statement", "--month", "2026-03", "--verify"]) == 0
    assert "2026-03 run 1" in capsys.readouterr().out
    # Nothing new: the same command again adds no run.
    assert main(["process", "--start", "2026-03-31T20", "--end", "2026-04-02T02"]) == 0
    assert DeltaTable(str(warehouse / "statements")).to_pyarrow_table().num_rows == len(statements)
