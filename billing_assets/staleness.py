"""Which partitions are stale, read from the Dagster instance rather than remembered by a run.

A partition is stale when one of its inputs was materialised after it was: an upstream
partition mapped to it has a newer materialisation (a larger event storage id) than the
partition's own latest one, or the partition was never materialised while an input was. A
run that failed or was killed leaves its partitions stale, and so does a run that announced a
change but died before anything downstream ran; the next ``process`` and the automation
sensor both find them here, whoever started the work.

Only time-window partitions and mappings by overlapping windows are used by the automated
assets, so the mapping is computed by time arithmetic over whole partition sets at once: a
year of hourly partitions is a few thousand comparisons, not a Dagster mapping call each.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import dagster as dg

MATERIALIZATION = dg.DagsterEventType.ASSET_MATERIALIZATION


@dataclass(frozen=True)
class Gate:
    """Changes of ``gated`` count only for partitions where ``data`` has been materialised."""

    gated: dg.AssetKey
    data: dg.AssetKey


def latest_ids(instance: dg.DagsterInstance, key: dg.AssetKey, partitions: set[str] | None = None) -> dict[str, int]:
    """Partition key -> storage id of its latest materialisation (of ``partitions`` only, if given)."""
    return dict(instance.get_latest_storage_id_by_partition(key, MATERIALIZATION, partitions=partitions))


@lru_cache(maxsize=1 << 18)
def _window(partitions_def: dg.TimeWindowPartitionsDefinition, key: str) -> tuple[float, float]:
    """A key's time window as UTC timestamps; a partition's window never changes, so it is computed once."""
    window = partitions_def.time_window_for_partition_key(key)
    return window.start.timestamp(), window.end.timestamp()


@lru_cache(maxsize=64)
def _all_windows(partitions_def: dg.TimeWindowPartitionsDefinition, last_key: str) -> list[tuple[float, float, str]]:
    """(start, end, key) of every partition up to ``last_key``, sorted (recomputed when a partition is added)."""
    return _windows(partitions_def, partitions_def.get_partition_keys())


@lru_cache(maxsize=64)
def _existing(partitions_def: dg.TimeWindowPartitionsDefinition, last_key: str) -> frozenset[str]:
    """Every partition key up to ``last_key``."""
    return frozenset(key for *_, key in _all_windows(partitions_def, last_key))


def _windows(partitions_def: dg.TimeWindowPartitionsDefinition, keys: Iterable[str]) -> list[tuple[float, float, str]]:
    """(start, end, key) of each key's time window, as UTC timestamps, sorted by start."""
    return sorted((*_window(partitions_def, key), key) for key in keys)


def newest_input(
    upstream_def: dg.TimeWindowPartitionsDefinition,
    upstream_ids: Mapping[str, int],
    downstream_def: dg.TimeWindowPartitionsDefinition,
    downstream_keys: Iterable[str] | None = None,
) -> dict[str, int]:
    """Downstream partition key -> the newest storage id among the upstream partitions overlapping it."""
    if downstream_keys is None:
        downstream = _all_windows(downstream_def, downstream_def.get_last_partition_key())
    else:
        downstream = _windows(downstream_def, downstream_keys)
    starts = [start for start, _, _ in downstream]
    newest: dict[str, int] = {}
    for start, end, key in _windows(upstream_def, upstream_ids):
        storage_id = upstream_ids[key]
        # Downstream windows overlapping [start, end): those starting before end and ending after start.
        first = max(bisect_right(starts, start) - 1, 0)
        last = bisect_left(starts, end)
        for d_start, d_end, d_key in downstream[first:last]:
            if d_start < end and d_end > start and newest.get(d_key, -1) < storage_id:
                newest[d_key] = storage_id
    return newest


def _touched(
    upstream_def: dg.TimeWindowPartitionsDefinition,
    upstream_keys: Iterable[str],
    downstream_def: dg.TimeWindowPartitionsDefinition,
) -> set[str]:
    """Downstream partitions overlapping any of ``upstream_keys``."""
    return set(newest_input(upstream_def, dict.fromkeys(upstream_keys, 0), downstream_def))


def stale_partitions(
    instance: dg.DagsterInstance,
    keys: Sequence[dg.AssetKey],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    inputs: Mapping[dg.AssetKey, dg.TimeWindowPartitionsDefinition],
    gate: Gate | None = None,
    ids: dict[dg.AssetKey, dict[str, int]] | None = None,
) -> set[str]:
    """The partitions of ``keys`` whose ``inputs`` were materialised after them (or never were, while an input was).

    ``keys`` are the specs of one asset (a multi-asset is as old as its oldest spec), ``inputs``
    its dependencies and their partitions. ``gate``: changes of ``gate.gated`` count only where
    ``gate.data`` has data. ``ids`` caches storage ids per asset key across calls.
    """
    cache = {} if ids is None else ids

    def of(key: dg.AssetKey) -> dict[str, int]:
        if key not in cache:
            cache[key] = latest_ids(instance, key)
        return cache[key]

    own_by_key = [of(key) for key in keys]
    own = {partition: min(ids.get(partition, -1) for ids in own_by_key) for partition in set().union(*own_by_key)}
    with_data = None
    if gate is not None and gate.gated in inputs:
        with_data = _touched(inputs[gate.data], of(gate.data), partitions_def)
    stale: set[str] = set()
    for dep, dep_def in inputs.items():
        newest = newest_input(dep_def, of(dep), partitions_def)
        if with_data is not None and dep == gate.gated:
            newest = {key: value for key, value in newest.items() if key in with_data}
        stale.update(key for key, storage_id in newest.items() if storage_id > own.get(key, -1))
    # Partitions that do not exist yet (a day whose window has not opened) are never requested.
    return stale & _existing(partitions_def, partitions_def.get_last_partition_key())
