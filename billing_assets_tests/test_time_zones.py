"""Every supported time zone, end to end: each table against values computed here with ``zoneinfo``.

Per zone, readings every half hour on the local clock for two meterpoints over the 2026
clock-change days (or two ordinary days for a zone without summer time) and across a month
end, processed by ``billing-assets process`` in a fresh interpreter with ``BILLING_TIMEZONE``
set (the zone is read at import), followed by a late reading into an earlier local day of the
previous month. The reference below knows nothing of the pipeline's code: a recording hour is
the local wall-clock hour of a reading's start, a half hour its local wall-clock half hour, a
settlement period the half hour's number among the local day's half hours, a billing month
the local calendar month.
"""

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from deltalake import DeltaTable

ROOT = Path(__file__).resolve().parents[1]
ZONES = (
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "America/St_Johns",
    "Pacific/Chatham",
    "Africa/Casablanca",
    "Europe/Dublin",
    "Europe/London",
    "America/New_York",
)
METERPOINTS = ("m1", "m2")
#: The products of the test's source database: m1 and m2 each have one open agreement.
PRODUCTS = {"m1": "Standard Variable", "m2": "Fixed 12M"}
#: Fed on the UTC half-hour grid: in +05:45 each of its half hours straddles two local ones.
UTC_GRID_ZONES = {"Asia/Kathmandu": "m4"}
LATE = "m3"  # no agreement: its readings are unmatched
QUARTER = timedelta(minutes=15)


