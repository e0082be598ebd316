"""``billing-assets bench``: the pipeline, plain Spark and DuckDB over one generated landing zone.

Figures go to stdout, progress to stderr. The pipeline is timed as ``billing-assets process``
runs it (Dagster runs, Delta commits, one run per ingestion hour) after the Spark session has
started; the two yardsticks then run the same chain in one batch over the same files, plain
Spark in the already running JVM, DuckDB in this process. With ``latency`` one more ingestion
hour is generated and, after the timed hours, processed through every downstream asset twice
from the same warehouse state: warm (this session) and cold (a fresh ``billing-assets process``).
With ``--warehouse s3`` the pipeline's warehouse lives on a local S3-compatible server (moto, in
its own process); the landing zone and the yardsticks stay on local disk. With ``markdown`` the
report goes to stderr and stdout gets one row of the documentation's history table
(``docs/performance.md``), so a measurement is pasted, not retyped.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, redirect_stdout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pyarrow.fs as pafs

from billing_assets.bench.compare import differences, hourly_totals, monthly_running_totals, read_output
from billing_assets.bench.memory import MIB, Peak, PeakMemory, driver_jvm
from billing_assets.domain.keys import command_hour
from billing_assets.instance import INSTANCE_CONFIG
from billing_assets.local_processes import free_port, start_s3_server, stop_process_group
from billing_assets.resources import resolved_warehouse
from billing_assets.settings import Settings, load_settings
from billing_assets.spark_jobs import SparkJobs

DEFAULT_START = datetime(2026, 3, 28, tzinfo=UTC)
SEED = 7
COLD_TIMEOUT = 900
#: How many of the warm hour's Spark jobs the report lists, longest first.
JOBS_LISTED = 12
#: The assets of ``process`` that do what the yardsticks do.
CHAIN = ("raw_readings", "hourly_usage", "cumulative_usage")
T = TypeVar("T")
BENCH_BUCKET = "billing-bench"
#: What a local moto server accepts; set for the bench's own process and its cold `process`.
S3_SETTINGS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@dataclass
class EngineFigures:
    """One engine's run over the timed files."""

    name: str
    seconds: float
    peak: Peak
    hourly: dict[str, float] = field(default_factory=dict)
    monthly: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BenchResult:
    """The figures of one bench run that its history row records (seconds; None: not measured)."""

    records: int
    chain: float
    pipeline: float
    plain_spark: float
    duckdb: float
    warm: float | None
    cold: float | None
    python_peak: int
    jvm_peak: int


#: The columns of the history table in docs/performance.md, in order.
HISTORY_COLUMNS = (
    "date (UTC)",
    "command",
    "machine",
    "records",
    "pipeline chain",
    "pipeline, all",
    "plain Spark",
    "DuckDB",
    "hour warm",
    "hour cold",
    "Python peak",
    "JVM peak",
)


def bench_command(meterpoints: int, hours: int, start: datetime, latency: bool, warehouse_kind: str) -> str:
    """The command line that repeats a bench run (defaults left out)."""
    parts = ["bench", "--meterpoints", str(meterpoints), "--hours", str(hours)]
    if start != DEFAULT_START:
        parts += ["--start", command_hour(start)]
    if latency:
        parts.append("--latency")
    if warehouse_kind != "local":
        parts += ["--warehouse", warehouse_kind]
    return " ".join(parts)


def machine() -> str:
    """The machine in the history table's words: cores and memory."""
    import psutil

    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / (1 << 30):.0f} GiB"


def markdown_row(when: datetime, command: str, host: str, result: BenchResult) -> str:
    """One row of the history table in docs/performance.md for a bench run."""

    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    def mib(size: int) -> str:
        return f"{size / MIB:,.0f} MiB" if size else "—"

    cells = [
        f"{when.astimezone(UTC):%Y-%m-%d %H:%M}",
        f"`{command}`",
        host,
        f"{result.records:,}",
        seconds(result.chain),
        seconds(result.pipeline),
        seconds(result.plain_spark),
        seconds(result.duckdb),
        seconds(result.warm),
        seconds(result.cold),
        mib(result.python_peak),
        mib(result.jvm_peak),
    ]
    return "| " + " | ".join(cells) + " |"


