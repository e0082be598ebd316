"""Named automation conditions.

Late readings change recording hours up to 7 days + 5 minutes old, and backfills or
reprocessing change hours of any age. ``eager()`` looks only at the latest time window and
would silently ignore them, so the usage assets react to *which* upstream partitions
changed, with no time window at all: the raw run records exactly the recording hours it
changed, and only those (and the months holding them) are requested.

``eager()``'s "no dependency missing" clause is dropped on purpose: an hour in which no
meter reported is a legitimate gap, and must not block the month's running total forever.
"""

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg
from dagster_shared.record import copy as record_copy

from billing_assets.instance import fail_abandoned_runs
from billing_assets.partitions import MAX_FILLED_GAP, PARTITION_TAG, filled_gaps, range_tags, runs_over_ranges
from billing_assets.settings import load_settings
from billing_assets.staleness import Gate, stale_partitions

UPSTREAM_CHANGED = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("upstream partition changed (late data and backfills included)")

#: How often partitions left stale by a failed or killed run are requested again. A change is
#: requested at once (``UPSTREAM_CHANGED``); only a request that did not lead to a
#: materialisation waits for this, so a partition that fails every time is retried every few
#: minutes, not every tick.
STALE_RETRY_CRON = "*/5 * * * *"


class PythonCondition(dg.AutomationCondition):
    """A condition written here in Python: its name and label for the UI, its operand (if any) as the child.

    Python conditions are not Dagster's serialisable ones, so the automation sensor evaluates
    them in the code server (``use_user_code_server``).
    """

    NAME = ""
    operand: dg.AutomationCondition | None = None
    #: Changes of one dependency that count only where another has data (see ``ChangedWhereData``).
    gate: Gate | None = None

    def widened(self, partitions_def: dg.PartitionsDefinition, keys: set[str]) -> set[str]:
        """The partitions a run for ``keys`` covers under this condition (``SpanOf`` fills gaps)."""
        return keys

    @property
    def children(self) -> list[dg.AutomationCondition]:
        """The operand, the UI's child node."""
        return [] if self.operand is None else [self.operand]

    @property
    def name(self) -> str:
        """Name shown in the UI's evaluation tree."""
        return self.NAME

    @property
    def description(self) -> str:
        """What the UI shows for this node."""
        return self.get_label()

    async def evaluate_operand(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """The operand's result over this evaluation's candidates."""
        return await context.for_child_condition(
            child_condition=self.operand, child_indices=[0], candidate_subset=context.candidate_subset
        ).evaluate_async()


class SpanOf(PythonCondition):
    """True for the partitions its operand is true for, and every partition in gaps up to ``MAX_FILLED_GAP``.

    A backfill makes one run per contiguous range, so two late readings three hours apart
    would be two runs, each paying a Spark start; recomputing the hours between is idempotent
    and costs far less. Gaps longer than a late-data window stay gaps: a re-processing of
    January and December is not a year-long run.
    """

    NAME = "span_of"

    def __init__(self, operand: dg.AutomationCondition) -> None:
        self.operand = operand

    def get_label(self) -> str:
        """The label the UI and the asset-graph snapshot show."""
        return "upstream partition changed, gaps up to a late-data window filled"

    @property
    def description(self) -> str:
        """What the UI shows for this node."""
        return f"the operand's partitions, gaps up to {MAX_FILLED_GAP} between them filled"

    def widened(self, partitions_def: dg.PartitionsDefinition, keys: set[str]) -> set[str]:
        """``keys`` and the short gaps between them."""
        return keys | filled_gaps(partitions_def, keys) if keys else keys

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """Fill the short gaps between the operand's true partitions."""
        child = await self.evaluate_operand(context)
        true_subset = child.true_subset
        partitions_def = context.partitions_def
        if true_subset.is_empty or not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
            return dg.AutomationResult(context, true_subset, child_results=[child])
        gaps = filled_gaps(partitions_def, true_subset.get_internal_subset_value().get_partition_keys())
        if gaps:
            true_subset = true_subset.compute_union(
                context.candidate_subset.compute_intersection_with_partition_keys(gaps)
            )
        return dg.AutomationResult(context, true_subset, child_results=[child])


class NoRunOf(PythonCondition):
    """True for every partition while no run materialising ``asset`` is in progress, else for none.

    A source load announces ``agreement_days``, and an ingestion ``deduplicated_raw``, one
    partition at a time, hundreds of them over many seconds; a tick in the middle would see some
    and start a run for those, then another for the rest. Waiting for the announcing run to
    finish makes it one run. The price: while ingestion runs back to back (a long backfill of
    ``raw_readings``), the usage assets wait for it to end.
    """

    NAME = "no_run_of"

    def __init__(self, asset: str) -> None:
        self.asset = dg.AssetKey(asset)

    def get_label(self) -> str:
        """The label the UI shows."""
        return f"no run of {self.asset.to_user_string()} in progress"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """The candidates, or nothing while a run of the asset is in progress."""
        view = context.asset_graph_view
        running = await view.compute_run_in_progress_subset(
            key=self.asset, from_subset=view.get_full_subset(key=self.asset)
        )
        return dg.AutomationResult(
            context, context.candidate_subset if running.is_empty else context.get_empty_subset()
        )


class InputsNewer(PythonCondition):
    """True for the partitions an input was materialised after (or that never were, while an input was).

    Read from the instance, not from the sensor's memory of what it requested: a run that
    failed, was killed, or announced a change and died before anything downstream ran leaves
    exactly these partitions behind (``staleness``).
    """

    NAME = "inputs_newer"

    def __init__(self, gate: Gate | None = None) -> None:
        self.gate = gate

    def get_label(self) -> str:
        """The label the UI and the asset-graph snapshot show."""
        return "an input was materialised after this partition"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """The candidates that are stale."""
        candidates = context.candidate_subset
        if candidates.is_empty:
            return dg.AutomationResult(context, candidates)
        graph = context.asset_graph
        inputs = {parent: graph.get(parent).partitions_def for parent in graph.get(context.key).parent_keys}
        gate = self.gate if self.gate is not None and self.gate.gated in inputs else None
        stale = stale_partitions(context.asset_graph_view.instance, [context.key], context.partitions_def, inputs, gate)
        return dg.AutomationResult(context, candidates.compute_intersection_with_partition_keys(stale))


def stale_retry(gate: Gate | None = None) -> dg.AutomationCondition:
    """Partitions left stale by a failed or killed run, requested again at most once per ``STALE_RETRY_CRON``."""
    return (
        dg.AutomationCondition.cron_tick_passed(STALE_RETRY_CRON).since_last_handled()
        & InputsNewer(gate)
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("left stale by a failed or killed run (retried every 5 minutes)")


#: A change upstream, or a partition a failed run left behind.
REFRESH = (UPSTREAM_CHANGED | stale_retry()).with_label("upstream changed, or left stale by a failed run")

#: The source load (``source_dimensions``, which announces ``agreement_days``) has finished.
NO_SOURCE_LOAD_RUNNING = NoRunOf("dim_agreement")
#: No ingestion (``raw_readings``, which announces ``deduplicated_raw``) is running.
NO_INGESTION_RUNNING = NoRunOf("raw_readings")


class ChangedWhereData(PythonCondition):
    """``UPSTREAM_CHANGED``, except that a change of ``gated`` counts only where ``data`` has been materialised.

    Gold joins agreement coverage only to readings. A source load changes the coverage of
    every day since the start; gold for a day without readings has nothing to compute, and
    requesting it anyway would cost a materialisation event per day and table (about 15 ms
    each in Dagster's storage: 25 s for a year of days). A day whose readings arrive later is
    requested by the readings' own change.
    """

    NAME = "changed_where_data"

    def __init__(self, gated: str, data: str) -> None:
        self.gated, self.data = dg.AssetKey(gated), dg.AssetKey(data)
        self.gate = Gate(self.gated, self.data)
        updated = dg.AutomationCondition.any_deps_updated()
        holds_data = dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
            dg.AssetSelection.assets(self.data)
        )
        gated_only = dg.AssetSelection.assets(self.gated)
        self.operand = (
            (
                (updated.ignore(gated_only) | (updated.allow(gated_only) & holds_data)).since_last_handled()
                | stale_retry(self.gate)
            )
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
            & NO_INGESTION_RUNNING
            & NO_SOURCE_LOAD_RUNNING
        )

    def get_label(self) -> str:
        """The label the UI and the asset-graph snapshot show."""
        gated, data = self.gated.to_user_string(), self.data.to_user_string()
        return f"upstream partition changed ({gated} only where {data} has data)"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """The operand's partitions, unchanged."""
        child = await self.evaluate_operand(context)
        return dg.AutomationResult(context, child.true_subset, child_results=[child])


#: The readings-based gold tables: readings changed, or coverage changed on a day with readings.
READINGS_OR_THEIR_COVERAGE_CHANGED = ChangedWhereData(gated="agreement_days", data="deduplicated_raw")

#: active_agreements: coverage changed, once the source load that changed it has finished.
COVERAGE_CHANGED = (REFRESH & NO_SOURCE_LOAD_RUNNING).with_label(
    "upstream partition changed, no source load in progress"
)

#: hourly_usage: the recording hours that changed, as one range per tick (see ``SpanOf``).
UPSTREAM_CHANGED_SPAN = SpanOf(REFRESH & NO_INGESTION_RUNNING)

#: Today's dimension partition: loaded as soon as it exists (the source refreshes at local
#: midnight), and on first start-up; not retried in a loop after a failed load.
DAILY_SOURCE_LOAD = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.execution_failed()
).with_label("today's source snapshot missing")

