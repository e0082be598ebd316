"""Hostile names in the landing zone reach no path and no Delta predicate: they are quarantined or refused."""

import dagster as dg
import pytest

from billing_assets.definitions import ASSETS
from billing_assets.defs.ingestion import raw_readings
from billing_assets_tests.defs.scenario import r

HOUR = "2026-03-10-09"
HOSTILE_NAMES = ["it's.json", "x' OR '1'='1.json", 'q" OR "1"="1.json', "new\nline.json", "..\\..\\evil.json"]


def test_files_with_hostile_names_are_quarantined_unread_and_the_rest_lands(pipeline) -> None:
    pipeline.land(HOUR, "good.json", [r("g1", "m1", "2026-03-10T08:00:00Z", 1.0)])
    for index, name in enumerate(HOSTILE_NAMES):
        pipeline.land(HOUR, name, [r(f"evil{index}", "m1", "2026-03-10T08:30:00Z", 9.0)])
    hostile_folder = pipeline.landing / "ingestion_hour=2026-01-01-00' OR '1'='1"
    hostile_folder.mkdir()
    (hostile_folder / "a.json").write_text("{}")

    result = pipeline.materialize("raw_readings", HOUR)

    assert [x["record_id"] for x in pipeline.rows("raw_readings")] == ["g1"]  # hostile files never opened
    quarantine = {x["source_file"]: x for x in pipeline.rows("quarantined_readings")}
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
    before = pipeline.snapshot()
    pipeline.materialize("raw_readings", HOUR)
    assert pipeline.snapshot() == before


@pytest.mark.parametrize("key", ["2026-01-01-00' OR '1'='1", "../2026-01-01-00", "2026-01-01-00/.."])
def test_hostile_partition_keys_are_refused_before_any_run(pipeline, key) -> None:
    with pytest.raises(dg.DagsterUnknownPartitionError, match="Could not find a partition"):
        dg.materialize(
            ASSETS,
            selection=list(raw_readings.keys),
            resources=pipeline.resources,
            instance=pipeline.instance,
            partition_key=key,
        )
    assert not pipeline.instance.get_runs()
    assert not pipeline.warehouse.exists()
