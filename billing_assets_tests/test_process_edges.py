"""``process`` at its edges: it says what it skips, refuses what it cannot do in one line; empty hours cost no Spark."""

import json
from pathlib import Path

import dagster as dg
import pytest
from deltalake import DeltaTable

from billing_assets.cli import main
from billing_assets.resources.spark import spark_config
from billing_assets.tables import log_check
from billing_assets_tests.defs.scenario import r


@pytest.fixture
def env(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("BILLING_LANDING_URI", str(tmp_path / "landing"))
    monkeypatch.setenv("BILLING_WAREHOUSE_URI", str(tmp_path / "warehouse"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BILLING_SOURCE_DB", str(tmp_path / "no-source.db"))
    (tmp_path / "landing").mkdir()
    return tmp_path


def _land(root: Path, folder: str, name: str, records: list[dict]) -> None:
    path = root / "landing" / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in records))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "2025-12-01T00", "--end", "2025-12-01T05"], "before the first ingestion hour 2026-01-01-00"),
        (["--start", "2026-01-01T00", "--end", "2099-01-01T00"], "in the future"),
        (["--start", "2026-01-01T00", "--end", "2026-01-01T05", "--batch-hours", "0"], "--batch-hours must be"),
    ],
)
def test_what_process_cannot_do_is_one_line_and_exit_2(env, capsys, args, message) -> None:
    assert main(["process", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (env / "warehouse").exists()


def test_process_says_what_it_skipped(end_to_end, env, capsys) -> None:
    hour = "2026-04-01-03"
    _land(env, f"ingestion_hour={hour}", "good.json", [r("g1", "m1", "2026-04-01T03:00:00Z", 1.0)])
    _land(env, f"ingestion_hour={hour} ", "stray.json", [r("s1", "m1", "2026-04-01T03:00:00Z", 1.0)])
    _land(
        env, f"ingestion_hour={hour}/ingestion_hour={hour}", "nested.json", [r("n1", "m1", "2026-04-01T03:30:00Z", 1.0)]
    )

    assert main(["process", "--start", "2026-04-01T03", "--end", "2026-04-01T04"]) == 0

    err = capsys.readouterr().err
    assert f"skipped folder 'ingestion_hour={hour} ' (not ingestion_hour=YYYY-MM-DD-HH)" in err
    assert f"quarantined unread: ingestion_hour={hour}/ingestion_hour={hour}/nested.json (in_sub_folder)" in err
    raw = DeltaTable(str(env / "warehouse/raw_readings")).to_pyarrow_table().column("record_id").to_pylist()
    assert raw == ["g1"]


def test_empty_hours_are_recorded_without_spark_work(end_to_end, env, spark, capsys) -> None:
    _land(env, "ingestion_hour=2026-04-01-03", "good.json", [r("g1", "m1", "2026-04-01T03:00:00Z", 1.0)])
    _land(env, "ingestion_hour=2026-04-06-10", "good.json", [r("g2", "m1", "2026-04-06T10:00:00Z", 2.0)])
    tracker = spark.sparkContext.statusTracker()

    def last_job() -> int:
        return max(tracker.getJobIdsForGroup(None), default=-1)

    # 8 days of hours, two of them with files: the empty stretches (the longest 5 days) are one run each
    # despite the 24-hour batches, and start no Spark job.
    assert main(["process", "--start", "2026-04-01T00", "--end", "2026-04-09T00", "--batch-hours", "24"]) == 0
    instance = dg.DagsterInstance.from_config(str(env / "home"))
    records = instance.fetch_materializations(dg.AssetKey("raw_readings"), limit=10_000).records
    raw_runs = {record.run_id for record in records}
    assert len(raw_runs) == 5  # empty, data, empty, data, empty
    rows = DeltaTable(str(env / "warehouse/raw_readings")).to_pyarrow_table().column("record_id").to_pylist()
    assert sorted(rows) == ["g1", "g2"]
    materialised = instance.get_materialized_partitions(dg.AssetKey("raw_readings"))
    assert len(materialised) == 8 * 24

    before = last_job()
    assert main(["process", "--start", "2026-04-09T00", "--end", "2026-04-16T00", "--no-source"]) == 0
    assert last_job() == before
    assert len(instance.get_materialized_partitions(dg.AssetKey("raw_readings"))) == 15 * 24


@pytest.mark.parametrize("damage", ["delete version 1", "cut the newest commit at a line boundary"])
def test_a_damaged_log_stops_process_before_anything_is_written(end_to_end, env, spark, capsys, damage: str) -> None:
    """Deleting or cutting a commit of deduplicated_raw once lost rows with every check passing."""
    log_check._verified.clear()
    for name, hour in (("a", "03"), ("b", "04")):
        records = [r(f"{name}{i}", "m1", f"2026-04-01T{hour}:{i:02d}:00Z", 1.0) for i in range(3)]
        _land(env, f"ingestion_hour=2026-04-01-{hour}", f"{name}.json", records)
        end = f"2026-04-01T{int(hour) + 1:02d}"
        assert main(["process", "--start", f"2026-04-01T{hour}", "--end", end]) == 0
    log = env / "warehouse/deduplicated_raw/_delta_log"
    newest = DeltaTable(str(log.parent)).version()
    assert newest >= 2
    if damage.startswith("delete"):
        (log / f"{1:020d}.json").unlink()
        version = 1
    else:
        path = log / f"{newest:020d}.json"
        path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))
        version = newest
    _land(env, "ingestion_hour=2026-04-01-05", "c.json", [r("c0", "m1", "2026-04-01T05:00:00Z", 1.0)])
    capsys.readouterr()
    raw_before = DeltaTable(str(env / "warehouse/raw_readings")).version()

    assert main(["process", "--start", "2026-04-01T05", "--end", "2026-04-01T06"]) == 1

    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"error: table deduplicated_raw: Delta log version {version} is "), last
    # raw_readings and deduplicated_raw are written by one step: the damage stops both.
    assert DeltaTable(str(env / "warehouse/raw_readings")).version() == raw_before