#: Once a day, after the midnight source load and the readings that arrive before 08:00: a
#: statement's lifecycle dates pass without any upstream change, and too-late readings change no
#: asset a month depends on (they reach only the quarantine of ``raw_readings``, whose UTC
#: ingestion hours Dagster cannot map onto local months).
SETTLEMENT_CRON = "0 10 * * *"


def settlement_due(final_days: int) -> dg.AutomationCondition:
    """A month that may still get a statement run: an input changed, or the daily settlement tick passed.

    Any month whose inputs changed is requested (as ``process`` does: a month first settled
    after its final date gets one final run). The daily tick requests only months within reach
    of their final run: a month's window ends at most ``final_days`` before its final run, and
    the latest window (this month) ends at most a month from now. The asset decides whether a
    run is due; a request that finds none writes nothing.
    """
    reach = timedelta(days=final_days + 62)
    return (
        (
            dg.AutomationCondition.any_deps_updated().since_last_handled()
            | (
                dg.AutomationCondition.cron_tick_passed(SETTLEMENT_CRON)
                & dg.AutomationCondition.in_latest_time_window(reach)
            )
        )
        # A month without its running total has nothing to bill (and the source load that
        # precedes the first readings would otherwise request every month once for nothing).
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("a month still being settled: an input changed, or the daily settlement tick")


SETTLEMENT_DUE = settlement_due(load_settings().statement_final_days)

#: Seconds between ticks of both sensors. Late data waits for three ticks (landing, then
#: hourly_usage and gold, then cumulative_usage), so the interval is much of the latency. A tick
#: is one listing of the landing zone, or one evaluation of the conditions (about 0.02 s per
#: asset on the sample's instance); a landing zone of many thousands of S3 folders lists slower.
SENSOR_INTERVAL_SECONDS = 10

#: Read when the code location loads; a sensor started or stopped in the UI keeps that state.
DEFAULT_SENSOR_STATUS = (
    dg.DefaultSensorStatus.RUNNING if load_settings().sensors_running else dg.DefaultSensorStatus.STOPPED
)


class RangedAutomationSensor(dg.AutomationConditionSensorDefinition):
    """Dagster's automation sensor, launching each asset's requested partitions as one run per contiguous range.

    Dagster launches a multi-partition request either as one run (and one Spark start) per
    partition or as a backfill. The backfill daemon looks at backfills every 30 seconds, a
    constant in Dagster, so a backfill delays the launch and, until it is marked done, every
    asset downstream that waits for nothing upstream to be in progress: late data took two
    extra daemon loops to reach ``cumulative_usage``. One run per range, with Dagster's range
    tags, is what a ``BackfillPolicy.single_run`` backfill would launch, without the wait.
    The conditions, their evaluation history and the cursor are Dagster's own.
    """

    def __init__(self, name: str, **kwargs) -> None:
        super().__init__(name, emit_backfills=False, use_user_code_server=True, **kwargs)

    def with_attributes(self, *, jobs=None, metadata=None) -> "RangedAutomationSensor":
        """A copy with other metadata (Dagster's base class would return its own type)."""
        return RangedAutomationSensor(
            self.name,
            target=self._sensor_target,
            tags=self._tags,
            run_tags=self._run_tags,
            default_status=self.default_status,
            minimum_interval_seconds=self.minimum_interval_seconds,
            description=self.description,
            metadata=metadata if metadata is not None else self._metadata,
        )

    def evaluate_tick(self, context: dg.SensorEvaluationContext):
        """Dagster's evaluation, its per-partition run requests merged into ranges.

        Runs of a headless ``process`` that was killed are marked failed first: until then they
        look in progress, and their partitions would never be requested again.
        """
        fail_abandoned_runs(context.instance)
        data = super().evaluate_tick(context)
        if not data.run_requests:
            return data
        graph = context.repository_def.asset_graph
        # Dagster's own record copy keeps every other field of the tick (cursor, evaluations).
        return record_copy(data, run_requests=ranged_requests(data.run_requests, graph))


#: Queued runs start in priority order: billing usage before gold when run slots are scarce,
#: so a start-up's year of ``active_agreements`` does not delay ``hourly_usage``.
PRIORITY_TAG = "dagster/priority"
FIRST_GROUPS = {"usage"}


def ranged_requests(requests: Sequence[dg.RunRequest], graph) -> list[dg.RunRequest]:
    """One run request per contiguous range of each asset's requested partitions, instead of one per partition.

    Assets that must run together (a multi-asset) stay together; assets of one partitioning
    over the same range share a run, as Dagster's own request for one partition puts them.
    """
    out, wanted, tags = [], {}, {}
    for request in requests:
        if request.partition_key is None or not request.asset_selection:
            out.append(request)
            continue
        # Every request of one tick carries the sensor's same run tags, besides its partition's.
        tags = {k: v for k, v in request.tags.items() if k != PARTITION_TAG}
        for key in request.asset_selection:
            unit = frozenset(graph.get(key).execution_set_asset_keys)
            wanted.setdefault(unit, set()).add(request.partition_key)
    runs = runs_over_ranges((unit, graph.get(next(iter(unit))).partitions_def, keys) for unit, keys in wanted.items())
    for partitions_def, key_range, units in runs:
        assets = set().union(*units)
        first = any(graph.get(key).group_name in FIRST_GROUPS for key in assets)
        partitions = (
            partitions_def.get_tags_for_partition_key(key_range.start)
            if key_range.start == key_range.end
            else range_tags(key_range.start, key_range.end)
        )
        out.append(
            dg.RunRequest(
                asset_selection=sorted(assets, key=lambda key: key.to_user_string()),
                partition_key=key_range.start if key_range.start == key_range.end else None,
                tags={**tags, **partitions, **({PRIORITY_TAG: "1"} if first else {})},
            )
        )
    return sorted(out, key=lambda request: request.tags.get(PRIORITY_TAG) != "1")


#: Evaluates the conditions above in the code server (``SpanOf`` and ``ChangedWhereData`` are
#: Python, not Dagster's serialisable conditions), and launches a run per contiguous range.
automation_sensor = RangedAutomationSensor(
    "usage_automation",
    target=dg.AssetSelection.all(),
    default_status=DEFAULT_SENSOR_STATUS,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
)


def _nodes(condition: dg.AutomationCondition) -> list[dg.AutomationCondition]:
    """``condition`` and every condition below it."""
    return [condition, *(node for child in condition.children for node in _nodes(child))]


def planned_partitions(
    condition: dg.AutomationCondition, partitions_def: dg.PartitionsDefinition, stale: set[str]
) -> set[str]:
    """The partitions one run refreshing ``stale`` covers under ``condition`` (each of its parts widens them)."""
    for node in _nodes(condition):
        if isinstance(node, PythonCondition):
            stale = node.widened(partitions_def, stale)
    return stale


def condition_gate(condition: dg.AutomationCondition) -> Gate | None:
    """The gate ``condition`` applies to a dependency's changes, if any."""
    return next((node.gate for node in _nodes(condition) if isinstance(node, PythonCondition) and node.gate), None)
