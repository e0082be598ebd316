"""Deployment settings read from the environment.

Everything here, paths included, is read when the code location loads (``build_resources``):
a changed variable takes effect when the code location is reloaded. Credentials are the
exception: they reach the resources as ``dg.EnvVar`` references, resolved per run and never
stored in the definitions or shown in the UI.
"""

import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from billing_assets.domain.timestamps import clock_phase

DEFAULT_LANDING_URI = "data/landing"
DEFAULT_WAREHOUSE_URI = "data/warehouse"
DEFAULT_SOURCE_DB = "data/source.db"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_START_DATE = "2026-01-01"


def env(name: str, default: str) -> str:
    """An environment variable, or the default when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def billing_timezone() -> str:
    """The IANA zone whose calendar months are billing months (``BILLING_TIMEZONE``)."""
    name = env("BILLING_TIMEZONE", DEFAULT_TIMEZONE)
    ZoneInfo(name)  # fail at load time on a misspelt zone, not mid-run
    clock_phase(name)  # and on a zone whose local hours are not all an hour long (UnsupportedTimeZone)
    return name


def start_date() -> date:
    """The first ingestion day (``BILLING_START_DATE``, ISO date, UTC)."""
    raw = env("BILLING_START_DATE", DEFAULT_START_DATE)
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"BILLING_START_DATE must be an ISO date like 2026-01-01, got {raw!r}") from exc


def sensors_start_running() -> bool:
    """Whether the sensors start running in a fresh instance (``BILLING_SENSORS``: ``running`` or ``stopped``)."""
    raw = env("BILLING_SENSORS", "running")
    if raw not in {"running", "stopped"}:
        raise ValueError(f"BILLING_SENSORS must be running or stopped, got {raw!r}")
    return raw == "running"


def max_reading_kwh() -> float:
    """The largest consumption one reading may report (``BILLING_MAX_READING_KWH``, kWh)."""
    from billing_assets.landing.parse import DEFAULT_MAX_READING_KWH

    raw = env("BILLING_MAX_READING_KWH", str(DEFAULT_MAX_READING_KWH))
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    # Above 1e15 a sum of a few thousand readings would leave decimal(38, 9)'s exact range.
    if not 0 < value <= 1e15:
        raise ValueError(f"BILLING_MAX_READING_KWH must be a positive number of kWh up to 1e15, got {raw!r}")
    return value


#: Default size of the pieces a large landing file is read in (``BILLING_LANDING_PIECE_MIB``).
DEFAULT_LANDING_PIECE_MIB = 64


def landing_piece_bytes() -> int:
    """Bytes of a landing file one Spark task reads at most (``BILLING_LANDING_PIECE_MIB``, MiB, default 64)."""
    raw = env("BILLING_LANDING_PIECE_MIB", str(DEFAULT_LANDING_PIECE_MIB))
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    # Below a few KiB a piece would hold less than one reading's line; above 1 GiB one task's
    # share of memory no longer holds a piece's batches.
    if not 1 / 256 <= value <= 1024:
        raise ValueError(f"BILLING_LANDING_PIECE_MIB must be a number of MiB from 1/256 to 1024, got {raw!r}")
    return int(value * (1 << 20))


#: Spark log levels ``BILLING_SPARK_LOG_LEVEL`` accepts (log4j's names).
SPARK_LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")


def spark_log_level() -> str:
    """The level of Spark's own log (``BILLING_SPARK_LOG_LEVEL``, default ERROR)."""
    raw = env("BILLING_SPARK_LOG_LEVEL", "ERROR").upper()
    if raw not in SPARK_LOG_LEVELS:
        raise ValueError(f"BILLING_SPARK_LOG_LEVEL must be one of {', '.join(SPARK_LOG_LEVELS)}, got {raw!r}")
    return raw


#: Holds the log4j2.properties that reads ``BILLING_SPARK_LOG_LEVEL``.
SPARK_CONF_DIR = Path(__file__).with_name("spark_conf")


def spark_log_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that put a Spark JVM's log at ``BILLING_SPARK_LOG_LEVEL`` (a set ``SPARK_CONF_DIR`` wins)."""
    return {
        "SPARK_CONF_DIR": environ.get("SPARK_CONF_DIR") or str(SPARK_CONF_DIR),
        "BILLING_SPARK_LOG_LEVEL": spark_log_level(),  # checked here: log4j ignores a misspelt level
    }
