"""Two ingestion hours processed at the same time, in two processes, into overlapping recording hours."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from billing_assets.tables.schemas import ALL_TABLES
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r

HOURS = ("2026-03-10-08", "2026-03-10-09")


def readings(hour_index: int) -> list[dict]:
    """Readings for the same 24 recording hours from both ingestion hours, some shared."""
    start = datetime(2026, 3, 9, 8, tzinfo=UTC)
    out = []
    for h in range(24):
        at = (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append(r(f"shared-{h}", "m1", at, 1.0))  # the same record from both hours
        out.append(r(f"own-{hour_index}-{h}", f"m{hour_index + 2}", at, 0.5))
    return out


@pytest.mark.parametrize("where", ["local", "s3"])
def test_concurrent_runs_lose_and_duplicate_nothing(where, request, tmp_path, spark) -> None:
    settings: dict[str, str] = {}
    warehouse = None
    if where == "s3":
        warehouse = request.getfixturevalue("s3_warehouse")
        settings = {
            "BILLING_S3_ENDPOINT_URL": request.getfixturevalue("s3_server"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
        }
    pipeline = Pipeline(tmp_path, spark, warehouse=warehouse)
    for index, hour in enumerate(HOURS):
        pipeline.land(hour, "a.json", readings(index))
    for spec in ALL_TABLES:  # as after any first run: the tables exist
        pipeline.resources["warehouse"].open(spec)
    barrier = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "billing_assets_tests.steps.ingest_worker",
                str(pipeline.landing),
                pipeline.resources["warehouse"].uri,
                hour,
                str(barrier),
            ],
            env={**os.environ, **settings},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for hour in HOURS
    ]
    import time

    time.sleep(12)  # both JVMs up and waiting at the barrier
    barrier.touch()
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    conflicts = sum(err.count("Delta commit conflict") for _, err in outputs)
    print(f"commit conflicts retried: {conflicts}; reports: {reports}")

    rows = pipeline.rows("deduplicated_raw", ("record_id",))
    ids = [x["record_id"] for x in rows]
    assert len(ids) == len(set(ids)) == 24 + 48  # shared once, each hour's own records all there
    assert {x["ingestion_hour"] for x in rows if x["record_id"].startswith("shared-")} == {HOURS[0]}  # first arrival
    assert len(pipeline.rows("raw_readings")) == 96
