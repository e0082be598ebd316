"""The derived record id, pinned by value: it is stored in every table and deduplicates against them.

The expected ids were computed once from the function and written down here. If one of these
tests fails, the function changed its output: every reading already stored under the old ids
would then be taken as new and counted twice. Keep the function as it is; a deliberate
change needs a migration of every table's ``record_id``, not an update of these values.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.landing.parse import parse_landing_file

LONDON = ZoneInfo("Europe/London")
#: 2026-03-10 08:00 UTC, however it is written.
M1_0800 = "2973e376c45424e65580ca598c19849a"


@pytest.mark.parametrize(
    ("meterpoint_id", "interval_start", "expected"),
    [
        ("0432df65f7", datetime(2021, 1, 1, 0, 30, tzinfo=UTC), "157f464cc382cda6292008851bc231d8"),
        ("m1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), M1_0800),
        ("m1", datetime(2026, 3, 10, 13, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), M1_0800),
        ("m1", datetime(2026, 3, 10, 3, 0, tzinfo=timezone(timedelta(hours=-5))), M1_0800),
        ("m1", datetime(2026, 3, 10, 8, 0, 0, 999_999, tzinfo=UTC), M1_0800),  # whole seconds only
        # The repeated hour of the autumn change: 01:30 BST (00:30 UTC), then 01:30 GMT (01:30 UTC).
        ("m1", datetime(2026, 10, 25, 1, 30, fold=0, tzinfo=LONDON), "4de736ca5c3c142e713c458a6b1226a9"),
        ("m1", datetime(2026, 10, 25, 1, 30, fold=1, tzinfo=LONDON), "2e96a7ad6b4fd921f57ef32de9171150"),
        ("m1", datetime(2026, 3, 29, 0, 30, tzinfo=LONDON), "c85bd077659822521055b7bbdb63e609"),
        ("Zählpunkt-Ω-東京", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), "9d7c9242634ff6ab725f77be9324c164"),
        # Not normalised: the composed and the decomposed 'é' are two meterpoints.
        ("caf\u00e9", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), "d477f257d4704a58f435b46a90b8a66d"),
        ("cafe\u0301", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), "1c96cd125246d7c96639c3705af738e0"),
        ("m|1", datetime(2026, 3, 10, 8, 0, tzinfo=UTC), "a82ea9f6b773cf888dd9ebaecaa449c0"),
    ],
)
def test_derived_ids_are_pinned(meterpoint_id: str, interval_start: datetime, expected: str) -> None:
    assert derive_record_id(meterpoint_id, interval_start) == expected


def test_ids_of_a_split_form_file_are_pinned() -> None:
    """Through the parser: naive local London time (the repeated hour twice), ``Z`` and an offset."""
    rows = [
        ["2026-10-25 00:30:00", 0.1, "0432df65f7"],
        ["2026-10-25 01:30:00", 0.2, "0432df65f7"],  # the first 01:30: BST
        ["2026-10-25 01:30:00", 0.3, "0432df65f7"],  # the second 01:30: GMT
        ["2026-10-25 02:00:00", 0.4, "0432df65f7"],
        ["2026-10-25T01:30:00Z", 0.5, "Zählpunkt-東京"],
        ["2026-10-25T01:30:00+01:00", 0.6, "Zählpunkt-東京"],
    ]
    document = {"columns": ["interval_start", "consumption_delta", "meterpoint_id"], "data": rows}
    parsed = parse_landing_file(json.dumps(document).encode(), "f.json", datetime(2026, 10, 25, 2, tzinfo=UTC), LONDON)
    assert [(row.interval_start.isoformat(), row.record_id, row.reason) for row in parsed] == [
        ("2026-10-24T23:30:00+00:00", "35c389f73e4446402274339b7a93dae9", None),
        ("2026-10-25T00:30:00+00:00", "9cdad6831e6ed86273182a6ff9102e8d", None),
        ("2026-10-25T01:30:00+00:00", "e49272d4646ba2a37347190e20a95acb", None),
        ("2026-10-25T02:00:00+00:00", "e91ab04caa776d7ed723ec7f10564b4a", None),
        ("2026-10-25T01:30:00+00:00", "8791a5831775a6336eb706ed8f549977", None),
        ("2026-10-25T00:30:00+00:00", "6a1c44778781420bd4d953d2bfaca74d", None),
    ]
