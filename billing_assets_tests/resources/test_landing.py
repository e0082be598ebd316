"""The landing zone listing refuses hostile hour keys and marks hostile file names, locally and on S3."""

import fsspec
import pytest
import s3fs

from billing_assets.resources.landing import LandingZone

HOUR, OTHER = "2026-03-10-08", "2026-03-10-09"
HOSTILE_KEYS = [
    "2026-01-01-00' OR '1'='1",
    "../2026-01-01-00",
    "2026-01-01-00/../../etc",
    "2026-01-01-00\n",
    "2026-13-01-00",
    "٢٠٢٦-01-01-00",  # non-ASCII digits
    "",
]
HOSTILE_NAMES = ["it's.json", 'x" OR "1"="1.json', "new\nline.json", "tab\t.json", "ünï.json", "semi;colon.json"]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_list_files_refuses_hostile_hour_keys(tmp_path, key) -> None:
    (tmp_path / f"ingestion_hour={HOUR}").mkdir()
    (tmp_path / f"ingestion_hour={HOUR}" / "a.json").write_text("{}")
    with pytest.raises(ValueError):
        LandingZone(uri=str(tmp_path)).list_files(key)


def test_hostile_folders_are_reported_never_listed(tmp_path) -> None:
    for folder in (f"ingestion_hour={HOUR}", "ingestion_hour=2026-01-01-00' OR '1'='1", "ingestion_hour=..x"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.json").write_text("{}")
    by_hour, rejected = LandingZone(uri=str(tmp_path)).list_all()
    assert list(by_hour) == [HOUR]
    assert rejected == ["ingestion_hour=..x", "ingestion_hour=2026-01-01-00' OR '1'='1"]


def test_hostile_file_names_are_listed_as_rejected_with_the_reason(tmp_path) -> None:
    folder = tmp_path / f"ingestion_hour={HOUR}"
    folder.mkdir()
    for name in ["good.json", "..dots.json", *HOSTILE_NAMES]:
        (folder / name).write_text("{}")
    files = {f.name.split("/", 1)[1]: f for f in LandingZone(uri=str(tmp_path)).list_files(HOUR)}
    assert sorted(files) == sorted(["good.json", "..dots.json", *HOSTILE_NAMES])
    assert files["good.json"].rejected is None and files["..dots.json"].rejected is None  # a name, not a step up
    for name in HOSTILE_NAMES:
        assert files[name].rejected == f"unsafe landing file name: {name!r}"


def test_hostile_s3_keys_are_rejected(s3_landing) -> None:
    fs = s3fs.S3FileSystem(**s3_landing.storage_options())
    for name in ("good.json", "it's.json", 'x" OR "1"="1.json'):
        fs.pipe(f"{s3_landing.uri}/ingestion_hour={HOUR}/{name}", b"{}")
    assert {f.name: f.rejected for f in s3_landing.list_files(HOUR)} == {
        f"ingestion_hour={HOUR}/good.json": None,
        f"ingestion_hour={HOUR}/it's.json": 'unsafe landing file name: "it\'s.json"',
        f'ingestion_hour={HOUR}/x" OR "1"="1.json': 'unsafe landing file name: \'x" OR "1"="1.json\'',
    }


def test_a_dot_dot_inside_an_object_key_is_kept_verbatim_and_rejected() -> None:
    """Object stores allow ``..`` and newlines in keys; moto cannot store them, so fsspec's memory store stands in."""
    fs = fsspec.filesystem("memory")
    smuggled = f"ingestion_hour={HOUR}/../ingestion_hour={OTHER}/smuggled.json"
    newline = f"ingestion_hour={HOUR}/new\nline.json"
    for key in (f"ingestion_hour={HOUR}/good.json", smuggled, newline, f"ingestion_hour={OTHER}/good.json"):
        fs.pipe(f"/hostile-zone/{key}", b"{}")
    try:
        zone = LandingZone(uri="memory://hostile-zone")
        assert {f.name: f.rejected for f in zone.list_files(HOUR)} == {
            f"ingestion_hour={HOUR}/good.json": None,
            smuggled: "unsafe landing file name: '..'",
            newline: "unsafe landing file name: 'new\\nline.json'",
        }
        by_hour, rejected = zone.list_all()
        assert [f.name for f in by_hour[OTHER]] == [f"ingestion_hour={OTHER}/good.json"] and not rejected
    finally:
        fs.rm("/hostile-zone", recursive=True)
