"""Deterministic record ids for landing formats that carry none."""

import hashlib
from datetime import UTC, datetime


def derive_record_id(meterpoint_id: str, interval_start_utc: datetime) -> str:
    """A stable id from (meterpoint, UTC interval start): the same reading always gets the same id.

    Producers of the JSON-lines format are expected to use the same rule, so a reading
    delivered in both formats is recognised as one record.
    """
    instant = interval_start_utc.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return hashlib.sha256(f"{meterpoint_id}|{instant}".encode()).hexdigest()[:32]