#: Spark jobs one ingestion hour may cost through every asset under the production settings.
#: At this test's size: 84 with adaptive execution and broadcast joins, 24 without them, 21 once
#: each asset's checks that read one table share one job (2026-12-07). A run's fixed costs that
#: grow back (a read-back or count per check, adaptive stages) fail here.
MAX_SPARK_JOBS_PER_HOUR = 25


@pytest.fixture
def production_settings(spark):
    """The shared session with the production SQL settings: ``spark_config``'s, and Spark's own code generation.

    The tests' JVMs turn code generation off (spark_conf/spark-defaults.conf); the pipeline's
    resource applies the rest of ``spark_config`` itself when its runs join the session.
    """
    wanted = {key: value for key, value in spark_config().items() if key.startswith("spark.sql.")}
    wanted |= {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"}
    saved = {key: spark.conf.get(key, None) for key in wanted}
    for key, value in wanted.items():
        spark.conf.set(key, value)
    yield wanted
    for key, value in saved.items():
        if value is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, value)


def test_one_more_hour_through_every_asset_costs_five_runs_and_at_most_25_spark_jobs_in_production(
    end_to_end, env, spark, production_settings
) -> None:
    # Readings arrive in the ingestion hour after the hour they measure.
    for hour in ("00", "01", "02"):
        records = [
            r(f"h{hour}m{m}i{i}", f"m{m}", f"2026-04-01T{hour}:{i * 30:02d}:00Z", 1.0) for m in range(3) for i in (0, 1)
        ]
        _land(env, f"ingestion_hour=2026-04-01-{int(hour) + 1:02d}", "readings.json", records)
    assert main(["process", "--start", "2026-04-01T01", "--end", "2026-04-01T04", "--no-source"]) == 0
    # The next hour: its own readings, a late one for an hour already written, and a re-sent copy.
    _land(
        env,
        "ingestion_hour=2026-04-01-04",
        "readings.json",
        [
            r("h03m0", "m0", "2026-04-01T03:00:00Z", 2.0),
            r("late", "m1", "2026-04-01T01:15:00Z", 0.5),
            r("h00m0i0", "m0", "2026-04-01T00:00:00Z", 1.0),
        ],
    )
    tracker = spark.sparkContext.statusTracker()
    before = max(tracker.getJobIdsForGroup(None), default=-1)
    instance = dg.DagsterInstance.from_config(str(env / "home"))
    runs_before = len(instance.get_run_records())

    assert main(["process", "--start", "2026-04-01T04", "--end", "2026-04-01T05", "--no-source"]) == 0

    jobs = max(tracker.getJobIdsForGroup(None)) - before
    # The runs kept the production settings (the resource re-applies its own on joining the session).
    assert {key: spark.conf.get(key) for key in production_settings} == production_settings
    runs = instance.get_run_records()[: len(instance.get_run_records()) - runs_before]
    # raw_readings (with deduplicated_raw), hourly_usage, cumulative_usage, every gold table in one,
    # and the statement decision for April (no Spark: it adds no job).
    assert len(runs) == 5, [r.dagster_run.asset_selection for r in runs]
    assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    print(f"spark jobs for one hour through every asset: {jobs}")
    assert jobs <= MAX_SPARK_JOBS_PER_HOUR
    usage = DeltaTable(str(env / "warehouse/hourly_usage")).to_pyarrow_table().to_pylist()
    assert sum(row["consumption"] for row in usage) == pytest.approx(18 + 2.0 + 0.5)
