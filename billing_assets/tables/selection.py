"""Which partitions of a table a write replaces, with strictly validated partition values.

A partition value ends up in a file path (``<column>=<value>/``) and in the Delta log, so it
must be exactly one of the key formats the warehouse uses; anything else (quotes, slashes,
``..``, non-ASCII digits, impossible dates) is refused before it reaches either. Every format
is fixed-width, so string order is time order and a range is a plain string comparison.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa

from billing_assets.domain.keys import (
    DAY_KEY_FORMAT,
    DAY_KEY_PATTERN,
    HOUR_KEY_FORMAT,
    HOUR_KEY_PATTERN,
    MINUTE_KEY_FORMAT,
    MONTH_KEY_FORMAT,
    MONTH_KEY_PATTERN,
    RECORDING_HOUR_KEY_PATTERN,
)


@dataclass(frozen=True)
class KeyFormat:
    """A partition value format: an ASCII pattern and the ``strptime`` format(s) one of which must round-trip."""

    name: str
    pattern: str
    strptime: str
    #: Another ``strptime`` format of the same column (recording hours with minutes).
    alternative: str | None = None

    def check(self, value: object) -> str:
        """``value`` if it is a well-formed key of this format, else a ValueError naming it."""
        if isinstance(value, str) and re.fullmatch(self.pattern, value):
            for fmt in filter(None, (self.strptime, self.alternative)):
                try:
                    if datetime.strptime(value, fmt).strftime(fmt) == value:
                        return value
                except ValueError:
                    pass
        raise ValueError(f"not a valid {self.name} partition value: {value!r}")


HOUR = KeyFormat("hour (YYYY-MM-DD-HH)", HOUR_KEY_PATTERN, HOUR_KEY_FORMAT)
#: The UTC start of a local hour: ``YYYY-MM-DD-HHMM`` only in a zone whose hours start off the
#: UTC hour, and one width throughout a warehouse (the zone is fixed), so string order is time order.
RECORDING_HOUR = KeyFormat(
    "hour (YYYY-MM-DD-HH, or YYYY-MM-DD-HHMM when local hours start off the UTC hour)",
    RECORDING_HOUR_KEY_PATTERN,
    HOUR_KEY_FORMAT,
    MINUTE_KEY_FORMAT,
)
MONTH = KeyFormat("month (YYYY-MM)", MONTH_KEY_PATTERN, MONTH_KEY_FORMAT)
ISO_DATE = KeyFormat("ISO date (YYYY-MM-DD)", DAY_KEY_PATTERN, DAY_KEY_FORMAT)

#: String partition columns and their formats; date-typed columns are always ISO dates.
STRING_KEY_FORMATS = {"ingestion_hour": HOUR, "recording_hour": RECORDING_HOUR, "billing_month": MONTH}


def key_format(column: str, data_type: pa.DataType) -> KeyFormat:
    """The format partition values of ``column`` must have (ValueError for a column we do not know)."""
    if pa.types.is_date32(data_type):
        return ISO_DATE
    if column in STRING_KEY_FORMATS and pa.types.is_string(data_type):
        return STRING_KEY_FORMATS[column]
    raise ValueError(f"no partition value format is defined for column {column!r} of type {data_type}")


@dataclass(frozen=True)
class PartitionSelection:
    """Listed partition values, or the inclusive range ``[first, last]`` of them."""

    values: tuple[str, ...] | None = None
    first: str | None = None
    last: str | None = None

    def __post_init__(self) -> None:
        if (self.values is None) == (self.first is None or self.last is None):
            raise ValueError("a partition selection is either a list of values or a range [first, last]")

    def validated(self, fmt: KeyFormat) -> "PartitionSelection":
        """This selection, after every value or bound was checked against ``fmt``."""
        if self.values is not None:
            if not self.values:
                raise ValueError("a partition selection lists no partitions")
            for value in self.values:
                fmt.check(value)
        else:
            fmt.check(self.first)
            fmt.check(self.last)
            if self.first > self.last:
                raise ValueError(f"empty partition range: {self.first!r} > {self.last!r}")
        return self

    def contains(self, value: str) -> bool:
        """Whether the (validated) partition value ``value`` is selected."""
        if self.values is not None:
            return value in self.values
        return self.first <= value <= self.last

    def filters(self, column: str) -> list[tuple[str, str, object]]:
        """delta-rs partition filters selecting exactly these partitions."""
        if self.values is not None:
            return [(column, "in", list(self.values))]
        return [(column, ">=", self.first), (column, "<=", self.last)]

    def __str__(self) -> str:
        if self.values is not None:
            return f"{len(self.values)} partition(s) {list(self.values)[:5]}"
        return f"partitions [{self.first}, {self.last}]"


def partitions(values: Iterable[str]) -> PartitionSelection:
    """Select exactly the listed partition values."""
    return PartitionSelection(values=tuple(values))


def partition_range(first: str, last: str) -> PartitionSelection:
    """Select every partition value in the inclusive range ``[first, last]``."""
    return PartitionSelection(first=first, last=last)


@dataclass(frozen=True)
class RunWindow:
    """The partitions one run covers, in each key the tables use; derived once from the run's time window.

    ``hours`` are ``recording_hour`` keys (the UTC starts of local hours), ``days`` local ISO dates
    and ``months`` billing months, all in ``timezone`` and all spanning the same instants: a run over local days reads
    exactly the recording hours of those days.
    """

    hours: PartitionSelection
    days: PartitionSelection
    months: PartitionSelection
    timezone: str

    def of(self, column: str, data_type: pa.DataType) -> PartitionSelection:
        """The window's partitions of a table partitioned by ``column`` (hours, days or months, by its format)."""
        fmt = key_format(column, data_type)
        return {HOUR: self.hours, RECORDING_HOUR: self.hours, MONTH: self.months, ISO_DATE: self.days}[fmt]

    @property
    def first_day(self) -> date:
        """The first local day."""
        return date.fromisoformat(self.days.first)

    @property
    def last_day(self) -> date:
        """The last local day."""
        return date.fromisoformat(self.days.last)
