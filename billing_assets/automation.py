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

from billing_assets.settings import sensors_start_running

UPSTREAM_CHANGED = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("upstream partition changed (late data and backfills included)")

#: Today's dimension partition: loaded as soon as it exists (the source refreshes at local
#: midnight), and on first start-up; not retried in a loop after a failed load.
DAILY_SOURCE_LOAD = (
    dg.AutomationCondition.in_latest_time_window()
    & dg.AutomationCondition.missing()
    & ~dg.AutomationCondition.in_progress()
    & ~dg.AutomationCondition.execution_failed()
).with_label("today's source snapshot missing")

#: Read when the code location loads; a sensor started or stopped in the UI keeps that state.
DEFAULT_SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if sensors_start_running() else dg.DefaultSensorStatus.STOPPED

#: Evaluates the conditions above. It emits backfills, so many requested partitions of a
#: Spark asset become one run per contiguous range (BackfillPolicy.single_run) rather than
#: one run, and one JVM start, per partition.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "usage_automation",
    target=dg.AssetSelection.all(),
    default_status=DEFAULT_SENSOR_STATUS,
    emit_backfills=True,
    minimum_interval_seconds=30,
)
