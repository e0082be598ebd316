"""Headless processing: ingestion hours in order, then every downstream partition they touched.

Runs are recorded in the Dagster instance, so the UI shows them exactly as if it had
launched them. One Spark session serves every run of the process. Which downstream partitions
to refresh is not written here: it follows from each asset's own dependencies and partition
mappings, the same facts the UI's automation conditions evaluate, so a new asset or mapping
needs no change in this module.
"""

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from graphlib import TopologicalSorter

import dagster as dg

from billing_assets.automation import condition_gate, planned_partitions
from billing_assets.definitions import ASSETS
from billing_assets.defs.announced import announce_unrecorded
from billing_assets.defs.dimensions import source_dimensions
from billing_assets.defs.ingestion import raw_readings
from billing_assets.domain.keys import hour_key, hour_keys_between
from billing_assets.instance import fail_abandoned_runs, process_run_tags
from billing_assets.partitions import (
    DEFAULT_BATCH_HOURS,
    ingestion_hours,
    local_days,
    run_partitions,
    runs_over_ranges,
)
from billing_assets.spark_jobs import SparkJobs, job_ids, jobs_since
from billing_assets.staleness import stale_partitions
from billing_assets.tables.delta_io import sweep_abandoned_writes
from billing_assets.tables.log_check import log_exists
from billing_assets.tables.schemas import ALL_TABLES
from billing_assets.tables.warehouse import Warehouse


@dataclass
class ProcessReport:
    """Runs launched, partitions refreshed per asset, and seconds per step."""

    run_ids: list[str] = field(default_factory=list)
    #: Asset name -> the partition keys this process refreshed (downstream of the ingestion).
    partitions: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    #: The same keys -> the Spark jobs their runs started and the seconds inside them (local drivers only).
    spark_jobs: dict[str, SparkJobs] = field(default_factory=dict)
    #: Asset name -> the partitions an earlier, interrupted run had left stale (refreshed by this one).
    repaired: dict[str, list[str]] = field(default_factory=dict)
    #: Why the source load failed (one line), if it did: what needs the dimensions waited.
    source_error: str | None = None


@dataclass(frozen=True)
class DownstreamRun:
    """One run of ``process``: assets of one partitioning over one range of partitions."""

    assets: tuple[dg.AssetsDefinition, ...]
    partitions: dg.PartitionKeyRange

    @property
    def label(self) -> str:
        """The assets' names, as the progress lines and ``ProcessReport.seconds`` show them."""
        return "+".join(asset.node_def.name for asset in self.assets)


def _automated(asset: dg.AssetsDefinition) -> dg.AutomationCondition | None:
    """The asset's automation condition (one for all its specs), or ``None`` when automation never requests it."""
    conditions = {spec.automation_condition for spec in asset.specs}
    return next(iter(conditions)) if len(conditions) == 1 else None


def _refreshed_assets() -> list[list[dg.AssetsDefinition]]:
    """The partitioned assets automation refreshes, in dependency order: each list only needs the ones before it."""
    owners = {key: asset for asset in ASSETS for key in asset.keys}
    automated = {
        asset.node_def.name: asset
        for asset in ASSETS
        if asset.partitions_def is not None and _automated(asset) is not None and _inputs(asset)
    }
    sorter = TopologicalSorter(
        {
            name: {owners[dep.asset_key].node_def.name for spec in asset.specs for dep in spec.deps} & automated.keys()
            for name, asset in automated.items()
        }
    )
    sorter.prepare()
    levels = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        levels.append([automated[name] for name in ready])
        sorter.done(*ready)
    return levels


def _inputs(asset: dg.AssetsDefinition) -> dict[dg.AssetKey, dg.PartitionsDefinition]:
    """The asset's dependencies and their partitions."""
    owners = {key: owner for owner in ASSETS for key in owner.keys}
    return {
        dep.asset_key: owners[dep.asset_key].partitions_def
        for spec in asset.specs
        for dep in spec.deps
        if owners[dep.asset_key].partitions_def is not None
    }


def stale_runs(instance: dg.DagsterInstance, assets: Sequence[dg.AssetsDefinition]) -> list[DownstreamRun]:
    """The runs that refresh every stale partition of ``assets`` (none of which depends on another).

    Stale is read from the instance (``staleness``): partitions whose inputs were materialised
    after them, whichever run did it and whether or not the run that should have refreshed
    them ever ran. Each asset's condition widens its partitions as a run of the UI's
    automation would (``SpanOf`` fills short gaps); assets of one partitioning over the same
    range share a run.
    """
    ids: dict[dg.AssetKey, dict[str, int]] = {}
    wanted = []
    for asset in assets:
        condition = _automated(asset)
        stale = stale_partitions(
            instance, list(asset.keys), asset.partitions_def, _inputs(asset), condition_gate(condition), ids
        )
        wanted.append((asset, asset.partitions_def, planned_partitions(condition, asset.partitions_def, stale)))
    return [DownstreamRun(tuple(units), key_range) for _, key_range, units in runs_over_ranges(wanted)]


