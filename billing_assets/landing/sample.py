"""A deterministic, realistic sample landing zone for demos, tests and benchmarks.

It contains what production sends: readings duplicated within a file and across hours,
corrected re-sends (conflicts), out-of-order lines and file names, readings up to 7 days
late and a few beyond that, meters whose clocks run up to 5 minutes fast, broken meters
reporting from the future, malformed lines and unreadable files, in both landing formats.

A sample that starts an installation (``backlog``) also carries what a new installation
receives first: the readings the meters kept from the days before its first ingestion hour.
They arrive in that hour, so the oldest is exactly 7 days late: older ones would be quarantined
``too_late`` (the late-data window), and no ingestion hour of the installation can bring them.
"""

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import fsspec

from billing_assets.domain.keys import hour_key
from billing_assets.domain.record_ids import derive_record_id
from billing_assets.domain.timestamps import is_ambiguous
from billing_assets.domain.watermark import HOUR, LATE_DATA_WINDOW, latest_complete_hour, watermark_reason
from billing_assets.landing.files import HOUR_FOLDER

HALF_HOUR = timedelta(minutes=30)


@dataclass
class SampleSummary:
    """What was written, by kind of record."""

    files: int = 0
    kinds: Counter = field(default_factory=Counter)
    meterpoints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Reading:
    meterpoint_id: str
    interval_start: datetime
    consumption: float

    def record_id(self) -> str:
        return derive_record_id(self.meterpoint_id, self.interval_start)


def _profile(rng: random.Random, base: float, slot: datetime) -> float:
    # A household shape: low at night, peaks morning and evening, plus noise.
    hour = slot.hour + slot.minute / 60
    shape = 0.4 + 0.6 * max(0.0, 1 - abs(hour - 8) / 3) + 0.9 * max(0.0, 1 - abs(hour - 19) / 4)
    return round(base * shape * rng.uniform(0.85, 1.15), 3)


def _json_line(reading: _Reading, record_id: str | None = None) -> str:
    return json.dumps(
        {
            "record_id": record_id or reading.record_id(),
            "meterpoint_id": reading.meterpoint_id,
            "interval_start": reading.interval_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "consumption": reading.consumption,
        }
    )