def _say(line: str = "") -> None:
    print(line, flush=True)


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _records_read(instance: dg.DagsterInstance) -> int:
    """Landing records the pipeline read (its own conservation count, from run metadata)."""
    # A range run reports its totals on each partition it materialises: count each run once.
    per_run: dict[str, int] = {}
    cursor, more = None, True
    while more:
        page = instance.fetch_materializations(dg.AssetKey("raw_readings"), limit=1000, cursor=cursor)
        for record in page.records:
            per_run[record.run_id] = int(record.asset_materialization.metadata["records_read"].value)
        cursor, more = page.cursor, page.has_more
    return sum(per_run.values())


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    began = time.monotonic()
    result = action()
    return result, time.monotonic() - began


def _cold_latency(hour: datetime, env: dict[str, str]) -> tuple[float, str]:
    """Wall time of ``billing-assets process`` for one hour in a fresh process, and its per-asset lines."""
    command = [sys.executable, "-m", "billing_assets.cli", "process"]
    command += ["--start", command_hour(hour), "--end", command_hour(hour + timedelta(hours=1))]
    command += ["--no-source"]  # the daily dimension load is not part of an hour's latency
    began = time.monotonic()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=COLD_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"cold `billing-assets process` exited with {proc.returncode}")
    return seconds, ", ".join(line.strip() for line in out.splitlines() if line.strip())


@contextmanager
def _warehouse_location(kind: str, root: Path, settings: Settings) -> Iterator[Settings]:
    """``settings`` with the pipeline's warehouse: a folder under ``root``, or a bucket on a local moto server."""
    if kind == "local":
        yield replace(settings, warehouse_uri=str(root / "warehouse"))
        return
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = start_s3_server(port)
    # The credentials reach the resources as dg.EnvVar references, so they go in the environment.
    saved = {name: os.environ.get(name) for name in S3_SETTINGS}
    try:
        os.environ.update(S3_SETTINGS)
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BENCH_BUCKET)
        _progress(f"[bench] warehouse on S3: s3://{BENCH_BUCKET}/warehouse at {endpoint}")
        yield replace(settings, warehouse_uri=f"s3://{BENCH_BUCKET}/warehouse", s3_endpoint_url=endpoint)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        stop_process_group(server)


def _copy_warehouse(source: str, destination: str, endpoint: str | None) -> None:
    """Copy a warehouse (a local folder or an S3 prefix) to a new location on the same store."""
    origin, copy = resolved_warehouse(source, endpoint), resolved_warehouse(destination, endpoint)
    fs, path = origin.storage.filesystem(origin.root)
    target = copy.storage.filesystem(copy.root)[1]
    pafs.copy_files(path, target, source_filesystem=fs, destination_filesystem=fs)


def _per_asset(report) -> str:
    """Each asset's seconds, Spark jobs and seconds inside those jobs: where a run's time goes."""
    parts = []
    for name, seconds in report.seconds.items():
        jobs = report.spark_jobs.get(name)
        inside = f" ({jobs.jobs} jobs, {jobs.seconds:.1f}s in jobs)" if jobs is not None else ""
        parts.append(f"{name} {seconds:.1f}s{inside}")
    return ", ".join(parts)


def _longest_jobs(title: str, report) -> None:
    """The report's longest Spark jobs, with the line of code that started each: the next profile."""
    everything = sum(report.spark_jobs.values(), SparkJobs())
    if everything.timed:
        _say(f"{title} (seconds, where started):")
        for seconds, site in everything.slowest(JOBS_LISTED):
            _say(f"    {seconds:6.2f}  {site}")


def _rate(records: int, seconds: float) -> str:
    rate = records / seconds
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"


def _mib(size: int) -> str:
    return f"{size / MIB:,.0f} MiB" if size else "-"


def run_bench(
    meterpoints: int,
    hours: int,
    workdir: str | None = None,
    keep: bool = False,
    latency: bool = False,
    start: datetime = DEFAULT_START,
    warehouse_kind: str = "local",
    markdown: bool = False,
    agreements: int | None = None,
) -> int:
    """Generate, time the three engines, check they agree, print the figures; 1 when they disagree.

    With ``markdown`` the report goes to stderr and stdout gets the run's history-table row.
    """
    if workdir:
        os.makedirs(workdir, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="billing-bench-", dir=workdir))
    began = datetime.now(UTC)
    row_out = sys.stdout
    try:
        with redirect_stdout(sys.stderr) if markdown else nullcontext():
            with _warehouse_location(warehouse_kind, root, load_settings()) as settings:
                code, result = _bench(meterpoints, hours, root, latency, start, settings, warehouse_kind, agreements)
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr if markdown else sys.stdout, flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    if markdown and code == 0:
        command = bench_command(meterpoints, hours, start, latency, warehouse_kind)
        print(markdown_row(began, command, machine(), result), file=row_out, flush=True)
    return code


