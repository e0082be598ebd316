"""The landing sensor and raw_readings on a local folder and on a real S3-compatible server."""

import json

import dagster as dg
import s3fs

from billing_assets.defs.sensors import landing_sensor
from billing_assets.partitions import RANGE_END, RANGE_START
from billing_assets.resources.landing import LandingZone
from billing_assets_tests.conftest import Pipeline, upload
from billing_assets_tests.defs.scenario import H1, H2, land_scenario


def tick(zone: LandingZone, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(cursor=cursor, resources={"landing": zone})
    return landing_sensor(context)


def requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    return [
        (r.partition_key, r.partition_key) if r.partition_key else (r.tags[RANGE_START], r.tags[RANGE_END])
        for r in result.run_requests or []
    ]


def check_sensor_cycle(zone: LandingZone, add_file) -> None:
    first = tick(zone)
    assert requested(first) == [(H1, H2)]
    again = tick(zone, first.cursor)
    assert not again.run_requests and "no new or changed files" in again.skip_reason.skip_message
    add_file(
        H1,
        "late.json",
        json.dumps(
            {"record_id": "x", "meterpoint_id": "m9", "interval_start": "2026-03-10T07:00:00Z", "consumption": 1.0}
        ),
    )
    later = tick(zone, again.cursor)
    assert requested(later) == [(H1, H1)]
    assert later.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_on_a_local_folder(quick_pipeline) -> None:
    land_scenario(quick_pipeline)
    zone = quick_pipeline.resources["landing"]
    check_sensor_cycle(zone, lambda hour, name, text: quick_pipeline.land(hour, name, text))


def test_sensor_on_s3(quick_pipeline, s3_landing) -> None:
    land_scenario(quick_pipeline)
    upload(s3_landing, quick_pipeline.landing)
    fs = s3fs.S3FileSystem(**s3_landing.storage_options())

    def add_file(hour: str, name: str, text: str) -> None:
        fs.pipe(f"{s3_landing.uri}/ingestion_hour={hour}/{name}", text.encode())

    check_sensor_cycle(s3_landing, add_file)


def test_sensor_reports_and_ignores_hostile_folder_names(quick_pipeline) -> None:
    land_scenario(quick_pipeline)
    hostile = quick_pipeline.landing / "ingestion_hour=2026-01-01-00' OR '1'='1"
    hostile.mkdir()
    (hostile / "a.json").write_text("{}")
    (quick_pipeline.landing / "ingestion_hour=2026-03-10-08" / "..weird").write_text("{}")
    result = tick(quick_pipeline.resources["landing"])
    assert requested(result) == [(H1, H2)]
    skip = tick(quick_pipeline.resources["landing"], result.cursor).skip_reason.skip_message
    assert "rejected folder names" in skip and "OR '1'='1" in skip


def test_raw_readings_from_s3_equal_the_local_run(quick_pipeline, s3_landing, tmp_path, spark) -> None:
    land_scenario(quick_pipeline)
    upload(s3_landing, quick_pipeline.landing)
    (tmp_path / "s3run").mkdir()
    remote = Pipeline(tmp_path / "s3run", spark, landing=s3_landing)
    for run in (quick_pipeline, remote):
        run.materialize("raw_readings", H1, H2)
    assert remote.snapshot() == quick_pipeline.snapshot()
    assert remote.rows("deduplicated_raw")
