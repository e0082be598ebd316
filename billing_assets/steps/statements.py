"""The statement step: decide a billing month's next run and append it (polars over pinned Delta versions, no Spark).

Each run reads ``hourly_usage``, ``agreement_days`` and ``quarantined_readings`` at versions it
records on every line it writes, so the run can be recomputed later (``verify_run``). Appends
are append-only: a run once written is never rewritten. Each append names the month and run in
a Delta app transaction, so two processes settling the same month cannot both write run N (the
second commit is refused and its whole decision is made again); ``statements`` is committed
before ``statement_adjustments``, and adjustments a crash left unwritten are derived again
from the two runs' recorded versions on the month's next decision.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow.compute as pc
from deltalake import write_deltalake
from deltalake.transaction import CommitProperties, Transaction

from billing_assets.domain.keys import hour_key, parse_hour_key, recording_hour_key
from billing_assets.domain.settlement import FINAL, INITIAL, Lifecycle, month_bounds
from billing_assets.domain.watermark import LATE_DATA_WINDOW
from billing_assets.tables.delta_io import PinnedTable, retry_on_conflict
from billing_assets.tables.log_check import record_commit
from billing_assets.tables.retention import keep_versions
from billing_assets.tables.schemas import (
    AGREEMENT_DAYS,
    DEDUPLICATED_RAW,
    HOURLY_USAGE,
    QUARANTINED_READINGS,
    RAW_READINGS,
    STATEMENT_ADJUSTMENTS,
    STATEMENTS,
    TableSpec,
)
from billing_assets.tables.warehouse import Warehouse
from billing_assets.transforms.resent import CONFLICT_SCHEMA, conflict_readings
from billing_assets.transforms.statements import (
    EXACT,
    INPUT_TABLES,
    LINE_KEY,
    MonthInputs,
    PreviousRun,
    adjustment_rows,
    billable_too_late,
    coverage_moves,
    plan_run,
    previous_run,
    resent_corrections,
    statement_lines,
    usage_days,
)
from billing_assets.transforms.too_late import too_late_readings

#: The tables a statement reads, by the name its ``<table>_version`` column records.
INPUTS: dict[str, TableSpec] = {
    "hourly_usage": HOURLY_USAGE,
    "agreement_days": AGREEMENT_DAYS,
    "quarantined_readings": QUARANTINED_READINGS,
    # Which too-late readings were accepted after all (a copy in time): not billed twice.
    "deduplicated_raw": DEDUPLICATED_RAW,
}


@dataclass(frozen=True)
class Settled:
    """What one decision for a month did: the run it appended (None: none), and what it read."""

    month: str
    run: int | None = None
    kind: str | None = None
    lines: int = 0
    adjustments: int = 0
    #: The appended run's total kWh and meterpoints, and its change against the previous run
    #: (None for a month's first run).
    kwh: float = 0.0
    meters: int = 0
    kwh_difference: float | None = None
    versions: Mapping[str, int] = field(default_factory=dict)
    #: ``too_late`` quarantine rows whose reading could not be read back (not billed).
    unreadable_too_late: int = 0
    #: A run whose adjustments a crash left unwritten, written now.
    repaired_run: int | None = None
    #: The month is sealed, yet its inputs now give other lines than its final run: never
    #: billed into the month, to be looked at.
    changed_after_final: bool = False


def current_versions(warehouse: Warehouse, retention_days: int | None = None) -> dict[str, int]:
    """The latest version of each input table (each checked whole, as every read of this project is).

    With ``retention_days``, each input first keeps its versions at least that long
    (``keep_versions``: one commit per table the first time, then nothing), so the runs that
    record these versions can be verified for as long.
    """
    versions = {}
    for name, spec in INPUTS.items():
        table = warehouse.open(spec)
        if retention_days is not None and keep_versions(table, retention_days):
            table = warehouse.open(spec)
        versions[name] = table.delta.version()
    return versions


def data_clock(warehouse: Warehouse) -> datetime | None:
    """The end of the newest ingestion hour the warehouse holds (None: nothing ingested yet).

    A month's lifecycle runs on this clock, not the wall clock: in live operation the two agree
    (hours are ingested as they end), and when old landing hours are processed (a backfill, a
    migration) a month is not settled, or sealed, before the readings that followed it are in.
    """
    newest = None
    for spec in (RAW_READINGS, QUARANTINED_READINGS):
        hours = warehouse.open(spec).delta.get_add_actions(flatten=True).column("partition.ingestion_hour")
        latest = max((hour for hour in hours.to_pylist() if hour), default=None)
        if latest is not None and (newest is None or latest > newest):
            newest = latest
    return None if newest is None else parse_hour_key(newest) + timedelta(hours=1)


def month_rows(table: PinnedTable, month: str) -> pl.DataFrame:
    """A month's rows of ``statements`` or ``statement_adjustments`` at the table's pinned version."""
    return _read(table, [("billing_month", "=", month)])


def read_month(
    warehouse: Warehouse,
    month: str,
    timezone: str,
    versions: Mapping[str, int],
    previous_versions: Mapping[str, int] | None = None,
) -> tuple[MonthInputs, int]:
    """The month's inputs at ``versions``, and how many ``too_late`` rows could not be read back.

    With ``previous_versions`` (the previous run's), the coverage at those versions too: it tells
    a day that moved to another line from new usage.
    """
    start, end = month_bounds(month, timezone)
    usage = daily_usage(warehouse.open(HOURLY_USAGE, versions["hourly_usage"]), month, timezone)
    coverage = _coverage(warehouse, month, timezone, versions["agreement_days"])
    previous = None
    if previous_versions is not None:
        previous = _coverage(warehouse, month, timezone, previous_versions["agreement_days"])
    # A reading arrives after it was taken (a clock drifts minutes, not a day); it is too late
    # only in an hour at least 7 days after the month starts.
    quarantine = _read(
        warehouse.open(QUARANTINED_READINGS, versions["quarantined_readings"]),
        [("ingestion_hour", ">=", hour_key(start - timedelta(days=1)))],
    )
    late, unreadable = too_late_readings(
        quarantine.filter(pl.col("ingestion_hour") >= hour_key(start + LATE_DATA_WINDOW))
    )
    late = late.filter((pl.col("interval_start") >= start) & (pl.col("interval_start") < end))
    dedup = warehouse.open(DEDUPLICATED_RAW, versions["deduplicated_raw"])
    accepted = _accepted_ids(dedup, late, timezone)
    conflicts = conflict_readings(quarantine)
    in_month = pl.col("interval_start").is_between(start, end, closed="left") | pl.col("first_copy_at").is_between(
        start, end, closed="left"
    )
    conflicts = conflicts.filter(in_month)
    corrections = resent_corrections(conflicts, _first_copies(dedup, conflicts, timezone))
    inputs = MonthInputs(usage, coverage, billable_too_late(late, accepted), previous, corrections)
    return inputs, unreadable


def daily_usage(table: PinnedTable, month: str, timezone: str) -> pl.DataFrame:
    """A month's ``hourly_usage`` summed per meterpoint and local day, read one day's hours at a time.

    A month of hourly rows is meterpoints x ~744 rows (7.4 million at 10,000 meterpoints); a day
    is 24 recording hours, and its sum one row per meterpoint, so the process never holds more
    than a day of hours. ``usage_hour`` is the UTC instant the day starts; the kWh stay exact
    (``decimal(38, 9)``): a day's sum as a double may not be.
    """
    zone = ZoneInfo(timezone)
    start, end = month_bounds(month, timezone)
    days, day = [], start
    while day < end:
        following = datetime.combine(day.astimezone(zone).date() + timedelta(days=1), time(), tzinfo=zone)
        following = following.astimezone(UTC)
        hours = hour_starts(day, following)
        keys = [recording_hour_key(instant, timezone) for instant in hours]
        rows = table.delta.to_pyarrow_table(
            partitions=[("recording_hour", "in", keys)], columns=["meterpoint_id", "consumption", "reading_count"]
        )
        days.append(
            pl.from_arrow(rows)
            .group_by("meterpoint_id")
            .agg(pl.col("consumption").cast(EXACT).sum(), pl.col("reading_count").sum())
            .select("meterpoint_id", pl.lit(day).alias("usage_hour"), "consumption", "reading_count")
        )
        day = following
    return pl.concat(days).sort("meterpoint_id", "usage_hour")


def hour_starts(start: datetime, end: datetime) -> list[datetime]:
    """The UTC starts of the local hours from ``start`` (a local hour's start) to ``end``, exclusive."""
    found = []
    while start < end:
        found.append(start)
        start += timedelta(hours=1)
    return found


def settle_month(
    warehouse: Warehouse,
    month: str,
    timezone: str,
    lifecycle: Lifecycle,
    now: datetime,
    retention_days: int | None = None,
) -> Settled:
    """Append the month's next run if one is due and its bill changed; repair a run's missing adjustments first.

    ``retention_days``: how long the inputs must keep the versions a run records (see ``current_versions``).
    """

    def step() -> Settled:
        statements = warehouse.open(STATEMENTS)
        adjustments = warehouse.open(STATEMENT_ADJUSTMENTS)
        rows = month_rows(statements, month)
        repaired = _repair_adjustments(warehouse, adjustments, rows, month, timezone)
        previous = previous_run(rows)
        versions = current_versions(warehouse, retention_days)
        unreadable = 0

        def read() -> MonthInputs:
            nonlocal unreadable
            inputs, unreadable = read_month(
                warehouse, month, timezone, versions, previous.versions if previous else None
            )
            return inputs

        plan = plan_run(month, timezone, now, lifecycle, previous, versions, read)
        if plan is None:
            changed = _changed_after_final(month, timezone, previous, versions, read)
            return Settled(
                month,
                versions=versions,
                unreadable_too_late=unreadable,
                repaired_run=repaired,
                changed_after_final=changed,
            )
        _append(statements, plan.statements, month, plan.run)
        _append(adjustments, plan.adjustments, month, plan.run)
        return Settled(
            month,
            run=plan.run,
            kind=plan.kind,
            lines=plan.statements.height,
            adjustments=plan.adjustments.height,
            kwh=float(plan.statements["kwh"].sum()),
            meters=plan.statements["meterpoint_id"].n_unique(),
            kwh_difference=None if previous is None else float(plan.adjustments["kwh_difference"].sum()),
            versions=versions,
            unreadable_too_late=unreadable,
            repaired_run=repaired,
        )

    return retry_on_conflict(step)


def _changed_after_final(
    month: str,
    timezone: str,
    previous: PreviousRun | None,
    versions: Mapping[str, int],
    read: Callable[[], MonthInputs],
) -> bool:
    """Whether a sealed month's inputs now give other lines than its final run (read only if they moved)."""
    if previous is None or previous.kind != FINAL or dict(versions) == dict(previous.versions):
        return False
    inputs = read()
    lines = statement_lines(month, timezone, inputs.usage, inputs.coverage, inputs.too_late, inputs.corrections)
    return not lines.equals(previous.lines)


def statement(warehouse: Warehouse, month: str, run: int | None = None) -> pl.DataFrame:
    """The lines of one run of a month (default: its latest); empty when the month has no such run."""
    rows = month_rows(warehouse.open(STATEMENTS), month)
    if rows.is_empty():
        return rows
    wanted = rows["run"].max() if run is None else run
    return rows.filter(pl.col("run") == wanted).sort(list(LINE_KEY), nulls_last=True)


def verify_run(warehouse: Warehouse, month: str, timezone: str, run: int) -> list[str]:
    """Differences between a stored run and the same run recomputed from the versions it recorded (none: it verifies).

    Raises when a recorded version can no longer be read (its log or files were cleaned up:
    see docs/settlement.md on retention).
    """
    stored = statement(warehouse, month, run)
    if stored.is_empty():
        raise LookupError(f"{month} has no statement run {run}")
    first = stored.row(0, named=True)
    versions = {name: first[f"{name}_version"] for name in INPUT_TABLES}
    inputs, _ = read_month(warehouse, month, timezone, versions)
    late = inputs.too_late if first["run_kind"] != INITIAL else None
    again = statement_lines(month, timezone, inputs.usage, inputs.coverage, late, inputs.corrections)
    kept = stored.select(list(again.columns)).cast(dict(again.schema)).sort(list(LINE_KEY), nulls_last=True)
    missing = kept.join(again, on=list(again.columns), how="anti", nulls_equal=True)
    extra = again.join(kept, on=list(again.columns), how="anti", nulls_equal=True)
    return [f"stored, not recomputed: {row}" for row in missing.iter_rows()] + [
        f"recomputed, not stored: {row}" for row in extra.iter_rows()
    ]


def _coverage(warehouse: Warehouse, month: str, timezone: str, version: int) -> pl.DataFrame:
    start, end = month_bounds(month, timezone)
    first, last = _local_date(start, timezone), _local_date(end - timedelta(microseconds=1), timezone)
    days = [("date", ">=", first), ("date", "<=", last)]
    return _read(warehouse.open(AGREEMENT_DAYS, version), days).filter(pl.col("covers_readings"))


def _local_date(instant: datetime, timezone: str) -> str:
    return instant.astimezone(ZoneInfo(timezone)).date().isoformat()


def _accepted_ids(dedup: PinnedTable, late: pl.DataFrame, timezone: str) -> set[str]:
    """The record ids of ``late`` that ``deduplicated_raw`` holds (only the hours they fall in are read)."""
    if late.is_empty():
        return set()
    hours = sorted({recording_hour_key(instant, timezone) for instant in late["interval_start"].to_list()})
    ids = late["record_id"].to_list()
    # Filtered while the files are scanned: the hours read may hold the month's every reading.
    found = dedup.delta.to_pyarrow_table(
        partitions=[("recording_hour", "in", hours)], columns=["record_id"], filters=pc.field("record_id").isin(ids)
    )
    return set(found.column("record_id").to_pylist())


def _first_copies(dedup: PinnedTable, conflicts: pl.DataFrame, timezone: str) -> pl.DataFrame:
    """The ``deduplicated_raw`` rows of the conflicting records (only the hours their first copies are in are read)."""
    columns = ["record_id", "meterpoint_id", "interval_start", "consumption"]
    if conflicts.is_empty():
        return pl.DataFrame(schema={name: CONFLICT_SCHEMA[name] for name in columns})
    instants = conflicts["first_copy_at"].drop_nulls().to_list()
    hours = sorted({recording_hour_key(instant, timezone) for instant in instants})
    # Filtered while the files are scanned: first copies spread over a month's hours, and reading
    # those hours whole held the month's readings in this process (587 MiB at 10,000 meterpoints).
    wanted = pc.field("record_id").isin(conflicts["record_id"].to_list())
    found = dedup.delta.to_pyarrow_table(partitions=[("recording_hour", "in", hours)], columns=columns, filters=wanted)
    return pl.from_arrow(found).cast({name: CONFLICT_SCHEMA[name] for name in columns})


def _repair_adjustments(
    warehouse: Warehouse, table: PinnedTable, rows: pl.DataFrame, month: str, timezone: str
) -> int | None:
    """Write the adjustments of the month's latest run if a crash left them unwritten; that run's number."""
    latest = previous_run(rows)
    if latest is None or latest.run == 1:
        return None
    if (table.delta.transaction_version(_app_id(table, month)) or 0) >= latest.run:
        return None
    before = previous_run(rows.filter(pl.col("run") < latest.run))
    assert before is not None
    inputs, _ = read_month(warehouse, month, timezone, latest.versions, before.versions)
    days = usage_days(month, timezone, inputs, with_too_late=latest.kind != INITIAL)
    assert inputs.previous_coverage is not None
    moved = coverage_moves(days, inputs.previous_coverage, inputs.coverage)
    frame = adjustment_rows(before.lines, latest.lines, moved)
    created = rows.filter(pl.col("run") == latest.run)["created_at"][0]
    frame = frame.with_columns(
        pl.lit(month).alias("billing_month"),
        pl.lit(latest.run).alias("run"),
        pl.lit(before.run).alias("previous_run"),
        pl.lit(created).alias("created_at"),
    )
    typed = pl.from_arrow(STATEMENT_ADJUSTMENTS.schema.empty_table())
    _append(table, frame.select(typed.columns).cast(dict(typed.schema)), month, latest.run)
    return latest.run


#: Operations that change rows already written, whatever files they touch.
_REWRITING = {"DELETE", "UPDATE", "MERGE", "RESTORE", "OPTIMIZE", "REPLACE TABLE", "CREATE OR REPLACE TABLE"}


def rewrites(table: PinnedTable) -> list[str]:
    """Each commit of the table that did more than append ("version N: OPERATION"); none for a statement table."""
    found = []
    for commit in table.delta.history():
        operation = commit.get("operation", "")
        metrics = commit.get("operationMetrics") or {}
        removed = metrics.get("num_removed_files", metrics.get("numRemovedFiles", 0))
        overwrite = (commit.get("operationParameters") or {}).get("mode") == "Overwrite"
        if operation in _REWRITING or overwrite or int(removed or 0) > 0:
            found.append(f"version {commit.get('version')}: {operation}")
    return sorted(found)


def _read(table: PinnedTable, partitions: list[tuple[str, str, object]]) -> pl.DataFrame:
    """Rows of a pinned table's selected partitions (delta-rs reads them: local disk or S3)."""
    found = table.delta.to_pyarrow_table(partitions=partitions)
    return pl.from_arrow(found.select(table.spec.schema.names))


def _app_id(table: PinnedTable, month: str) -> str:
    return f"billing_assets.{table.spec.name}:billing_month={month}"


def _append(table: PinnedTable, frame: pl.DataFrame, month: str, run: int) -> None:
    """Append one run's rows of a month, committed against the pinned version and naming the month's run.

    Two commits naming the same app id conflict, so of two writers of a month's run one is
    refused (``CommitFailedError``) even though appends alone never conflict; an empty frame
    still commits, so the run is recorded as written.
    """
    write_deltalake(
        table.delta,
        frame.to_arrow().cast(table.spec.schema),
        mode="append",
        commit_properties=CommitProperties(app_transactions=[Transaction(app_id=_app_id(table, month), version=run)]),
    )
    table.delta.update_incremental()
    record_commit(table.uri, table.delta.version(), table.storage)