def _bench(
    meterpoints: int,
    hours: int,
    root: Path,
    latency: bool,
    start: datetime,
    settings: Settings,
    warehouse_kind: str,
    agreements: int | None = None,
) -> tuple[int, BenchResult]:
    from pyspark import SparkContext

    from billing_assets.bench.plain_duckdb import run_duckdb
    from billing_assets.bench.plain_spark import run_plain_spark
    from billing_assets.domain.keys import hour_keys_between
    from billing_assets.landing.sample import generate_sample
    from billing_assets.process import process
    from billing_assets.resources import build_resources
    from billing_assets.resources.spark import spark_session
    from billing_assets.source.sample_db import write_sample_source

    timezone, warehouse = settings.timezone, settings.warehouse_uri
    end = start + timedelta(hours=hours)
    landing, source_db = root / "landing", root / "source.db"
    _say(
        f"billing-assets bench: {meterpoints} meterpoints x {hours} ingestion hours from {start:%Y-%m-%dT%H} UTC,"
        f" warehouse {warehouse_kind}"
    )
    _progress(f"[bench] generating the landing zone in {landing}")
    summary, generate_seconds = _timed(
        lambda: generate_sample(
            str(landing),
            meterpoints=meterpoints,
            start=start,
            hours=hours + (1 if latency else 0),
            seed=SEED,
            timezone=timezone,
        )
    )
    write_sample_source(str(source_db), summary.meterpoints, start.date(), seed=SEED)
    folders = [str(landing / f"ingestion_hour={key}") for key in hour_keys_between(start, end)]
    folders = [folder for folder in folders if os.path.isdir(folder)]
    files = sum(len(os.listdir(folder)) for folder in folders)

    settings = replace(settings, landing_uri=str(landing), source_db=str(source_db))
    resources = build_resources(settings=settings)
    options = resolved_warehouse(warehouse, settings.s3_endpoint_url).storage.delta_options()
    # The persistent instance `process` uses (SQLite storage on disk, the project's dagster.yaml):
    # its run and event bookkeeping is part of what users pay.
    home = root / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    with PeakMemory() as memory:
        joined = SparkContext._active_spark_context is not None
        _progress("[bench] starting Spark")
        with memory.phase("spark start"):
            spark, jvm_seconds = _timed(
                lambda: spark_session(resources["spark"].spark_config, settings.spark_log_level)
            )
        memory.jvm = driver_jvm(spark)

        _progress("[bench] pipeline: billing-assets process")
        with memory.phase("pipeline") as peak:
            report, seconds = _timed(lambda: process(start, end, resources, instance, echo=_progress))
        records = _records_read(instance)
        _progress(f"[bench] pipeline: {seconds:.1f}s for {records:,} records")
        pipeline = EngineFigures("pipeline", seconds, peak)
        # The chain the yardsticks run: no daily dimension load, no gold tables.
        chain_seconds = sum(report.seconds.get(k, 0.0) for k in CHAIN)
        pipeline.hourly = hourly_totals(read_output(f"{warehouse}/hourly_usage", delta=True, storage=options))
        pipeline.monthly = monthly_running_totals(
            read_output(f"{warehouse}/cumulative_usage", delta=True, storage=options)
        )

        _progress("[bench] plain Spark, one batch")
        with memory.phase("plain Spark") as peak:
            output = run_plain_spark(spark, folders, str(root / "plain_spark"), timezone)
        plain = EngineFigures("plain Spark", output.seconds, peak)
        _progress(f"[bench] plain Spark: {output.seconds:.1f}s")
        plain.hourly = hourly_totals(read_output(output.hourly_path))
        plain.monthly = monthly_running_totals(read_output(output.cumulative_path))

        _progress("[bench] DuckDB, one batch")
        (root / "duckdb").mkdir()
        with memory.phase("DuckDB") as peak:
            output = run_duckdb(folders, str(root / "duckdb"), timezone)
        duck = EngineFigures("DuckDB", output.seconds, peak)
        _progress(f"[bench] DuckDB: {output.seconds:.1f}s")
        duck.hourly = hourly_totals(read_output(output.hourly_path))
        duck.monthly = monthly_running_totals(read_output(output.cumulative_path))

        warm = cold = None
        if latency:
            # Both start from the warehouse the timed hours left behind.
            cold_warehouse = f"{warehouse}_cold"
            _copy_warehouse(warehouse, cold_warehouse, settings.s3_endpoint_url)
            # The cold run is a fresh process on the same history: a copy of the instance too.
            shutil.copytree(home, root / "dagster_home_cold")
            _progress(f"[bench] latency, warm: ingestion hour {end:%Y-%m-%dT%H} in the running session")
            warm = _timed(
                lambda: process(end, end + timedelta(hours=1), resources, instance, echo=_progress, load_source=False)
            )
            _progress("[bench] latency, cold: the same hour in a fresh `billing-assets process`")
            env = {
                **os.environ,
                **replace(settings, warehouse_uri=cold_warehouse).environment(),
                "DAGSTER_HOME": str(root / "dagster_home_cold"),
            }
            cold = _cold_latency(end, env)
        source_lines = []
        if agreements:
            from billing_assets.bench.source_load import time_source_loads

            _progress(f"[bench] the source load over {agreements:,} agreements and meterpoints")
            source_lines = time_source_loads(spark, root, agreements, settings.start_date, datetime.now(UTC).date())
        if not joined:
            spark.stop()

    engines = [pipeline, plain, duck]
    problems = {
        engine.name: differences(pipeline.hourly, engine.hourly) + differences(pipeline.monthly, engine.monthly)
        for engine in engines[1:]
    }
    _say(f"landing zone: {records:,} records in {files} files, generated in {generate_seconds:.1f}s")
    _say(f"Spark session start (JVM): {jvm_seconds:.1f}s{' (joined a running session)' if joined else ''}")
    _say("pipeline per asset: " + _per_asset(report))
    _say(
        f"pipeline driver peak RSS: Python {_mib(pipeline.peak.python)}, JVM {_mib(pipeline.peak.jvm)}"
        f" ({len(report.run_ids)} Dagster runs)"
    )
    _longest_jobs("the pipeline's longest Spark jobs", report)
    _say()
    # Throughput relative to plain Spark: above 1.00x is faster than it.
    header = ("engine", "seconds", "readings/s", "vs plain Spark", "Python peak", "JVM peak")
    _say("{:<16} {:>9} {:>11} {:>15} {:>12} {:>10}".format(*header))
    rows = [("pipeline chain", chain_seconds, pipeline.peak), ("pipeline, all", pipeline.seconds, pipeline.peak)]
    rows += [(engine.name, engine.seconds, engine.peak) for engine in engines[1:]]
    for name, seconds, peak in rows:
        _say(
            f"{name:<16} {seconds:>9.1f} {_rate(records, seconds):>11}"
            f" {plain.seconds / seconds:>14.2f}x {_mib(peak.python):>12}"
            f" {_mib(peak.jvm if name != duck.name else 0):>10}"
        )
    _say("(pipeline chain: raw_readings + hourly_usage + cumulative_usage, the yardsticks' chain;")
    _say(" pipeline, all: with the daily source load and the gold tables)")
    _say()
    if warm and cold:
        _say(f"latency, one ingestion hour of {meterpoints} meterpoints through every downstream asset:")
        _say(
            f"  warm (running Spark session): {warm[1]:.1f}s in {len(warm[0].run_ids)} runs,"
            f" {sum(j.jobs for j in warm[0].spark_jobs.values())} Spark jobs; per asset: " + _per_asset(warm[0])
        )
        _say(f"  cold (fresh process, Spark start included): {cold[0]:.1f}s; {cold[1]}")
        _longest_jobs("  the warm hour's longest Spark jobs", warm[0])
    if source_lines:
        _say(f"source load, {agreements:,} agreements and meterpoints (local warehouse):")
        for line in source_lines:
            _say(line)
    result = BenchResult(
        records=records,
        chain=chain_seconds,
        pipeline=pipeline.seconds,
        plain_spark=plain.seconds,
        duckdb=duck.seconds,
        warm=warm[1] if warm else None,
        cold=cold[0] if cold else None,
        python_peak=pipeline.peak.python,
        jvm_peak=pipeline.peak.jvm,
    )
    if any(problems.values()):
        for name, found in problems.items():
            for problem in found[:10]:
                _say(f"DISAGREE pipeline vs {name}: {problem}")
        return 1, result
    _say(
        f"engines agree: hourly totals ({len(pipeline.hourly)} hours) and monthly running totals"
        f" ({len(pipeline.monthly)} months) within 1e-6"
    )
    return 0, result
