"""Deterministic record ids for landing formats that carry none."""

import hashlib
from datetime import UTC, datetime

#: How a record id spells its instant: UTC, whole seconds.
RECORD_ID_INSTANT = "%Y-%m-%dT%H:%M:%SZ"


def derive_record_id(meterpoint_id: str, interval_start_utc: datetime) -> str:
    """A stable id from (meterpoint, UTC interval start): the same reading always gets the same id.

    Producers of the JSON-lines format are expected to use the same rule, so a reading
    delivered in both formats is recognised as one record.
    """
    return record_id_of(meterpoint_id, interval_start_utc.astimezone(UTC).strftime(RECORD_ID_INSTANT))


def record_id_of(meterpoint_id: str, instant: str) -> str:
    """The record id of a meterpoint and its UTC instant written as ``RECORD_ID_INSTANT``."""
    return hashlib.sha256(f"{meterpoint_id}|{instant}".encode()).hexdigest()[:32]
