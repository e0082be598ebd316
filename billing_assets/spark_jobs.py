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
    seconds: float = 0.0

    def __add__(self, other: "SparkJobs") -> "SparkJobs":
        return SparkJobs(self.jobs + other.jobs, self.seconds + other.seconds)


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
    seconds = 0.0
    new = after - (before or set())
    for job_id in new:
        try:
            job = store.job(job_id)
        except Py4JError:
            continue  # dropped from the store (it keeps the newest spark.ui.retainedJobs): counted, not timed
        began, ended = job.submissionTime(), job.completionTime()
        if began.isDefined() and ended.isDefined():
            seconds += (ended.get().getTime() - began.get().getTime()) / 1000
    return SparkJobs(len(new), seconds)
