"""Corrected re-sends read back from the quarantine, so a statement can bill their latest value (pure, no Spark).

Deduplication keeps a record's first arrival and quarantines a later copy with another payload
as a ``conflict``. Its ``raw`` is the copy's parsed fields as JSON (``steps/ingest.py`` writes it
from the typed row, so it always reads back), and its ``detail`` names the first copy's
``interval_start``: the recording hour where that copy lives in ``deduplicated_raw``.
"""

import json
import re
from datetime import UTC, datetime

import polars as pl

from billing_assets.transforms.too_late import READING_SCHEMA

#: The first copy's instant in a ``conflict`` row's ``detail``.
_FIRST_COPY_AT = re.compile(r"interval_start (\S+), consumption")
#: A copy read back as a reading, and when the copy it conflicts with was taken.
CONFLICT_SCHEMA = {**READING_SCHEMA, "first_copy_at": pl.Datetime("us", "UTC")}


def conflict_readings(quarantine: pl.DataFrame) -> pl.DataFrame:
    """The ``conflict`` rows of ``quarantine`` as readings, with the instant of the copy they conflict with."""
    rows = []
    for row in quarantine.filter(pl.col("reason") == "conflict").iter_rows(named=True):
        value = json.loads(row["raw"])
        first = _FIRST_COPY_AT.search(row["detail"] or "")
        rows.append(
            {
                "record_id": row["record_id"],
                "meterpoint_id": value["meterpoint_id"],
                "interval_start": _instant(value["interval_start"]),
                "consumption": float(value["consumption"]),
                "first_copy_at": _instant(first.group(1)) if first else None,
                "ingestion_hour": row["ingestion_hour"],
                "source_file": row["source_file"],
                "line_number": row["line_number"],
            }
        )
    return pl.DataFrame(rows, schema=CONFLICT_SCHEMA)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
