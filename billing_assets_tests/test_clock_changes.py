"""Both clock-change days, in two zones whose changes fall at different hours, under several hash seeds.

Python compares two aware datetimes of one zone by wall-clock time, ignoring ``fold``: the two
01:00s of the autumn change compare equal, so any order or range built from local datetimes
depended on set iteration order, i.e. on ``PYTHONHASHSEED``. Partition code is checked in a
fresh interpreter per zone and seed (the zone is read at import); ``process`` runs end to end
on both days in Europe/London in this process and in America/New_York under two seeds.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from billing_assets.cli import main
from billing_assets_tests.defs.scenario import r

#: Zone -> (spring day, autumn day). London changes at 01:00 UTC, New York at 07:00 / 06:00 UTC.
CHANGE_DAYS = {"Europe/London": ("2026-03-29", "2026-10-25"), "America/New_York": ("2026-03-08", "2026-11-01")}
SEEDS = ("0", "1", "2", "7")

_PARTITION_CHECK = textwrap.dedent(
    """
    import json, random, sys
    from datetime import UTC, datetime, timedelta
    import dagster as dg
    from billing_assets import partitions as p

    days = json.loads(sys.argv[1])
    for day in days:
        local = p.local_days.time_window_for_partition_key(day)
        keys = [
            key for key in p.recording_hours.get_partition_keys(datetime(2027, 1, 1, tzinfo=UTC))
            if local.start.timestamp() <= p.recording_hours.time_window_for_partition_key(key).start.timestamp()
            < local.end.timestamp()
        ]
        starts = [p.recording_hours.time_window_for_partition_key(k).start.timestamp() for k in keys]
        assert len(keys) in (23, 25), (day, len(keys))
        assert starts == sorted(starts) and len(set(starts)) == len(starts), day
        shuffled = list(keys)
        random.Random(day).shuffle(shuffled)
        assert p.in_time_order(set(shuffled)) == keys, day
        assert p.in_time_order(shuffled) == keys, day
        for key in keys:
            window = p.recording_hours.time_window_for_partition_key(key)
            first, last = p.hour_range(window)
            assert first == last == p.table_hour_key(window.start), (key, first, last)
        # A range over consecutive hours, in particular one that starts or ends in a repeated hour.
        for i in range(len(keys)):
            for j in range(i, min(i + 4, len(keys))):
                start = p.recording_hours.time_window_for_partition_key(keys[i]).start
                end = p.recording_hours.time_window_for_partition_key(keys[j]).end
                first, last = p.hour_range(dg.TimeWindow(start, end))
                assert first <= last and (first, last) == (
                    p.table_hour_key(start), p.table_hour_key(end.astimezone(UTC) - timedelta(hours=1))
                ), (keys[i], keys[j], first, last)
        assert p.day_range(local) == (local.start.date(), local.start.date()), day
    print("ok", len(days))
    """
)


@pytest.mark.parametrize("zone", sorted(CHANGE_DAYS))
@pytest.mark.parametrize("seed", SEEDS)
def test_partition_orders_and_ranges_on_clock_change_days(zone: str, seed: str) -> None:
    env = {**os.environ, "BILLING_TIMEZONE": zone, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", _PARTITION_CHECK, json.dumps(CHANGE_DAYS[zone])],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok 2"


def _land(root: Path, hour: str, records: list[dict]) -> None:
    path = root / "landing" / f"ingestion_hour={hour}" / "readings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in records))


def _hourly_usage(warehouse: Path) -> list[tuple[str, str, float]]:
    table = DeltaTable(str(warehouse / "hourly_usage")).to_pyarrow_table()
    rows = zip(
        table["recording_hour"].to_pylist(),
        table["meterpoint_id"].to_pylist(),
        table["consumption"].to_pylist(),
        strict=True,
    )
    return sorted(rows)


#: Per zone: (ingestion hour, readings in UTC, the recording-hour partitions they land in), for
#: spring and autumn. Each ingestion hour holds readings on both sides of the change; the table
#: keys are the UTC hours of the readings.
E2E = {
    "Europe/London": [
        (
            "2026-03-29-01",
            ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"],
            ["2026-03-29-00+0000", "2026-03-29-02+0100"],
        ),
        (
            "2026-10-25-01",
            ["2026-10-25T00:10:00Z", "2026-10-25T01:10:00Z"],
            ["2026-10-25-01+0000", "2026-10-25-01+0100"],
        ),
    ],
    "America/New_York": [
        (
            "2026-03-08-07",
            ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z"],
            ["2026-03-08-01-0500", "2026-03-08-03-0400"],
        ),
        (
            "2026-11-01-06",
            ["2026-11-01T05:10:00Z", "2026-11-01T06:10:00Z"],
            ["2026-11-01-01-0400", "2026-11-01-01-0500"],
        ),
    ],
}


def _run_both_days(root: Path, zone: str) -> None:
    for index, (hour, instants, _) in enumerate(E2E[zone]):
        _land(root, hour, [r(f"x{index}{i}", "m1", instant, 1.0 + i) for i, instant in enumerate(instants)])
        start = f"{hour[:10]}T{hour[11:]}"
        end = f"{hour[:10]}T{int(hour[11:]) + 1:02d}"
        assert main(["process", "--start", start, "--end", end, "--no-source"]) == 0


def _check(root: Path, zone: str) -> None:
    """hourly_usage holds each reading in its UTC hour, and Dagster recorded both local partitions."""
    expected = sorted(
        (instant[:10] + "-" + instant[11:13], "m1", 1.0 + i)
        for _, instants, _ in E2E[zone]
        for i, instant in enumerate(instants)
    )
    assert _hourly_usage(root / "warehouse") == expected
    instance = dg.DagsterInstance.from_config(str(root / "home"))
    materialised = instance.get_materialized_partitions(dg.AssetKey("hourly_usage"))
    assert {key for _, _, keys in E2E[zone] for key in keys} <= materialised


def test_process_on_both_change_days_in_london(end_to_end, tmp_path: Path, monkeypatch, spark, capsys) -> None:
    for name, folder in (("BILLING_LANDING_URI", "landing"), ("BILLING_WAREHOUSE_URI", "warehouse")):
        monkeypatch.setenv(name, str(tmp_path / folder))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    _run_both_days(tmp_path, "Europe/London")
    _check(tmp_path, "Europe/London")
    capsys.readouterr()


@pytest.mark.parametrize("seed", ["2", "7"])
def test_process_on_both_change_days_in_new_york(end_to_end, tmp_path: Path, seed: str) -> None:
    """A fresh interpreter: the zone is read at import, and the hash seed is the point."""
    env = {
        **os.environ,
        "BILLING_TIMEZONE": "America/New_York",
        "PYTHONHASHSEED": seed,
        "BILLING_LANDING_URI": str(tmp_path / "landing"),
        "BILLING_WAREHOUSE_URI": str(tmp_path / "warehouse"),
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    code = (
        "import sys; from pathlib import Path; from billing_assets_tests.test_clock_changes import _run_both_days; "
        "_run_both_days(Path(sys.argv[1]), 'America/New_York')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr[-4000:]
    _check(tmp_path, "America/New_York")
