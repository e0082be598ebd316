"""Hostile names in the landing zone reach no path and no Delta predicate: they are quarantined or refused."""

import json

import dagster as dg
import pytest

from billing_assets.definitions import ASSETS
from billing_assets.defs.ingestion import raw_readings
from billing_assets_tests.defs.scenario import r

HOUR = "2026-03-10-09"
HOSTILE_NAMES = ["it's.json", "x' OR '1'='1.json", 'q" OR "1"="1.json', "new\nline.json", "..\\..\\evil.json"]


def test_files_with_hostile_names_are_quarantined_unread_and_the_rest_lands(quick_pipeline) -> None:
    quick_pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    for index, name in enumerate(HOSTILE_NAMES):
        quick_pipeline.land(HOUR, name, [r(f"evil{index}", "m1", "2026-03-10T08:30:00Z", 9.0)])
    hostile_folder = quick_pipeline.landing / "ingestion_hour=2026-01-01-00' OR '1'='1"
    hostile_folder.mkdir()
    (hostile_folder / "a.json").write_text("{}")

    result = quick_pipeline.materialize("raw_readings", HOUR)

    assert [x["record_id"] for x in quick_pipeline.rows("raw_readings")] == ["g1"]  # hostile files never opened
    quarantine = {x["source_file"]: x for x in quick_pipeline.rows("quarantined_readings")}
    assert set(quarantine) == {f"ingestion_hour={HOUR}/{name}" for name in HOSTILE_NAMES}
    for name in HOSTILE_NAMES:
        row = quarantine[f"ingestion_hour={HOUR}/{name}"]
        assert (row["reason"], row["line_number"], row["ingestion_hour"]) == ("unsafe_file_name", 0, HOUR)
        assert row["detail"] == f"unsafe landing file name: {name!r}"
    [meta] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    assert meta["quarantine_reasons"].value == {"unsafe_file_name": len(HOSTILE_NAMES)}
    # A re-run replaces the same partition and nothing else.
    before = quick_pipeline.snapshot()
    quick_pipeline.materialize("raw_readings", HOUR)
    assert quick_pipeline.snapshot() == before


@pytest.mark.parametrize("key", ["2026-01-01-00' OR '1'='1", "../2026-01-01-00", "2026-01-01-00/.."])
def test_hostile_partition_keys_are_refused_before_any_run(quick_pipeline, key) -> None:
    with pytest.raises(dg.DagsterUnknownPartitionError, match="Could not find a partition"):
        dg.materialize(
            ASSETS,
            selection=list(raw_readings.keys),
            resources=quick_pipeline.resources,
            instance=quick_pipeline.instance,
            partition_key=key,
        )
    assert not quick_pipeline.instance.get_runs()
    assert not quick_pipeline.warehouse.exists()


def _quarantine_by_file(pipeline) -> dict[str, dict]:
    return {x["source_file"]: x for x in pipeline.rows("quarantined_readings")}


