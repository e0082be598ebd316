"""Named automation conditions.

Late readings change recording hours up to 7 days + 5 minutes old, and backfills or
reprocessing change hours of any age. ``eager()`` looks only at the latest time window and
would silently ignore them, so the usage assets react to *which* upstream partitions
changed, with no time window at all: the raw run records exactly the recording hours it
changed, and only those (and the months holding them) are requested.

``eager()``'s "no dependency missing" clause is dropped on purpose: an hour in which no
meter reported is a legitimate gap, and must not block the month's running total forever.
"""

import dagster as dg

from billing_assets.partitions import MAX_FILLED_GAP, filled_gaps
from billing_assets.settings import sensors_start_running

UPSTREAM_CHANGED = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("upstream partition changed (late data and backfills included)")


class SpanOf(dg.AutomationCondition):
    """True for the partitions its operand is true for, and every partition in gaps up to ``MAX_FILLED_GAP``.

    A backfill makes one run per contiguous range, so two late readings three hours apart
    would be two runs, each paying a Spark start; recomputing the hours between is idempotent
    and costs far less. Gaps longer than a late-data window stay gaps: a re-processing of
    January and December is not a year-long run.
    """

    def __init__(self, operand: dg.AutomationCondition) -> None:
        self.operand = operand

    @property
    def children(self) -> list[dg.AutomationCondition]:
        """The wrapped condition."""
        return [self.operand]

    @property
    def name(self) -> str:
        """Name shown in the UI's evaluation tree."""
        return "span_of"

    def get_label(self) -> str:
        """The label the UI and the asset-graph snapshot show."""
        return "upstream partition changed, gaps up to a late-data window filled"

    @property
    def description(self) -> str:
        """What the UI shows for this node."""
        return f"the operand's partitions, gaps up to {MAX_FILLED_GAP} between them filled"

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """Fill the short gaps between the operand's true partitions."""
        child = await context.for_child_condition(
            child_condition=self.operand, child_indices=[0], candidate_subset=context.candidate_subset
        ).evaluate_async()
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


class ChangedWhereData(dg.AutomationCondition):
    """``UPSTREAM_CHANGED``, except that a change of ``gated`` counts only where ``data`` has been materialised.

    Gold joins agreement coverage only to readings. A source load changes the coverage of
    every day since the start; gold for a day without readings has nothing to compute, and
    requesting it anyway would cost a materialisation event per day and table (about 15 ms
    each in Dagster's storage: 25 s for a year of days). A day whose readings arrive later is
    requested by the readings' own change.
    """

    def __init__(self, gated: str, data: str) -> None:
        self.gated, self.data = dg.AssetKey(gated), dg.AssetKey(data)
        updated = dg.AutomationCondition.any_deps_updated()
        holds_data = dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
            dg.AssetSelection.assets(self.data)
        )
        gated_only = dg.AssetSelection.assets(self.gated)
        self.operand = (
            (updated.ignore(gated_only) | (updated.allow(gated_only) & holds_data)).since_last_handled()
            & ~dg.AutomationCondition.any_deps_in_progress()
            & ~dg.AutomationCondition.in_progress()
        )

    @property
    def children(self) -> list[dg.AutomationCondition]:
        """The condition it stands for."""
        return [self.operand]

    @property
    def name(self) -> str:
        """Name shown in the UI's evaluation tree."""
        return "changed_where_data"

    def get_label(self) -> str:
        """The label the UI and the asset-graph snapshot show."""
        gated, data = self.gated.to_user_string(), self.data.to_user_string()
        return f"upstream partition changed ({gated} only where {data} has data)"

    @property
    def description(self) -> str:
        """What the UI shows for this node."""
        return self.get_label()

    async def evaluate(self, context: dg.AutomationContext) -> dg.AutomationResult:
        """The operand's partitions, unchanged."""
        child = await context.for_child_condition(
            child_condition=self.operand, child_indices=[0], candidate_subset=context.candidate_subset
        ).evaluate_async()
        return dg.AutomationResult(context, child.true_subset, child_results=[child])


#: The readings-based gold tables: readings changed, or coverage changed on a day with readings.
READINGS_OR_THEIR_COVERAGE_CHANGED = ChangedWhereData(gated="agreement_days", data="deduplicated_raw")

#: hourly_usage: the recording hours that changed, as one range per tick (see ``SpanOf``).
UPSTREAM_CHANGED_SPAN = SpanOf(UPSTREAM_CHANGED)

#: Today's dimension partition: loaded as soon as it exists (the source refreshes at local
#: midnight), and on first start-up; not retried in a loop after a failed load.
DAILY_SOURCE_LOAD = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.execution_failed()
).with_label("today's source snapshot missing")

#: Seconds between ticks of both sensors. Late data waits for three ticks (landing, then
#: hourly_usage and gold, then cumulative_usage), so the interval is much of the latency. A tick
#: is one listing of the landing zone, or one evaluation of the conditions (about 0.02 s per
#: asset on the sample's instance); a landing zone of many thousands of S3 folders lists slower.
SENSOR_INTERVAL_SECONDS = 10

#: Read when the code location loads; a sensor started or stopped in the UI keeps that state.
DEFAULT_SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if sensors_start_running() else dg.DefaultSensorStatus.STOPPED

#: Evaluates the conditions above. It emits backfills, so many requested partitions of a
#: Spark asset become one run per contiguous range (BackfillPolicy.single_run) rather than
#: one run, and one JVM start, per partition. ``SpanOf`` is Python, not one of Dagster's
#: serialisable conditions, so the sensor is evaluated in the code server.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "usage_automation",
    target=dg.AssetSelection.all(),
    default_status=DEFAULT_SENSOR_STATUS,
    emit_backfills=True,
    use_user_code_server=True,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
)