def stale_now(instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Asset name -> its stale partitions, before anything is refreshed."""
    out = {}
    for level in _refreshed_assets():
        for run in stale_runs(instance, level):
            for asset in run.assets:
                keys = asset.partitions_def.get_partition_keys_in_range(run.partitions)
                out.setdefault(asset.node_def.name, []).extend(keys)
    return out


def _needs(root: dg.AssetsDefinition) -> set[str]:
    """The names of the assets downstream of ``root`` (transitively): those that need what it writes."""
    found, names = set(root.keys), set()
    grew = True
    while grew:
        grew = False
        for asset in ASSETS:
            if asset.node_def.name not in names and any(
                dep.asset_key in found for spec in asset.specs for dep in spec.deps
            ):
                names.add(asset.node_def.name)
                found |= set(asset.keys)
                grew = True
    return names


def _source_failure(result: dg.ExecuteInProcessResult, path: str) -> str:
    """One line for a failed source load: the database, the cause at the bottom of the error, and what to do."""
    causes = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            causes.append(error.message.strip().splitlines()[0].split(": ", 1)[-1])
    cause = causes[0] if causes else "the run failed"
    if path not in cause:
        cause = f"{path}: {cause}"
    return (
        f"the source database did not load ({cause}); what needs the dimensions waits: "
        "fix or replace the file (BILLING_SOURCE_DB), then run the same command again"
    )


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

    def run(*selection: dg.AssetsDefinition, tags: dict[str, str] | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        before = job_ids()
        result = dg.materialize(
            ASSETS,
            selection=[key for assets in selection for key in assets.keys],
            resources=resources,
            instance=instance,
            tags={**(tags or {}), **process_run_tags()},
            **kwargs,
        )
        report.run_ids.append(result.run_id)
        spent = jobs_since(before)
        if spent is not None:
            label = "+".join(asset.node_def.name for asset in selection)
            report.spark_jobs[label] = report.spark_jobs.get(label, SparkJobs()) + spent
        return result

    for run_id in fail_abandoned_runs(instance):
        echo(f"[recovery] run {run_id} was left unfinished by a killed process: marked failed, its pool slot freed")
    # Outside a run, a resource's dg.EnvVar credentials are resolved only by building it.
    with dg.build_resources({"landing": resources["landing"], "warehouse": resources["warehouse"]}) as built:
        with_files = _report_skipped(built.landing, hours, echo)
        report.repaired = recover(instance, built.warehouse.get_warehouse(), echo)

    if load_source and os.path.isfile(resources["source"].path):
        today = local_days.get_last_partition_key()
        echo(f"[dimensions] loading the source database for {today}")
        began = time.monotonic()
        loaded = run(source_dimensions, partition_key=today, raise_on_error=False)
        report.seconds["source_dimensions"] = time.monotonic() - began
        if not loaded.success:
            # Readings do not depend on the source: ingestion and usage go on, what needs the dimensions waits.
            report.source_error = _source_failure(loaded, resources["source"].path)
            echo(f"warning: {report.source_error}; ingestion and usage go on without it")

    began = time.monotonic()
    done = 0
    for batch in plan_batches(hours, with_files, batch_hours):
        quiet = "" if batch[0] in with_files else " (no files)"
        echo(f"{_progress('ingest', done, len(hours), began)}; now ingestion hours {batch[0]} .. {batch[-1]}{quiet}")
        done += len(batch)
        run(raw_readings, **run_partitions(batch[0], batch[-1]))
    report.seconds["raw_readings"] = time.monotonic() - began

    waiting = _needs(source_dimensions) if report.source_error else set()
    waited: dict[str, list[str]] = {}
    # Level by level, so each level's staleness is read after the runs it depends on committed.
    for level in _refreshed_assets():
        for step in stale_runs(instance, level):
            first, last = step.partitions.start, step.partitions.end
            for asset in step.assets:
                if asset.node_def.name in waiting:
                    waited.setdefault(asset.node_def.name, []).append(f"{first} .. {last}")
            step = replace(step, assets=tuple(asset for asset in step.assets if asset.node_def.name not in waiting))
            if not step.assets:
                continue
            echo(f"[{step.label}] partitions {first} .. {last}")
            began = time.monotonic()
            run(*step.assets, **run_partitions(first, last))
            report.seconds[step.label] = report.seconds.get(step.label, 0.0) + time.monotonic() - began
            for asset in step.assets:
                keys = asset.partitions_def.get_partition_keys_in_range(step.partitions)
                report.partitions.setdefault(asset.node_def.name, []).extend(keys)
    if waited:
        echo(
            "[waiting] "
            + ", ".join(f"{name} ({', '.join(spans)})" for name, spans in waited.items())
            + ": they need the dimensions, which did not load; run the same command once the source database is fixed"
        )
    echo(
        f"processed {len(hours)} ingestion hours ({hour_key(start)} .. {hours[-1] if hours else '-'}): "
        + ", ".join(f"{len(keys)} partitions of {name}" for name, keys in report.partitions.items())
        + f"; {len(report.run_ids)} runs"
    )
    return report


def recover(instance: dg.DagsterInstance, warehouse: Warehouse, echo: Callable[[str], None]) -> dict[str, list[str]]:
    """Undo what an interrupted earlier run left behind; asset name -> the stale partitions found.

    Deletes the data files of writes that never committed, announces table partitions whose
    change no event recorded, and reports the partitions whose inputs are newer than they are
    (``process`` refreshes them with the rest). Everything here is read from the tables and the
    instance, so it finds the damage whichever process, run or sensor caused it.
    """
    for spec in ALL_TABLES:
        uri = warehouse.uri(spec)
        if log_exists(uri, warehouse.storage):
            deleted = sweep_abandoned_writes(warehouse.open(spec))
            if deleted:
                echo(f"[recovery] {spec.name}: deleted {deleted} data file(s) of a write that never committed")
    for name, keys in announce_unrecorded(instance, warehouse).items():
        echo(f"[recovery] {name}: {len(keys)} partition(s) changed by a run that stopped before saying so, announced")
    stale = stale_now(instance)
    for name, keys in stale.items():
        echo(f"[recovery] {name}: {len(keys)} partition(s) left stale by an earlier run, refreshed below")
    return stale
