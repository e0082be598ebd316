"""Peak resident memory of the driver: this Python process and the Spark JVM it started.

In local mode the JVM is a child process, so ``ru_maxrss`` of this process never sees it;
a background thread samples both with psutil and keeps the peak of each named phase.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

import psutil
from pyspark.sql import SparkSession

MIB = 1 << 20


@dataclass
class Peak:
    """Highest resident set sizes seen during one phase, in bytes."""

    python: int = 0
    jvm: int = 0


def driver_jvm(spark: SparkSession) -> psutil.Process | None:
    """The Spark driver JVM of a local session: the process py4j launched (``spark-submit`` execs ``java``)."""
    gateway = getattr(spark.sparkContext, "_gateway", None)
    launched = getattr(gateway, "proc", None)
    if launched is None:
        return None  # a session this process joined through a gateway it did not start
    try:
        return psutil.Process(launched.pid)
    except psutil.NoSuchProcess:
        return None


class Sampler:
    """Calls ``sample`` every ``interval`` seconds in a daemon thread while its ``with`` block runs."""

    def __init__(self, interval: float, name: str | None = None) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        """One sample, on the thread."""
        raise NotImplementedError


class PeakMemory(Sampler):
    """Samples RSS every ``interval`` seconds while running; ``phase(name)`` attributes the peaks."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(interval, "peak-memory")
        self.peaks: dict[str, Peak] = {}
        self.jvm: psutil.Process | None = None
        self._current: Peak | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[Peak]:
        """Attribute samples taken inside the block to ``name`` (one sample on entry and exit too)."""
        peak = self.peaks.setdefault(name, Peak())
        self._current = peak
        self._sample(peak)
        try:
            yield peak
        finally:
            self._sample(peak)
            self._current = None

    def _sample(self, peak: Peak) -> None:
        peak.python = max(peak.python, psutil.Process().memory_info().rss)
        if self.jvm is not None:
            try:
                peak.jvm = max(peak.jvm, self.jvm.memory_info().rss)
            except psutil.NoSuchProcess:
                self.jvm = None

    def sample(self) -> None:
        peak = self._current
        if peak is not None:
            self._sample(peak)