class _Landing:
    """Collects lines per ingestion hour and file, then writes them out."""

    def __init__(self, rng: random.Random, zone: ZoneInfo) -> None:
        self.rng = rng
        self.zone = zone
        self.lines: dict[str, list[str]] = defaultdict(list)
        self.split_rows: dict[str, list[_Reading]] = defaultdict(list)
        self.raw_files: dict[str, bytes] = {}

    def add(self, hour: datetime, reading: _Reading, duplicate_in_file: bool = False) -> None:
        local = reading.interval_start.astimezone(self.zone).replace(tzinfo=None)
        # A quarter of the traffic comes from a legacy system sending the split format with
        # naive local times; it never sends the repeated autumn hour (it cannot express it).
        use_split = self.rng.random() < 0.25 and not is_ambiguous(local, self.zone) and not duplicate_in_file
        if use_split:
            self.split_rows[hour_key(hour)].append(reading)
        else:
            self.lines[hour_key(hour)].append(_json_line(reading))
            if duplicate_in_file:
                self.lines[hour_key(hour)].append(_json_line(reading))

    def bad_line(self, hour: datetime, line: str) -> None:
        self.lines[hour_key(hour)].append(line)

    def write(self, out: str) -> int:
        fs, root = fsspec.core.url_to_fs(out)
        written = 0
        names: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
        for key, lines in self.lines.items():
            self.rng.shuffle(lines)
            chunks = max(1, len(lines) // 400)
            for i in range(chunks):
                chunk = lines[i::chunks]
                names[key].append((f"readings-{self.rng.getrandbits(32):08x}.json", ("\n".join(chunk) + "\n").encode()))
        for key, rows in self.split_rows.items():
            rows.sort(key=lambda r: (r.meterpoint_id, r.interval_start))
            doc = {
                "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
                "data": [
                    [
                        r.interval_start.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S"),
                        r.consumption,
                        r.meterpoint_id,
                    ]
                    for r in rows
                ],
            }
            names[key].append((f"legacy-{self.rng.getrandbits(32):08x}.json", json.dumps(doc).encode()))
        for path, data in self.raw_files.items():
            key, name = path.split("/", 1)
            names[key].append((name, data))
        for key, files in names.items():
            folder = f"{root.rstrip('/')}/{HOUR_FOLDER.format(key)}"
            fs.makedirs(folder, exist_ok=True)
            for name, data in files:
                with fs.open(f"{folder}/{name}", "wb") as handle:
                    handle.write(data)
                written += 1
        return written


def recent_start(now: datetime, hours: int) -> tuple[datetime, int]:
    """A sample span ending at the latest complete hour: from midnight UTC at least ``hours`` before it.

    Starting on a UTC midnight makes the sample's first day whole, so ``BILLING_START_DATE`` set
    to it leaves no ingestion hour inside the sample's span without a folder.
    """
    end = latest_complete_hour(now.astimezone(UTC)) + HOUR
    start = (end - timedelta(hours=hours)).replace(hour=0)
    return start, (end - start) // HOUR


def generate_sample(
    out: str,
    meterpoints: int = 50,
    start: datetime = datetime(2026, 3, 28, tzinfo=UTC),
    hours: int = 96,
    seed: int = 7,
    timezone: str = "Europe/London",
    backlog: timedelta = timedelta(0),
) -> SampleSummary:
    """Write ``hours`` ingestion hours of readings from ``meterpoints`` meters under ``out``.

    ``backlog``: the readings of this long before ``start`` arrive in the first ingestion hour
    (a new installation's first delivery); at most the 7-day late-data window.
    """
    if not timedelta(0) <= backlog <= LATE_DATA_WINDOW:
        raise ValueError(
            f"the backlog must be from 0 to {LATE_DATA_WINDOW} (older readings are too late), got {backlog}"
        )
    rng = random.Random(seed)
    zone = ZoneInfo(timezone)
    start = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=hours)
    landing = _Landing(rng, zone)
    summary = SampleSummary()
    meters = [(f"{rng.getrandbits(40):010x}", rng.uniform(0.05, 0.6)) for _ in range(meterpoints)]
    fast_clock = {mp: timedelta(seconds=rng.randint(0, 300)) for mp, _ in meters if rng.random() < 0.1}

    def land(hour: datetime, reading: _Reading, kind: str, duplicate_in_file: bool = False) -> None:
        if watermark_reason(reading.interval_start, hour) == "too_late":
            kind = "too_late"  # a re-send of a backlog reading can fall out of the window
        if start <= hour < end:
            landing.add(hour, reading, duplicate_in_file)
            summary.kinds[kind] += 1 + duplicate_in_file

    # Without a backlog, the first slot is the one whose readings arrive in the first hour.
    slot = start - max(backlog, HALF_HOUR)
    while slot < end:
        for mp, base in meters:
            reading = _Reading(mp, slot + fast_clock.get(mp, timedelta()), _profile(rng, base, slot))
            arrival = slot + HALF_HOUR + timedelta(minutes=rng.uniform(0, 25))
            roll = rng.random()
            if roll < 0.02:
                arrival += timedelta(hours=rng.uniform(1, 7 * 24 - 2))
                kind = "late"
            else:
                kind = "on_time"
            hour = arrival.replace(minute=0, second=0, microsecond=0)
            if hour < start:  # kept by the meter until the installation's first ingestion hour
                hour, kind = start, "backlog"
            land(hour, reading, kind, duplicate_in_file=rng.random() < 0.01)
            if rng.random() < 0.01:
                land(hour + timedelta(hours=rng.randint(1, 30)), reading, "resent_duplicate")
            if rng.random() < 0.002:
                corrected = _Reading(mp, reading.interval_start, round(reading.consumption + 0.111, 3))
                land(hour + timedelta(hours=rng.randint(1, 10)), corrected, "conflicting_resend")
        slot += HALF_HOUR

    hour = start
    while hour < end:
        mp = meters[rng.randrange(len(meters))][0]
        if rng.random() < 0.3:
            stale = hour - timedelta(days=7, hours=rng.randint(1, 48))
            land(hour, _Reading(mp, stale.replace(minute=0), 0.2), "too_late")
        if rng.random() < 0.2:
            land(hour, _Reading(mp, hour + timedelta(hours=1, seconds=rng.randint(1, 299)), 0.1), "fast_clock_edge")
        if rng.random() < 0.1:
            land(hour, _Reading(mp, hour + timedelta(days=1), 0.1), "from_future")
        if rng.random() < 0.25:
            bad = rng.choice(
                [
                    '{"record_id": "x", "meterpoint_id": "' + mp + '", "interval_start": ',
                    json.dumps(
                        {
                            "record_id": f"neg-{hour_key(hour)}",
                            "meterpoint_id": mp,
                            "interval_start": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "consumption": -1.5,
                        }
                    ),
                    json.dumps(
                        {
                            "record_id": f"str-{hour_key(hour)}",
                            "meterpoint_id": mp,
                            "interval_start": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "consumption": "lots",
                        }
                    ),
                    json.dumps(
                        {
                            "record_id": f"ts-{hour_key(hour)}",
                            "meterpoint_id": mp,
                            "interval_start": "yesterday",
                            "consumption": 0.3,
                        }
                    ),
                    json.dumps(
                        {
                            "record_id": f"nomp-{hour_key(hour)}",
                            "interval_start": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                            "consumption": 0.3,
                        }
                    ),
                ]
            )
            landing.bad_line(hour, bad)
            summary.kinds["malformed_line"] += 1
        if rng.random() < 0.04:
            bad_file = rng.choice(
                [
                    b"",
                    b'{"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": [["2026-',
                    bytes(rng.getrandbits(8) for _ in range(64)) + b"\x00",
                ]
            )
            landing.raw_files[f"{hour_key(hour)}/broken-{rng.getrandbits(16):04x}.json"] = bad_file
            summary.kinds["unreadable_file"] += 1
        hour += timedelta(hours=1)

    summary.files = landing.write(out)
    summary.meterpoints = [mp for mp, _ in meters]
    return summary
