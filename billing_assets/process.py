"""Headless processing: ingestion hours in order, then every downstream partition they touched.

Runs are recorded in the Dagster instance, so the UI shows them exactly as if it had
launched them. One Spark session serves every run of the process.
"""

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import dagster as dg

from billing_assets.definitions import ASSETS
from billing_assets.defs.dimensions import source_dimensions
from billing_assets.defs.gold import active_agreements, consumption_gold
from billing_assets.defs.ingestion import deduplicated_raw, raw_readings
from billing_assets.defs.usage import cumulative_usage, hourly_usage
from billing_assets.domain.timestamps import hour_key, hour_keys_between
from billing_assets.instance import fail_abandoned_runs, process_run_tags
from billing_assets.partitions import (
    DEFAULT_BATCH_HOURS,
    billing_months,
    in_time_order,
    ingestion_hours,
    key_ranges,
    local_days,
    range_tags,
    recording_hours,
    run_partitions,
)


@dataclass
class ProcessReport:
    """Runs launched and partitions refreshed."""

    run_ids: list[str] = field(default_factory=list)
    recording_hours: list[str] = field(default_factory=list)
    billing_months: list[str] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class ProcessError(ValueError):
    """``process`` cannot do what was asked; the message is one line for the user."""


def check_request(start: datetime, end: datetime, batch_hours: int) -> list[str]:
    """The ingestion hour keys of ``[start, end)``, or a ``ProcessError`` saying why they cannot be processed."""
    if batch_hours < 1:
        raise ProcessError(f"--batch-hours must be at least 1, got {batch_hours}")
    hours = hour_keys_between(start, end)
    if not hours:
        raise ProcessError("--end must be after --start (end is exclusive)")
    first, last = ingestion_hours.get_first_partition_key(), ingestion_hours.get_last_partition_key()
    if hours[0] < first:
        raise ProcessError(f"--start {hours[0]} is before the first ingestion hour {first} (BILLING_START_DATE)")
    if last is None or hours[-1] > last:
        raise ProcessError(
            f"ingestion hour {hours[-1]} is in the future or not over yet; the latest hour to process is {last}"
        )
    return hours


def plan_batches(hours: Sequence[str], with_files: set[str], batch_hours: int) -> list[list[str]]:
    """Consecutive hours in runs: at most ``batch_hours`` hours with files per run, each stretch of empty hours one run.

    An empty hour costs no Spark work (``raw_readings`` records it from the Delta log), so a
    year of quiet hours is a handful of runs, not one per ``batch_hours``.
    """
    batches: list[list[str]] = []
    for key in hours:
        empty = key not in with_files
        current = batches[-1] if batches else None
        if current is None or empty != (current[0] not in with_files) or (not empty and len(current) >= batch_hours):
            batches.append([key])
        else:
            current.append(key)
    return batches


def _report_skipped(landing, hours: Sequence[str], echo: Callable[[str], None]) -> set[str]:
    """List the zone once: say which folders and files will not be read, return the hours holding files."""
    by_hour, rejected_folders = landing.list_all()
    for folder in rejected_folders:
        echo(f"[landing] skipped folder {folder!r} (not ingestion_hour=YYYY-MM-DD-HH)")
    wanted = set(hours)
    for key in sorted(wanted.intersection(by_hour)):
        for file in by_hour[key]:
            if file.rejected_reason:
                echo(f"[landing] quarantined unread: {file.name} ({file.rejected_reason})")
    return wanted.intersection(by_hour)


def _progress(label: str, done: int, total: int, started: float) -> str:
    elapsed = time.monotonic() - started
    eta = elapsed / done * (total - done) if done else 0.0
    return f"[{label}] {done}/{total} done, {total - done} left, ~{eta:.0f}s remaining"


