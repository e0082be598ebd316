"""The Spark jobs a stretch of work started and the seconds they ran: the profile ``bench`` prints per asset.

Read from the driver's own status store, so it needs a driver JVM in this process (local mode
or a cluster's driver); a Spark Connect client has none and gets ``None``.
"""

from dataclasses import dataclass

from py4j.protocol import Py4JError
from pyspark import SparkContext


@dataclass(frozen=True)
class SparkJobs:
    """How many Spark jobs ran, and their summed wall time from submission to completion."""

    jobs: int = 0
    #: (seconds, where the job was started: Spark's call site, ``collect at steps/ingest.py:123``).
    timed: tuple[tuple[float, str], ...] = ()

    @property
    def seconds(self) -> float:
        """The summed wall time of the jobs still in the driver's store."""
        return sum(seconds for seconds, _ in self.timed)

    def __add__(self, other: "SparkJobs") -> "SparkJobs":
        return SparkJobs(self.jobs + other.jobs, self.timed + other.timed)

    def slowest(self, count: int) -> list[tuple[float, str]]:
        """The ``count`` longest jobs, longest first."""
        return sorted(self.timed, reverse=True)[:count]


def job_ids() -> set[int] | None:
    """The ids of every job the driver in this process still remembers; ``None`` without one."""
    context = SparkContext._active_spark_context
    if context is None:
        return None
    return set(context.statusTracker().getJobIdsForGroup(None))


def jobs_since(before: set[int] | None) -> SparkJobs | None:
    """The jobs started since ``before`` was taken (``job_ids``), with their seconds; ``None`` without a driver."""
    after = job_ids()
    if after is None:
        return None
    context = SparkContext._active_spark_context
    store = context._jsc.sc().statusStore()
    timed = []
    new = after - (before or set())
    for job_id in new:
        try:
            job = store.job(job_id)
        except Py4JError:
            continue  # dropped from the store (it keeps the newest spark.ui.retainedJobs): counted, not timed
        began, ended = job.submissionTime(), job.completionTime()
        if began.isDefined() and ended.isDefined():
            # "collect at /…/billing_assets/steps/ingest.py:86" -> "collect at steps/ingest.py:86"
            action, _, where = job.name().partition(" at ")
            site = f"{action} at {where.rsplit('/billing_assets/', 1)[-1]}"
            timed.append(((ended.get().getTime() - began.get().getTime()) / 1000, site))
    return SparkJobs(len(new), tuple(timed))
