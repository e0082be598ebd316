"""``too_late`` readings recovered from the quarantine, so a reconciliation can bill them (pure, no Spark).

Ingestion quarantines a reading older than the watermark only after every field of it was
checked, so its quarantine row (``raw``, ``detail``, ``record_id``) still says everything the
reading said: the UTC ``interval_start`` is in ``detail``, meterpoint and kWh in ``raw``. A row
of the split form keeps its values without the column names; there the meterpoint is the value
whose derived record id is the row's, and the kWh the row's one number. A row that cannot be
read back that way (``raw`` clipped at 4 KiB, a split row with two numbers) is counted, never
guessed at.
"""

import json
import math
import re
from datetime import UTC, datetime

import polars as pl

from billing_assets.domain.record_ids import derive_record_id

#: ``detail`` of a ``too_late`` row, as ``landing/parse.py`` writes it.
_DETAIL = re.compile(r"interval_start (\S+) outside the watermark")
READING_SCHEMA = {
    "record_id": pl.String,
    "meterpoint_id": pl.String,
    "interval_start": pl.Datetime("us", "UTC"),
    "consumption": pl.Float64,
    "ingestion_hour": pl.String,
    "source_file": pl.String,
    "line_number": pl.Int64,
}


def too_late_readings(quarantine: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """The ``too_late`` rows of ``quarantine`` read back as readings, and how many could not be."""
    rows, unreadable = [], 0
    for row in quarantine.filter(pl.col("reason") == "too_late").iter_rows(named=True):
        reading = _reading(row)
        if reading is None:
            unreadable += 1
        else:
            rows.append(reading)
    return pl.DataFrame(rows, schema=READING_SCHEMA), unreadable


def _reading(row: dict) -> dict | None:
    """One quarantine row as a reading, or None when its text does not say it unambiguously."""
    found = _DETAIL.search(row["detail"] or "")
    if not found or not row["record_id"]:
        return None
    try:
        instant = datetime.fromisoformat(found.group(1)).astimezone(UTC)
        value = json.loads(row["raw"] or "")
    except ValueError:
        return None
    if isinstance(value, dict):
        meterpoint, consumption = value.get("meterpoint_id"), value.get("consumption")
        meterpoint = meterpoint.strip() if isinstance(meterpoint, str) else None
    elif isinstance(value, list):
        meterpoint = next(
            (
                text.strip()
                for text in value
                if isinstance(text, str) and derive_record_id(text.strip(), instant) == row["record_id"]
            ),
            None,
        )
        numbers = [item for item in value if isinstance(item, int | float) and not isinstance(item, bool)]
        consumption = numbers[0] if len(numbers) == 1 else None
    else:
        return None
    if not meterpoint or not _a_reading(consumption):
        return None
    return {
        "record_id": row["record_id"],
        "meterpoint_id": meterpoint,
        "interval_start": instant,
        "consumption": float(consumption),
        "ingestion_hour": row["ingestion_hour"],
        "source_file": row["source_file"],
        "line_number": row["line_number"],
    }


def _a_reading(consumption: object) -> bool:
    """A kWh figure ingestion would have accepted: a finite number, not negative."""
    return (
        isinstance(consumption, int | float)
        and not isinstance(consumption, bool)
        and math.isfinite(consumption)
        and consumption >= 0
    )
