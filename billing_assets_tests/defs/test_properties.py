"""Property tests: generated landing batches through the real raw_readings asset (Spark, Delta, Dagster).

Batches mix valid, duplicate, conflicting, late, future and malformed records and broken
files over two ingestion hours. For every batch: each hour's ``records_*`` figures add up
and agree with the rows committed to the raw, quarantine and deduplicated tables, and
ingesting an hour again leaves every table (and the figures) unchanged. Spark makes each
example cost seconds, so the examples are few and derandomized: CI runs the same batches
every time.
"""

import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing_assets.domain.keys import parse_hour_key
from billing_assets_tests.conftest import Pipeline

#: Several Dagster runs per test: deselected by the inner loop (-m "not slow and not scenario").

HOURS = ("2026-03-10-08", "2026-03-10-09")
FILES = ("a.json", "b.json")
#: Minutes before the ingestion hour: every edge of the window (-65 = H + 1 h 5 min, 10080 = 7 days).
IN_WINDOW = (-65, -30, 0, 30, 90, 600, 1440 * 3, 10080)
OUT_OF_WINDOW = {"late": (10081, 20000), "future": (-66, -600)}
MALFORMED = ("not json", "{", "[]", "42", '{"record_id": "x"}', '{"record_id": 7, "meterpoint_id": "m1"}', "\x7f}")
BROKEN_FILES = (b"", b"\n\n", bytes(range(256)), b'{"columns": ["interval_start", "consu', "caf\xe9".encode("latin-1"))


@dataclass
class Batch:
    """Landing files by (hour, name) as lines, plus whole broken files; what a reader should count."""

    lines: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    broken: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def records(self, hour: str) -> int:
        """Records read for ``hour``: one per line, one per broken file."""
        return sum(len(v) for (h, _), v in self.lines.items() if h == hour) + sum(h == hour for h, _ in self.broken)


def _at(hour: str, minutes_before: int) -> str:
    moment: datetime = parse_hour_key(hour) - timedelta(minutes=minutes_before)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    """A landing batch over two ingestion hours."""
    batch, sent = Batch(), []
    for _ in range(draw(st.integers(1, 24))):
        hour, name = draw(st.sampled_from(HOURS)), draw(st.sampled_from(FILES))
        kind = draw(st.sampled_from(["valid", "valid", "valid", "duplicate", "conflict", "late", "future", "bad"]))
        if kind in {"duplicate", "conflict"} and sent:
            record = dict(draw(st.sampled_from(sent)))
            if kind == "conflict":
                record["consumption"] = record["consumption"] + draw(st.sampled_from([0.5, 1.0]))
        elif kind == "bad":
            batch.lines.setdefault((hour, name), []).append(draw(st.sampled_from(MALFORMED)))
            continue
        else:
            meterpoint = draw(st.sampled_from(["m1", "m2"]))
            start = _at(hour, draw(st.sampled_from(OUT_OF_WINDOW.get(kind, IN_WINDOW))))
            # One id per reading, as producers derive them: a re-sent id never moves to another
            # hour (the documented limit of duplicate detection), only its consumption may differ.
            record = {
                "record_id": f"{meterpoint}@{start}",
                "meterpoint_id": meterpoint,
                "interval_start": start,
                "consumption": draw(st.sampled_from([0.0, 0.25, 1.5])),
            }
            sent.append(record)
        batch.lines.setdefault((hour, name), []).append(json.dumps(record))
    if draw(st.booleans()):
        batch.broken[(draw(st.sampled_from(HOURS)), "broken.json")] = draw(st.sampled_from(BROKEN_FILES))
    return batch


ZERO = ("read", "inserted", "duplicates", "conflicts", "quarantined")


def figures(result) -> dict[str, dict[str, int]]:
    """The per-ingestion-hour figures of a raw_readings run, after checking the run's ``records_*`` totals."""
    metadata = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    per_hour = metadata[0]["per_ingestion_hour"].value
    for meta in metadata:  # a range run reports the same figures on each of its partitions
        assert meta["per_ingestion_hour"].value == per_hour
        for name in ("read", "inserted", "duplicates", "conflicts", "quarantined"):
            assert meta[f"records_{name}"].value == sum(hour[name] for hour in per_hour.values())
    return per_hour


def by_hour(rows: list[dict], key: str = "ingestion_hour") -> Counter:
    return Counter(row[key] for row in rows)


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=batches())
def test_records_are_conserved_and_reingestion_changes_nothing(end_to_end, tmp_path, spark, batch: Batch) -> None:
    pipeline = Pipeline(Path(tempfile.mkdtemp(dir=tmp_path)), spark)
    for (hour, name), lines in batch.lines.items():
        pipeline.land(hour, name, "".join(line + "\n" for line in lines))
    for (hour, name), content in batch.broken.items():
        pipeline.land(hour, name, content)

    first = figures(pipeline.materialize("raw_readings", HOURS[0], HOURS[1]))
    tables = pipeline.snapshot()
    raw, quarantine = by_hour(tables["raw_readings"]), by_hour(tables["quarantined_readings"])
    winners = by_hour(tables["deduplicated_raw"])
    conflicts = Counter(row["ingestion_hour"] for row in tables["quarantined_readings"] if row["reason"] == "conflict")
    for hour in HOURS:
        # Hours without records are left out of per_ingestion_hour (a long quiet range would swamp it).
        f = first.get(hour, dict.fromkeys(ZERO, 0))
        assert f["read"] == batch.records(hour)
        assert f["read"] == f["inserted"] + f["duplicates"] + f["conflicts"] + f["quarantined"]
        assert raw[hour] == f["read"] - f["quarantined"]  # every parsed reading, duplicates included
        assert quarantine[hour] == f["quarantined"] + f["conflicts"] and conflicts[hour] == f["conflicts"]
        assert winners[hour] == f["inserted"]
    ids = [row["record_id"] for row in tables["deduplicated_raw"]]
    assert len(ids) == len(set(ids))

    # Re-ingesting the earlier hour after the later one, and the range again, change nothing.
    again = figures(pipeline.materialize("raw_readings", HOURS[0]))
    assert again.get(HOURS[0]) == first.get(HOURS[0])
    assert pipeline.snapshot() == tables
