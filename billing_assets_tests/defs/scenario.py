"""The hand-computed scenario shared by the pipeline tests."""

import json
from datetime import UTC, datetime, timedelta

from billing_assets.domain.record_ids import derive_record_id

H1, H2 = "2026-03-10-08", "2026-03-10-09"
M3_ID = derive_record_id("m3", datetime(2026, 3, 10, 7, tzinfo=UTC))


def r(record_id: str, meterpoint: str, start: str, consumption: float) -> dict:
    return {"record_id": record_id, "meterpoint_id": meterpoint, "interval_start": start, "consumption": consumption}


def land_scenario(pipeline) -> None:
    """Two ingestion hours with duplicates, a conflict, late, too-late, future and broken input."""
    pipeline.land(
        H1,
        "a.json",
        "\n".join(
            [
                json.dumps(r("r1", "m1", "2026-03-10T07:00:00Z", 0.5)),
                json.dumps(r("r2", "m1", "2026-03-10T07:30:00Z", 0.25)),
                json.dumps(r("r2", "m1", "2026-03-10T07:30:00Z", 0.25)),  # duplicate in the batch
                json.dumps(r("r3", "m2", "2026-03-07T07:30:00Z", 1.5)),  # 3 days late
                json.dumps(r("r2", "m1", "2026-03-10T07:30:00Z", 0.3)),  # conflicting re-send
                "not json",
                json.dumps(r("r4", "m2", "2026-03-01T07:30:00Z", 1.5)),  # older than 7 days
            ]
        )
        + "\n",
    )
    pipeline.land(
        H1,
        "b.json",
        json.dumps(
            {
                "columns": ["meterpoint_id", "interval_start", "consumption_delta"],
                "data": [["m3", "2026-03-10 07:00:00", 1.0]],
            }
        ),
    )
    pipeline.land(H1, "c.json", '{"columns": ["meterpoint_id", "interval')  # truncated
    pipeline.land(
        H2,
        "d.json",
        [
            r("r1", "m1", "2026-03-10T07:00:00Z", 0.5),  # duplicate from the previous hour
            r("r5", "m1", "2026-03-10T08:00:00Z", 0.75),
            r("r6", "m2", "2026-03-10T08:30:00Z", 0.2),
            r("r7", "m2", "2026-03-10T10:05:01Z", 0.4),  # beyond H2 + 1 h 5 min
            r("r8", "m2", "2026-03-10T10:05:00Z", 0.4),  # exactly H2 + 1 h 5 min
        ],
    )


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def running(meterpoint: str, hourly: dict[str, float], last: str, month: str = "2026-03") -> list[dict]:
    """Expected cumulative rows: from the first reading hour to ``last``, gaps carried forward."""
    hour, end, total, rows = ts(min(hourly)), ts(last), 0.0, []
    while hour <= end:
        x = hourly.get(hour.strftime("%Y-%m-%dT%H:%M"), 0.0)
        total = round(total + x, 9)
        rows.append(
            {
                "meterpoint_id": meterpoint,
                "usage_hour": hour,
                "consumption": x,
                "cumulative_consumption": total,
                "billing_month": month,
            }
        )
        hour += timedelta(hours=1)
    return rows
