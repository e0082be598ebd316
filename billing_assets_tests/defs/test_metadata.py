"""What each materialisation tells the UI: rows, partitions, Delta version and a preview, checked against the tables."""

import dagster as dg
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from billing_assets.defs.metadata import PREVIEW_ROWS, landing_kinds
from billing_assets.settings import load_settings
from billing_assets.tables.schemas import ALL_TABLES
from billing_assets_tests.defs.test_gold import MARCH, land_readings, write_source

SPECS = {spec.name: spec for spec in ALL_TABLES}
LOAD_DAY = "2026-03-30"
HOURS, DAYS = ("2026-03-27-10", "2026-03-28-10"), ("2026-03-27", "2026-03-29")
# asset run -> (first partition, last partition of a range run, partitions in the run, table partition values written)
RUNS = {
    "dim_agreement": (LOAD_DAY, None, 1, None),
    "raw_readings": (MARCH, None, 1, (MARCH, MARCH)),
    "deduplicated_raw": (f"{HOURS[0]}+0000", f"{HOURS[1]}+0000", 25, HOURS),
    "hourly_usage": (f"{HOURS[0]}+0000", f"{HOURS[1]}+0000", 25, HOURS),
    "cumulative_usage": ("2026-03", None, 1, ("2026-03", "2026-03")),
    "agreement_days": (*DAYS, 3, DAYS),
    "half_hourly_consumption": (*DAYS, 3, DAYS),
    "active_agreements": (*DAYS, 3, DAYS),
}
# The other assets of the multi-asset runs above.
SIBLINGS = {
    "dim_product": "dim_agreement",
    "dim_meterpoint": "dim_agreement",
    "product_daily_consumption": "half_hourly_consumption",
    "avg_consumption_per_half_hour_by_product": "half_hourly_consumption",
    "unmatched_readings": "half_hourly_consumption",
}


def live_rows(uri: str, column: str | None, written: tuple[str, str] | None) -> int:
    """Rows of the table's latest version whose partition value lies in ``written`` (all rows if None)."""
    data = DeltaTable(uri).to_pyarrow_table()
    if column is None:
        return data.num_rows
    values = pc.cast(data[column], "string")
    inside = pc.and_(pc.greater_equal(values, written[0]), pc.less_equal(values, written[1]))
    return pc.sum(inside).as_py() or 0


def test_every_materialisation_reports_rows_partitions_version_and_a_preview(pipeline) -> None:
    land_readings(pipeline)
    write_source(pipeline.source_db)
    events: dict[str, dg.AssetMaterialization] = {}
    for asset, (first, last, _, _) in RUNS.items():
        for event in pipeline.materialize(asset, first, last).get_asset_materialization_events():
            # Only each asset's own result: the per-partition events raw_readings and the loads log carry no preview.
            if "preview" in event.materialization.metadata:
                events[event.asset_key.to_user_string()] = event.materialization
    assert set(events) == set(RUNS) | set(SIBLINGS)

    for asset, materialization in events.items():
        meta = {key: value.value for key, value in materialization.metadata.items()}
        spec = SPECS[asset]
        _, _, partitions, written = RUNS[SIBLINGS.get(asset, asset)]
        assert meta["dagster/uri"] == str(pipeline.warehouse / spec.name)
        assert meta["delta_version"] == DeltaTable(meta["dagster/uri"]).version(), asset
        assert meta["partitions_written"] == partitions, asset
        assert meta["dagster/row_count"] == live_rows(meta["dagster/uri"], spec.partition_by, written), asset
        assert meta["dagster/row_count"] > 0, asset

        lines = meta["preview"].splitlines()
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        assert header == spec.schema.names, asset
        assert len(lines) - 2 == min(PREVIEW_ROWS, meta["dagster/row_count"]), asset

    raw = {key: value.value for key, value in events["raw_readings"].metadata.items()}
    # Conservation: every record read is in the raw table or was quarantined while parsing.
    assert raw["dagster/row_count"] == raw["records_read"] - raw["records_quarantined"]


@pytest.mark.parametrize(("uri", "kinds"), [("s3://landing/zone", {"s3"}), ("/data/landing", set())])
def test_raw_readings_shows_the_s3_kind_only_for_an_s3_landing_zone(uri, kinds) -> None:
    assert landing_kinds(load_settings({"BILLING_LANDING_URI": uri}).landing_uri) == kinds