def test_symlinks_are_quarantined_unread_and_nothing_outside_the_zone_leaks(quick_pipeline, tmp_path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text(json.dumps(r("leak1", "m9", "2026-03-10T08:00:00Z", 5.0)) + "\n")
    quick_pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    folder = quick_pipeline.landing / f"ingestion_hour={HOUR}"
    (folder / "passwd.json").symlink_to("/etc/passwd")
    (folder / "readings.json").symlink_to(outside)
    (folder / "inside.json").symlink_to(folder / "good.json")  # even a link inside the zone is not a file of it
    (folder / "selfloop").symlink_to("selfloop")
    (folder / "etc").symlink_to("/etc")

    quick_pipeline.materialize("raw_readings", HOUR)

    assert [x["record_id"] for x in quick_pipeline.rows("raw_readings")] == ["g1"]
    quarantine = _quarantine_by_file(quick_pipeline)
    assert set(quarantine) == {
        f"ingestion_hour={HOUR}/{n}" for n in ("passwd.json", "readings.json", "inside.json", "selfloop", "etc")
    }
    for row in quarantine.values():
        assert (row["reason"], row["line_number"], row["raw"]) == ("not_a_regular_file", 0, "")
    assert "root:" not in json.dumps(quarantine)


def test_a_symlink_swapped_in_after_the_listing_is_not_followed(quick_pipeline, spark, tmp_path) -> None:
    from billing_assets.transforms.ingest import parse_landing_files

    quick_pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    [listed] = quick_pipeline.resources["landing"].list_files(HOUR)
    path = quick_pipeline.landing / f"ingestion_hour={HOUR}" / "good.json"
    path.unlink()
    path.symlink_to("/etc/passwd")

    rows = parse_landing_files(spark, [listed], "Europe/London", {}).collect()

    assert [(x["reason"], x["raw"]) for x in rows] == [("not_a_regular_file", "")]


def test_files_in_sub_folders_are_not_part_of_the_hour(quick_pipeline) -> None:
    quick_pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    nested = quick_pipeline.landing / f"ingestion_hour={HOUR}" / "ingestion_hour=2026-03-10-08"
    nested.mkdir()
    (nested / "inner.json").write_text(json.dumps(r("n1", "m1", "2026-03-10T08:30:00Z", 2.0)) + "\n")

    result = quick_pipeline.materialize("raw_readings", HOUR)

    assert [x["record_id"] for x in quick_pipeline.rows("raw_readings")] == ["g1"]
    [row] = quick_pipeline.rows("quarantined_readings")
    assert (row["source_file"], row["reason"], row["line_number"]) == (
        f"ingestion_hour={HOUR}/ingestion_hour=2026-03-10-08/inner.json",
        "in_sub_folder",
        0,
    )
    [meta] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    assert meta["quarantine_reasons"].value == {"in_sub_folder": 1}


HOSTILE_RECORDS = {
    # name: (file text, the reason its one record is quarantined with)
    "surrogate.json": (
        '{"record_id":"s1","meterpoint_id":"m\\ud800","interval_start":"2026-03-10T08:10:00Z","consumption":1}',
        "invalid_field",
    ),
    "huge_int.json": (
        '{"record_id":"h1","meterpoint_id":"m1","interval_start":"2026-03-10T08:10:00Z","consumption":1'
        + "0" * 400
        + "}",
        "implausible_consumption",
    ),
    "huger_int.json": (
        '{"record_id":"h2","meterpoint_id":"m1","interval_start":"2026-03-10T08:10:00Z","consumption":1'
        + "0" * 5000
        + "}",
        "implausible_consumption",
    ),
    "e308.json": (
        '{"record_id":"e1","meterpoint_id":"m1","interval_start":"2026-03-10T08:10:00Z","consumption":1e308}',
        "implausible_consumption",
    ),
    "dup_key.json": (
        '{"record_id":"d1","meterpoint_id":"m1","interval_start":"2026-03-10T08:10:00Z","consumption":1.0,"consumption":2.0}',
        "malformed_record",
    ),
    "date_only.json": (
        '{"record_id":"t1","meterpoint_id":"m1","interval_start":"2026-03-10","consumption":1.0}',
        "invalid_timestamp",
    ),
    "split_list_column.json": (
        '{"columns":["interval_start","consumption_delta","meterpoint_id",["x"]],"data":[["2026-03-10T08:00:00Z",1,"m1",2]]}',
        "unreadable_file",
    ),
}


def test_one_hostile_record_per_file_never_stops_the_batch(quick_pipeline) -> None:
    quick_pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    folder = quick_pipeline.landing / f"ingestion_hour={HOUR}"
    for name, (text, _) in HOSTILE_RECORDS.items():
        (folder / name).write_text(text + "\n")
    # A line separator inside a string is part of the string, not the end of a record.
    (folder / "u2028.json").write_text(
        json.dumps(r("u1", "m\u2028x", "2026-03-10T08:30:00Z", 2.0), ensure_ascii=False) + "\n"
    )
    # A file name that is not UTF-8 (Linux allows any bytes) is quarantined, not a crash of the listing.
    with open(bytes(folder) + b"/\xff\xfe.json", "wb") as handle:
        handle.write(b"{}\n")

    result = quick_pipeline.materialize("raw_readings", HOUR)

    assert sorted((x["record_id"], x["meterpoint_id"]) for x in quick_pipeline.rows("raw_readings")) == [
        ("g1", "m1"),
        ("u1", "m\u2028x"),
    ]
    quarantine = _quarantine_by_file(quick_pipeline)
    for name, (_, reason) in HOSTILE_RECORDS.items():
        assert quarantine.pop(f"ingestion_hour={HOUR}/{name}")["reason"] == reason, name
    [(name, row)] = quarantine.items()
    assert row["reason"] == "unsafe_file_name" and name.encode("utf-8")  # stored as valid text
    [meta] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    assert meta["records_read"].value == 2 + len(HOSTILE_RECORDS) + 1
