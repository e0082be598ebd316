"""Every kind of broken landing file in one ingestion hour: each is quarantined with a reason, the rest lands."""

import codecs
import json
from datetime import UTC, datetime

from fsspec.core import url_to_fs

from billing_assets.domain.record_ids import derive_record_id
from billing_assets.landing.files import LandingFile
from billing_assets.resources.landing import LandingZone
from billing_assets_tests.conftest import Pipeline
from billing_assets_tests.defs.scenario import r

HOUR = "2026-03-10-09"


class VanishingLandingZone(LandingZone):
    """A real local zone in which files are deleted right after the listing, as a cleaner racing the run would."""

    vanish: list[str]

    def list_files(self, hour_key: str) -> list[LandingFile]:
        """The listing, after which the ``vanish`` files are removed."""
        files = super().list_files(hour_key)
        for file in files:
            if file.name.rsplit("/", 1)[-1] in self.vanish:
                fs, path = url_to_fs(file.uri)
                fs.rm(path)
        return files


def good(prefix: str, count: int) -> list[dict]:
    return [r(f"{prefix}{i}", "m1", f"2026-03-10T08:{i:02d}:00Z", 0.1) for i in range(count)]


def lines(records: list[dict]) -> str:
    return "".join(json.dumps(x) + "\n" for x in records)


def test_one_hour_of_broken_files_the_good_records_land_and_each_bad_one_has_a_reason(tmp_path, spark) -> None:
    landing = tmp_path / "landing"
    pipeline = Pipeline(tmp_path, spark, landing=VanishingLandingZone(uri=str(landing), vanish=["vanished.json"]))
    pipeline.land(HOUR, "good.json", good("g", 3))
    # A file still being written: its last line is cut mid-JSON.
    pipeline.land(HOUR, "growing.json", lines(good("w", 2)) + json.dumps(r("w9", "m1", "2026-03-10T08:59:00Z", 1))[:25])
    split = {
        "columns": ["interval_start", "consumption_delta", "meterpoint_id"],
        "data": [["2026-03-10 08:00:00", 0.5, "m7"]],
    }
    pipeline.land(HOUR, "split.json", json.dumps(split))
    pipeline.land(HOUR, "split_truncated.json", json.dumps(split)[:40])
    pipeline.land(HOUR, "empty.json", b"")
    pipeline.land(HOUR, "blank.json", "\n  \n\n")
    pipeline.land(HOUR, "binary.json", bytes(range(256)) * 4)
    pipeline.land(HOUR, "nul.json", lines(good("n", 1)).encode() + b"\x00\x00")
    pipeline.land(
        HOUR, "latin1.json", json.dumps(r("é", "m1", "2026-03-10T08:00:00Z", 1), ensure_ascii=False).encode("latin-1")
    )
    pipeline.land(HOUR, "utf16.json", codecs.BOM_UTF16_LE + lines(good("u", 2)).encode("utf-16-le"))
    pipeline.land(HOUR, "utf16_no_bom.json", lines(good("v", 1)).encode("utf-16-le"))
    huge = json.dumps({**r("big", "m1", "2026-03-10T08:00:00Z", 1), "pad": "x" * (2 << 20)})
    pipeline.land(HOUR, "huge.json", lines(good("h", 1)) + huge + "\n")
    pipeline.land(HOUR, "vanished.json", good("gone", 2))

    result = pipeline.materialize("raw_readings", HOUR)

    assert not (landing / f"ingestion_hour={HOUR}" / "vanished.json").exists()
    assert sorted(x["record_id"] for x in pipeline.rows("deduplicated_raw")) == sorted(
        ["g0", "g1", "g2", "w0", "w1", "u0", "u1", "h0", derive_record_id("m7", datetime(2026, 3, 10, 8, tzinfo=UTC))]
    )
    quarantine = {
        (x["source_file"].split("/", 1)[1], x["line_number"]): (x["reason"], x["detail"], x["raw"])
        for x in pipeline.rows("quarantined_readings")
    }
    assert {key: reason for key, (reason, _, _) in quarantine.items()} == {
        ("growing.json", 3): "malformed_json",
        ("split_truncated.json", 0): "unreadable_file",
        ("empty.json", 0): "unreadable_file",
        ("blank.json", 0): "unreadable_file",
        ("binary.json", 0): "unreadable_file",
        ("nul.json", 0): "unreadable_file",
        ("latin1.json", 0): "unreadable_file",
        ("utf16_no_bom.json", 0): "unreadable_file",
        ("huge.json", 2): "line_too_long",
        ("vanished.json", 0): "unreadable_file",
    }
    assert all(detail for _, detail, _ in quarantine.values())
    assert "disappeared" in quarantine[("vanished.json", 0)][1]
    assert "not UTF-8" in quarantine[("latin1.json", 0)][1]
    assert len(quarantine[("huge.json", 2)][2]) < 4200  # the offending text is kept, bounded

    [meta] = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["raw_readings"]
    ]
    figures = {k: meta[f"records_{k}"].value for k in ("read", "inserted", "duplicates", "conflicts", "quarantined")}
    assert figures == {"read": 19, "inserted": 9, "duplicates": 0, "conflicts": 0, "quarantined": 10}
