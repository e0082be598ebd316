"""Tables written by one asset and announced as another's materialisations: keep the instance told.

``raw_readings`` writes ``deduplicated_raw`` and a source load writes ``agreement_days``; each
logs a materialisation of the partitions it changed, with the digest of their data files, after
the commit. A process killed between the commit and those events leaves partitions the
instance does not know changed, and nothing downstream would ever recompute them. Comparing
each partition's files with the digest its latest materialisation recorded finds exactly
those partitions, whichever run changed them, and a runless materialisation announces them.
"""

from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from billing_assets.partitions import hour_range, recording_hours
from billing_assets.partitions import recording_partition_key as recording_key_of
from billing_assets.staleness import latest_ids
from billing_assets.tables.delta_io import PinnedTable, partition_digests
from billing_assets.tables.log_check import log_exists
from billing_assets.tables.schemas import AGREEMENT_DAYS, DEDUPLICATED_RAW, TableSpec
from billing_assets.tables.warehouse import Warehouse

#: Metadata of each announced partition: its data files' digest.
FILES_DIGEST = "files_digest"
#: Storage ids fetched per query (SQLite's limit on bound parameters is far above it).
_PAGE = 500


@dataclass(frozen=True)
class Announced:
    """A table announced as an asset's partitions, and how its partition values and keys convert."""

    spec: TableSpec
    #: Table partition value -> Dagster partition key.
    key_of: Callable[[str], str]
    #: Dagster partition key -> table partition value.
    value_of: Callable[[str], str]

    @property
    def asset_key(self) -> dg.AssetKey:
        """The asset whose materialisations announce the table's partitions."""
        return dg.AssetKey(self.spec.name)

    def metadata(self, value: str, digest: str) -> dict[str, str]:
        """What an announcement of partition ``value`` records."""
        return {self.spec.partition_by: value, FILES_DIGEST: digest}


DEDUPLICATED = Announced(
    DEDUPLICATED_RAW, recording_key_of, lambda key: hour_range(recording_hours.time_window_for_partition_key(key))[0]
)
AGREEMENT_COVERAGE = Announced(AGREEMENT_DAYS, lambda value: value, lambda key: key)
ANNOUNCED = (DEDUPLICATED, AGREEMENT_COVERAGE)


def recorded_digests(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: set[str] | None = None
) -> dict[str, str | None]:
    """Partition key -> the files digest its latest materialisation recorded (None: it recorded none).

    Only materialised partitions appear; ``partitions`` limits the look-up to those keys.
    """
    latest = latest_ids(instance, key, partitions)
    by_id = {storage_id: partition for partition, storage_id in latest.items()}
    ids = sorted(by_id)
    found: dict[str, str | None] = dict.fromkeys(latest)
    for at in range(0, len(ids), _PAGE):
        page = ids[at : at + _PAGE]
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, storage_ids=page), limit=len(page)
        ).records
        for record in records:
            digest = record.asset_materialization.metadata.get(FILES_DIGEST)
            found[by_id[record.storage_id]] = None if digest is None else digest.value
    return found


def _values(table: PinnedTable) -> list[str]:
    """The partition values the table holds files for, as strings."""
    column = f"partition.{table.spec.partition_by}"
    actions = pa.table(table.delta.get_add_actions(flatten=True))
    if column not in actions.column_names or actions.num_rows == 0:
        return []
    return sorted(set(pc.cast(actions[column], pa.string()).to_pylist()))


def unannounced(instance: dg.DagsterInstance, table: PinnedTable, announced: Announced) -> dict[str, str]:
    """Table partition value -> digest, for the partitions whose files differ from what the instance recorded."""
    recorded = recorded_digests(instance, announced.asset_key)
    with_files = set(_values(table))
    values = with_files | {announced.value_of(key) for key in recorded}
    out = {}
    for value, digest in partition_digests(table, sorted(values)).items():
        key = announced.key_of(value)
        # Never announced and without files: that partition simply has no data yet.
        if (recorded[key] != digest) if key in recorded else (value in with_files):
            out[value] = digest
    return out


def announce_unrecorded(instance: dg.DagsterInstance, warehouse: Warehouse) -> dict[str, list[str]]:
    """Announce every partition of the announced tables whose files the instance has not recorded; asset -> keys."""
    out: dict[str, list[str]] = {}
    for announced in ANNOUNCED:
        if not log_exists(warehouse.uri(announced.spec), warehouse.storage):
            continue  # no table, nothing unannounced; opening it would create it empty
        table = warehouse.open(announced.spec)
        for value, digest in sorted(unannounced(instance, table, announced).items()):
            key = announced.key_of(value)
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=announced.asset_key,
                    partition=key,
                    description="Its table partition changed without being announced (a run stopped after its commit).",
                    metadata=announced.metadata(value, digest),
                )
            )
            out.setdefault(announced.spec.name, []).append(key)
    return out