def process(
    start: datetime,
    end: datetime,
    resources: dict,
    instance: dg.DagsterInstance,
    echo: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    batch_hours: int = DEFAULT_BATCH_HOURS,
    load_source: bool = True,
) -> ProcessReport:
    """Process ingestion hours ``[start, end)`` and bring their downstream partitions up to date.

    Ingestion hours go ``batch_hours`` at a time into one ``raw_readings`` run: deduplication does
    not depend on the order or grouping of hours, and one Spark pass over many files costs far
    less than one run per hour.
    """
    hours = check_request(start, end, batch_hours)
    report = ProcessReport()
    touched: set[str] = set()

    def run(*selection: dg.AssetsDefinition, tags: dict[str, str] | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            ASSETS,
            selection=[key for assets in selection for key in assets.keys],
            resources=resources,
            instance=instance,
            tags={**(tags or {}), **process_run_tags()},
            **kwargs,
        )
        report.run_ids.append(result.run_id)
        return result

    for run_id in fail_abandoned_runs(instance):
        echo(f"[recovery] run {run_id} was left unfinished by a killed process: marked failed, its pool slot freed")

    if load_source and os.path.isfile(resources["source"].path):
        today = local_days.get_last_partition_key()
        echo(f"[dimensions] loading the source database for {today}")
        began = time.monotonic()
        run(source_dimensions, partition_key=today)
        report.seconds["source_dimensions"] = time.monotonic() - began

    # Outside a run, a resource's dg.EnvVar credentials are resolved only by building it.
    with dg.build_resources({"landing": resources["landing"]}) as built:
        with_files = _report_skipped(built.landing, hours, echo)
    began = time.monotonic()
    done = 0
    for batch in plan_batches(hours, with_files, batch_hours):
        quiet = "" if batch[0] in with_files else " (no files)"
        echo(f"{_progress('ingest', done, len(hours), began)}; now ingestion hours {batch[0]} .. {batch[-1]}{quiet}")
        done += len(batch)
        result = run(raw_readings, **run_partitions(batch[0], batch[-1]))
        touched.update(
            event.partition
            for event in result.get_asset_materialization_events()
            if event.asset_key == deduplicated_raw.key and event.partition
        )
    report.seconds["raw_readings"] = time.monotonic() - began

    began = time.monotonic()
    report.recording_hours = in_time_order(touched)
    if report.recording_hours:
        # Late readings scatter over up to 8 days of hours; recomputing the untouched hours in
        # between is an idempotent replace and far cheaper than one run per scattered range.
        first, last = report.recording_hours[0], report.recording_hours[-1]
        echo(f"[hourly_usage] recording hours {first} .. {last}")
        run(hourly_usage, tags=range_tags(first, last))
    report.seconds["hourly_usage"] = time.monotonic() - began

    began = time.monotonic()
    months = dg.TimeWindowPartitionMapping().get_downstream_partitions_for_partitions(
        recording_hours.subset_with_partition_keys(report.recording_hours), recording_hours, billing_months
    )
    report.billing_months = sorted(months.get_partition_keys())
    for key_range in key_ranges(billing_months, report.billing_months):
        echo(f"[cumulative_usage] billing months {key_range.start} .. {key_range.end}")
        run(cumulative_usage, tags=range_tags(key_range.start, key_range.end))
    report.seconds["cumulative_usage"] = time.monotonic() - began

    began = time.monotonic()
    days = dg.TimeWindowPartitionMapping().get_downstream_partitions_for_partitions(
        recording_hours.subset_with_partition_keys(report.recording_hours), recording_hours, local_days
    )
    report.days = sorted(days.get_partition_keys())
    for key_range in key_ranges(local_days, report.days):
        echo(f"[gold] local days {key_range.start} .. {key_range.end}")
        # Same days, same partitions: one run and one Spark session for every gold table.
        run(consumption_gold, active_agreements, tags=range_tags(key_range.start, key_range.end))
    report.seconds["gold"] = time.monotonic() - began
    echo(
        f"processed {len(hours)} ingestion hours ({hour_key(start)} .. {hours[-1] if hours else '-'}): "
        f"{len(report.recording_hours)} recording hours, {len(report.billing_months)} billing months, "
        f"{len(report.days)} local days, "
        f"{len(report.run_ids)} runs"
    )
    return report