# --- The reference: local wall clocks, from zoneinfo ---------------------------------------


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant local ``day`` begins."""
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def clock_marks(day: date, zone: ZoneInfo, minutes: tuple[int, ...]) -> list[datetime]:
    """UTC instants in local ``day`` at which the local clock shows one of ``minutes`` past the hour.

    Every offset and clock change of these zones falls on a quarter hour, so quarter-hour steps see every mark.
    """
    instant, end, marks = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone), []
    while instant < end:
        local = instant.astimezone(zone)
        if local.minute in minutes and local.second == 0:
            marks.append(instant)
        instant += QUARTER
    return marks


def wall_floor(instant: datetime, zone: ZoneInfo, minutes: int) -> datetime:
    """The UTC instant of the local wall-clock time ``instant`` shows, floored to ``minutes``."""
    local = instant.astimezone(zone)
    floored = local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
    return floored.astimezone(UTC)  # fold is kept: the repeated hour of an autumn change stays itself


def hour_key(start: datetime, zone: ZoneInfo) -> str:
    """The tables' key of a local hour: the UTC instant it starts, with minutes when the zone's hours need them."""
    with_minutes = any(datetime(2026, month, 1, tzinfo=zone).utcoffset().total_seconds() % 3600 for month in (1, 7))
    return start.strftime("%Y-%m-%d-%H%M" if with_minutes else "%Y-%m-%d-%H")


def transition_days(zone: ZoneInfo) -> list[date]:
    """Local days of 2026 whose UTC offset at the end differs from the one at the start."""
    days, day = [], date(2026, 1, 1)
    while day.year == 2026:
        start = local_midnight(day, zone).astimezone(zone).utcoffset()
        end = (local_midnight(day + timedelta(days=1), zone) - timedelta(seconds=1)).astimezone(zone).utcoffset()
        if start != end:
            days.append(day)
        day += timedelta(days=1)
    return days


#: The late batch: read at 12:00 local on 1 July, it holds 00:00 and 12:00 that day and 23:30 on
#: 30 June, a reading into an earlier local day and month (no zone here changes its clock then).
LATE_DAY = date(2026, 7, 1)


def segments(zone: ZoneInfo) -> list[list[date]]:
    """The runs of consecutive local days with readings, in time order.

    Each clock-change day (with the day before when it is the 1st: a month end too), or two
    ordinary days across a month end in a zone without clock changes.
    """
    changes = transition_days(zone)
    if not changes:
        return [[date(2026, 3, 31), date(2026, 4, 1)]]
    return [[day - timedelta(days=1), day] if day.day == 1 else [day] for day in changes]


def consumption(instant: datetime, meterpoint: str) -> Decimal:
    """A reading's consumption: varied, with exact decimal sums."""
    return Decimal(int(instant.timestamp()) // 1800 % 97 + 3 * int(meterpoint[1:])) / Decimal(1000)


def readings(zone_name: str) -> tuple[list[dict], list[dict]]:
    """(readings of the day runs, the late batch: readings on ``LATE_DAY`` and one into the day before)."""
    zone = ZoneInfo(zone_name)
    out = []
    for run in segments(zone):
        for day in run:
            for instant in clock_marks(day, zone, (0, 30)):
                out.extend(reading(meterpoint, instant) for meterpoint in METERPOINTS)
            if zone_name in UTC_GRID_ZONES:
                start, end = local_midnight(day, zone), local_midnight(day + timedelta(days=1), zone)
                instant = start.replace(minute=0) + timedelta(minutes=30 * (start.minute >= 30))
                while instant < end:
                    if instant >= start:
                        out.append(reading(UTC_GRID_ZONES[zone_name], instant))
                    instant += timedelta(minutes=30)
    midnight = local_midnight(LATE_DAY, zone)
    late = [midnight - timedelta(minutes=30), midnight, midnight + timedelta(hours=12)]
    return out, [reading(LATE, instant) for instant in late]


def reading(meterpoint: str, instant: datetime) -> dict:
    """One landing record."""
    return {
        "record_id": f"{meterpoint}-{instant:%Y%m%dT%H%M}",
        "meterpoint_id": meterpoint,
        "interval_start": instant.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "consumption": float(consumption(instant, meterpoint)),
    }


def instant_of(record: dict) -> datetime:
    """A record's interval start."""
    return datetime.strptime(record["interval_start"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def exact(value: Decimal) -> float:
    """A sum as the tables store it (exact decimal, converted once)."""
    return round(float(value), 9)


def settlement(instant: datetime, zone: ZoneInfo) -> tuple[datetime, date, int]:
    """(UTC start of the local half hour, its local date, its number among that day's half hours)."""
    slot = wall_floor(instant, zone, 30)
    day = slot.astimezone(zone).date()
    return slot, day, clock_marks(day, zone, (0, 30)).index(slot) + 1


def expected_tables(zone_name: str, records: list[dict]) -> dict[str, set]:
    """Every compared table's rows, computed from the readings with zoneinfo."""
    zone = ZoneInfo(zone_name)
    hourly: dict[tuple[str, datetime], list[Decimal]] = defaultdict(list)
    half_hours: dict[datetime, list[tuple[str, Decimal]]] = defaultdict(list)
    tables: dict[str, set] = defaultdict(set)
    for record in records:
        instant, meterpoint = instant_of(record), record["meterpoint_id"]
        value = consumption(instant, meterpoint)
        hour = wall_floor(instant, zone, 60)
        hourly[meterpoint, hour].append(value)
        half_hours[settlement(instant, zone)].append((meterpoint, value))
        tables["deduplicated_raw"].add((record["record_id"], hour_key(hour, zone)))
        if meterpoint not in PRODUCTS:
            tables["unmatched_readings"].add((record["record_id"], settlement(instant, zone)[1], "no_agreement"))
    for (meterpoint, hour), values in hourly.items():
        tables["hourly_usage"].add((meterpoint, hour_key(hour, zone), hour, exact(sum(values)), len(values)))
    for (slot, day, period), values in half_hours.items():
        total = sum(v for _, v in values)
        tables["half_hourly_consumption"].add((slot, day, period, len({m for m, _ in values}), exact(total)))
        by_product: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
        for meterpoint, value in values:
            if meterpoint in PRODUCTS:
                by_product[PRODUCTS[meterpoint]].append((meterpoint, value))
        for product, rows in by_product.items():
            tables["avg_consumption_per_half_hour_by_product"].add(
                (slot, product, day, len(rows), exact(sum(v for _, v in rows)))
            )
    daily: dict[tuple[str, date], list[tuple[str, Decimal]]] = defaultdict(list)
    for record in records:
        instant, meterpoint = instant_of(record), record["meterpoint_id"]
        if meterpoint in PRODUCTS:
            daily[PRODUCTS[meterpoint], settlement(instant, zone)[1]].append(
                (meterpoint, consumption(instant, meterpoint))
            )
    for (product, day), rows in daily.items():
        tables["product_daily_consumption"].add(
            (product, day, len({m for m, _ in rows}), exact(sum(v for _, v in rows)))
        )
    # Running totals: per billing month (local calendar month of the hour), every hour from the
    # meterpoint's first hour in the month to the month's last hour with any reading.
    months: dict[str, set[datetime]] = defaultdict(set)
    for _, hour in hourly:
        months[f"{hour.astimezone(zone):%Y-%m}"].add(hour)
    for meterpoint in {m for m, _ in hourly}:
        for month, hours in months.items():
            own = sorted(h for m, h in hourly if m == meterpoint and h in hours)
            if not own:
                continue
            hour, total = own[0], Decimal(0)
            while hour <= max(hours):
                value = sum(hourly.get((meterpoint, hour), [Decimal(0)]))
                total += value
                tables["cumulative_usage"].add((meterpoint, hour, exact(value), exact(total), month))
                hour += timedelta(hours=1)
    return tables


# --- What the pipeline wrote ----------------------------------------------------------------


def rows(warehouse: Path, table: str) -> list[dict]:
    """Every row of a Delta table."""
    return DeltaTable(str(warehouse / table)).to_pyarrow_table().to_pylist()


def actual_tables(warehouse: Path) -> dict[str, set]:
    """The compared columns of each table, shaped like ``expected_tables``."""

    def utc(value: datetime) -> datetime:
        return value.astimezone(UTC)

    found: dict[str, set] = defaultdict(set)
    for row in rows(warehouse, "deduplicated_raw"):
        found["deduplicated_raw"].add((row["record_id"], row["recording_hour"]))
    for row in rows(warehouse, "hourly_usage"):
        found["hourly_usage"].add(
            (
                row["meterpoint_id"],
                row["recording_hour"],
                utc(row["usage_hour"]),
                round(row["consumption"], 9),
                row["reading_count"],
            )
        )
    for row in rows(warehouse, "cumulative_usage"):
        found["cumulative_usage"].add(
            (
                row["meterpoint_id"],
                utc(row["usage_hour"]),
                round(row["consumption"], 9),
                round(row["cumulative_consumption"], 9),
                row["billing_month"],
            )
        )
    for row in rows(warehouse, "half_hourly_consumption"):
        found["half_hourly_consumption"].add(
            (
                utc(row["interval_start"]),
                row["settlement_date"],
                row["settlement_period"],
                row["meterpoint_count"],
                round(row["consumption"], 9),
            )
        )
    for row in rows(warehouse, "avg_consumption_per_half_hour_by_product"):
        found["avg_consumption_per_half_hour_by_product"].add(
            (
                utc(row["interval_start"]),
                row["product_display_name"],
                row["settlement_date"],
                row["meterpoint_count"],
                round(row["consumption"], 9),
            )
        )
    for row in rows(warehouse, "product_daily_consumption"):
        found["product_daily_consumption"].add(
            (row["product_display_name"], row["date"], row["meterpoint_count"], round(row["consumption"], 9))
        )
    for row in rows(warehouse, "unmatched_readings"):
        found["unmatched_readings"].add((row["record_id"], row["settlement_date"], row["reason"]))
    return found


# --- Driving ``process`` ---------------------------------------------------------------------


def _hour_arg(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H")


def process_runs(zone_name: str) -> list[list[str]]:
    """``process`` arguments: one run per run of days (in time order), then the late batch's hour."""
    zone = ZoneInfo(zone_name)
    runs = []
    for days in segments(zone):
        start = local_midnight(days[0], zone).replace(minute=0)
        end = local_midnight(days[-1] + timedelta(days=1), zone) + timedelta(hours=1)
        runs.append(["--start", _hour_arg(start), "--end", _hour_arg(end), "--batch-hours", "168"])
    return runs


def land(root: Path, records: list[dict], ingestion_hour: datetime | None = None) -> None:
    """Each record into the landing folder of its UTC hour (or of ``ingestion_hour``)."""
    by_hour: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        hour = ingestion_hour or instant_of(record)
        by_hour[hour.strftime("%Y-%m-%d-%H")].append(record)
    for hour, batch in by_hour.items():
        path = root / "landing" / f"ingestion_hour={hour}" / f"readings-{len(batch)}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as out:
            out.write("".join(json.dumps(record) + "\n" for record in batch))


def write_source(path: Path) -> None:
    """A source database: m1 and m2 with one open agreement each; m3 and m4 none."""
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE product (id INTEGER, product_id TEXT, display_name TEXT, is_variable INTEGER);"
            "CREATE TABLE meterpoint (meterpoint_id TEXT, region TEXT);"
            "CREATE TABLE agreement (agreement_id INTEGER, agreement_valid_from DATE, agreement_valid_to DATE,"
            " product_id TEXT, meterpoint_id TEXT, account_id TEXT);"
        )
        conn.executemany(
            "INSERT INTO product VALUES (?, ?, ?, ?)",
            [(1, "1dff0f3048", PRODUCTS["m1"], 1), (2, "a40c7e5d92", PRODUCTS["m2"], 0)],
        )
        conn.executemany("INSERT INTO meterpoint VALUES (?, ?)", [(m, "North") for m in ("m1", "m2", "m3", "m4")])
        conn.executemany(
            "INSERT INTO agreement VALUES (?, ?, ?, ?, ?, ?)",
            [(1, "2025-01-01", None, "1dff0f3048", "m1", "a1"), (2, "2025-01-01", None, "a40c7e5d92", "m2", "a2")],
        )
    conn.close()


_DRIVER = """
import json, sys
from billing_assets.cli import main

for index, arguments in enumerate(json.loads(sys.argv[1])):
    code = main(["process", *arguments, *([] if index == 0 else ["--no-source"])])
    print("exit", code, flush=True)
    if code != 0:
        sys.exit(code)
"""


def run_zone(root: Path, zone_name: str) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Land the zone's readings, process them and then the late batch; return every reading and the run."""
    zone = ZoneInfo(zone_name)
    on_time, late = readings(zone_name)
    land(root, on_time)
    arrival = instant_of(late[-1]).replace(minute=0)  # the late batch arrives with the next day's reading
    land(root, late, arrival)
    write_source(root / "source.db")
    runs = [*process_runs(zone_name), ["--start", _hour_arg(arrival), "--end", _hour_arg(arrival + timedelta(hours=1))]]
    assert instant_of(late[0]).astimezone(zone).date() < LATE_DAY == instant_of(late[-1]).astimezone(zone).date()
    env = {
        **os.environ,
        "BILLING_TIMEZONE": zone_name,
        "BILLING_LANDING_URI": str(root / "landing"),
        "BILLING_WAREHOUSE_URI": str(root / "warehouse"),
        "BILLING_SOURCE_DB": str(root / "source.db"),
        "DAGSTER_HOME": str(root / "home"),
    }
    (root / "home").mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(runs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    return on_time + late, done


@pytest.mark.parametrize("zone_name", ZONES)
def test_every_table_matches_the_local_clock(end_to_end, tmp_path: Path, zone_name: str) -> None:
    began = time.monotonic()
    records, done = run_zone(tmp_path, zone_name)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.split().count("exit") == len(process_runs(zone_name)) + 1, done.stdout
    zone, warehouse = ZoneInfo(zone_name), tmp_path / "warehouse"
    expected, actual = expected_tables(zone_name, records), actual_tables(warehouse)
    wrong = {}
    for table in sorted(expected):
        missing, extra = expected[table] - actual[table], actual[table] - expected[table]
        if missing or extra:
            wrong[table] = {
                "missing": len(missing),
                "extra": len(extra),
                "e.g.": sorted(missing)[:2] + sorted(extra)[:2],
            }
    assert not wrong, wrong

    # The figures a reader checks first, computed without the hourly grid: hours per local day,
    # settlement periods per day, and each month's final total with the reset at local midnight.
    hours = {r["recording_hour"] for r in rows(warehouse, "hourly_usage") if r["meterpoint_id"] == "m1"}
    half_hours = rows(warehouse, "half_hourly_consumption")
    for day in (day for days in segments(zone) for day in days):
        in_day = {h for h in hours if wall_day(h, zone) == day}
        assert len(in_day) == len(clock_marks(day, zone, (0,))), (day, len(in_day))
        periods = sorted(r["settlement_period"] for r in half_hours if r["settlement_date"] == day)
        assert periods == list(range(1, len(clock_marks(day, zone, (0, 30))) + 1)), day
    if transition_days(zone):
        assert {len(clock_marks(day, zone, (0, 30))) for day in transition_days(zone)} == {46, 50}
    finals: dict[tuple[str, str], tuple[datetime, float]] = {}
    for row in rows(warehouse, "cumulative_usage"):
        key = (row["meterpoint_id"], row["billing_month"])
        if key not in finals or row["usage_hour"] > finals[key][0]:
            finals[key] = (row["usage_hour"], round(row["cumulative_consumption"], 9))
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for record in records:
        instant = instant_of(record)
        totals[record["meterpoint_id"], f"{instant.astimezone(zone):%Y-%m}"] += consumption(
            instant, record["meterpoint_id"]
        )
    assert {key: value for key, (_, value) in finals.items()} == {key: exact(v) for key, v in totals.items()}
    print(f"{zone_name}: {len(records)} readings, {time.monotonic() - began:.1f} s")


def wall_day(key: str, zone: ZoneInfo) -> date:
    """The local date of the hour a ``recording_hour`` key starts."""
    fmt = "%Y-%m-%d-%H%M" if len(key) == 15 else "%Y-%m-%d-%H"
    return datetime.strptime(key, fmt).replace(tzinfo=UTC).astimezone(zone).date()


def test_a_zone_whose_clock_moves_by_half_an_hour_is_refused_in_one_line(tmp_path: Path) -> None:
    """Lord Howe's 30-minute summer time gives local hours of 30 and 90 minutes: refused before any work."""
    env = {**os.environ, "BILLING_TIMEZONE": "Australia/Lord_Howe", "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "billing_assets.cli", "process", "--start", "2026-04-01T00", "--end", "2026-04-01T01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Australia/Lord_Howe is not supported" in done.stderr, done.stderr
    load = subprocess.run(
        [sys.executable, "-c", "import billing_assets.definitions"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert load.returncode != 0 and "Australia/Lord_Howe is not supported" in load.stderr.strip().splitlines()[-1]
