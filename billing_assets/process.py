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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from graphlib import TopologicalSorter

import dagster as dg

from billing_assets.automation import ChangedWhereData, SpanOf
from billing_assets.definitions import ASSETS
from billing_assets.defs.dimensions import source_dimensions
from billing_assets.defs.ingestion import raw_readings
from billing_assets.domain.timestamps import hour_key, hour_keys_between
from billing_assets.instance import fail_abandoned_runs, process_run_tags
from billing_assets.partitions import (
    DEFAULT_BATCH_HOURS,
    filled_gaps,
    ingestion_hours,
    key_ranges,
    local_days,
    run_partitions,
)


@dataclass
class ProcessReport:
    """Runs launched, partitions refreshed per asset, and seconds per step."""

    run_ids: list[str] = field(default_factory=list)
    #: Asset name -> the partition keys this process refreshed (downstream of the ingestion).
    partitions: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


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


def _mapped(dep: dg.AssetDep, upstream: dg.AssetsDefinition, keys: set[str], asset: dg.AssetsDefinition) -> set[str]:
    """The partitions of ``asset`` that ``keys`` of its dependency ``dep`` (owned by ``upstream``) map to."""
    mapping = dep.partition_mapping or dg.TimeWindowPartitionMapping()
    subset = mapping.get_downstream_partitions_for_partitions(
        upstream.partitions_def.subset_with_partition_keys(keys), upstream.partitions_def, asset.partitions_def
    )
    return set(subset.get_partition_keys())


def downstream_runs(
    changed: Mapping[dg.AssetKey, Iterable[str]],
    materialized: Callable[[dg.AssetKey], set[str]] = lambda key: set(),
) -> list[DownstreamRun]:
    """The runs that bring every automated asset downstream of ``changed`` (asset -> partition keys) up to date.

    The partitions of each asset follow from its dependencies' partition mappings (Dagster's
    default, the time-window mapping, where a dependency names none), in dependency order; an
    asset whose condition fills gaps (``SpanOf``) gets them filled here too, and one whose
    condition gates a dependency on data (``ChangedWhereData``) gets that dependency's changes
    only where the data dependency has partitions (``materialized``, or changed here). Assets of
    one partitioning over the same ranges share a run when no run in between feeds them.
    """
    owners = {key: asset for asset in ASSETS for key in asset.keys}
    parents = {
        asset.node_def.name: {owners[dep.asset_key].node_def.name for spec in asset.specs for dep in spec.deps}
        for asset in ASSETS
    }
    by_name = {asset.node_def.name: asset for asset in ASSETS}
    keys: dict[dg.AssetKey, set[str]] = {key: set(values) for key, values in changed.items()}
    runs: list[DownstreamRun] = []
    run_of: dict[str, int] = {}
    for name in TopologicalSorter(parents).static_order():
        asset = by_name[name]
        condition = _automated(asset)
        if condition is None or asset.partitions_def is None:
            continue
        deps = {dep.asset_key: dep for spec in asset.specs for dep in spec.deps}

        wanted: set[str] = set()
        for dep in deps.values():
            upstream = keys.get(dep.asset_key)
            if not upstream:
                continue
            partitions = _mapped(dep, owners[dep.asset_key], upstream, asset)
            if isinstance(condition, ChangedWhereData) and dep.asset_key == condition.gated:
                data = condition.data
                partitions &= _mapped(deps[data], owners[data], materialized(data) | keys.get(data, set()), asset)
            wanted |= partitions
        if not wanted:
            continue
        if isinstance(condition, SpanOf):
            wanted |= filled_gaps(asset.partitions_def, wanted)
        for key in asset.keys:
            keys[key] = wanted
        after = max((run_of[parent] for parent in parents[name] if parent in run_of), default=-1)
        for key_range in key_ranges(asset.partitions_def, wanted):
            shared = next(
                (
                    index
                    for index, run in enumerate(runs)
                    if index >= after
                    and run.partitions == key_range
                    and run.assets[0].partitions_def == asset.partitions_def
                ),
                None,
            )
            if shared is None:
                runs.append(DownstreamRun((asset,), key_range))
                shared = len(runs) - 1
            else:
                runs[shared] = DownstreamRun((*runs[shared].assets, asset), key_range)
            run_of[name] = max(run_of.get(name, -1), shared)
    return runs


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
    changed: dict[dg.AssetKey, set[str]] = {}

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
        # What a run announces for an asset it did not select (deduplicated_raw from raw_readings,
        # agreement_days from a source load) is what changed downstream of it.
        selected = {key for assets in selection for key in assets.keys}
        for event in result.get_asset_materialization_events():
            if event.asset_key not in selected and event.partition:
                changed.setdefault(event.asset_key, set()).add(event.partition)
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
        run(raw_readings, **run_partitions(batch[0], batch[-1]))
    report.seconds["raw_readings"] = time.monotonic() - began

    for step in downstream_runs(changed, instance.get_materialized_partitions):
        first, last = step.partitions.start, step.partitions.end
        echo(f"[{step.label}] partitions {first} .. {last}")
        began = time.monotonic()
        run(*step.assets, **run_partitions(first, last))
        report.seconds[step.label] = report.seconds.get(step.label, 0.0) + time.monotonic() - began
        for asset in step.assets:
            keys = asset.partitions_def.get_partition_keys_in_range(step.partitions)
            report.partitions.setdefault(asset.node_def.name, []).extend(keys)
    echo(
        f"processed {len(hours)} ingestion hours ({hour_key(start)} .. {hours[-1] if hours else '-'}): "
        + ", ".join(f"{len(keys)} partitions of {name}" for name, keys in report.partitions.items())
        + f"; {len(report.run_ids)} runs"
    )
    return report
