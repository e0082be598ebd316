"""Deployment settings: every ``BILLING_*`` environment variable, read here and only here.

``load_settings()`` reads and checks them all into one ``Settings`` value; the rest of the
code takes that value (or one of its fields) as an argument. The code location reads it when
it loads (``build_resources``, the partitions, the sensors' default status), and so does each
run's own process: a changed variable takes effect when the code location is reloaded.
Credentials are not settings: they reach the resources as ``dg.EnvVar`` references, resolved
per run and never stored in the definitions or shown in the UI.
"""

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing_assets.domain.limits import DEFAULT_MAX_READING_KWH, DEFAULT_PIECE_MIB
from billing_assets.domain.settlement import WATERMARK_CLOSES, Lifecycle
from billing_assets.domain.timestamps import UnsupportedTimeZone, clock_phase

DEFAULT_LANDING_URI = "data/landing"
DEFAULT_WAREHOUSE_URI = "data/warehouse"
DEFAULT_SOURCE_DB = "data/source.db"
DEFAULT_TIMEZONE = "Europe/London"
DEFAULT_START_DATE = "2026-01-01"
#: The Spark master when ``BILLING_SPARK_MASTER`` is unset: local mode on every core.
DEFAULT_SPARK_MASTER = "local[*]"
#: Spark log levels ``BILLING_SPARK_LOG_LEVEL`` accepts (log4j's names), and its default.
SPARK_LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")
DEFAULT_SPARK_LOG_LEVEL = "ERROR"
#: Holds the log4j2.properties that reads ``BILLING_SPARK_LOG_LEVEL``.
SPARK_CONF_DIR = Path(__file__).with_name("spark_conf")
MIB = 1 << 20
#: Days after a billing month ends that its initial statement is due: the month's last readings
#: arrive before 08:00 the next day, and the source is loaded at midnight.
DEFAULT_STATEMENT_INITIAL_DAYS = 1
#: Days after a billing month ends that its final statement seals it (docs/settlement.md).
DEFAULT_STATEMENT_FINAL_DAYS = 60
#: Days the input versions a statement read must stay readable, so ``--verify`` can recompute
#: it: its final run plus a year.
DEFAULT_STATEMENT_RETENTION_DAYS = DEFAULT_STATEMENT_FINAL_DAYS + 365

T = TypeVar("T")


class SettingsError(ValueError):
    """A ``BILLING_*`` variable whose value is not one the code can use (the message names it)."""


@dataclass(frozen=True)
class Settings:
    """The deployment, as the ``BILLING_*`` variables describe it (defaults filled in, values checked)."""

    #: Landing zone root, a local path or ``s3://bucket/prefix`` (``BILLING_LANDING_URI``).
    landing_uri: str
    #: Delta warehouse root, a local path or ``s3://bucket/prefix`` (``BILLING_WAREHOUSE_URI``).
    warehouse_uri: str
    #: The SQLite source of agreements, products and meterpoints (``BILLING_SOURCE_DB``).
    source_db: str
    #: The IANA zone whose calendar months are billing months (``BILLING_TIMEZONE``).
    timezone: str
    #: The first ingestion day, UTC (``BILLING_START_DATE``).
    start_date: date
    #: Whether the sensors start running in a fresh instance (``BILLING_SENSORS``: ``running`` or ``stopped``).
    sensors_running: bool
    #: The largest consumption one reading may report, kWh (``BILLING_MAX_READING_KWH``).
    max_reading_kwh: float
    #: Bytes of a landing file one Spark task reads at most (``BILLING_LANDING_PIECE_MIB``, in MiB).
    landing_piece_bytes: int
    #: The Spark master a run uses (``BILLING_SPARK_MASTER``); None: unset, so local mode
    #: (``spark_master_or_local``), and ``python -m billing_assets.launch`` may start a Connect server.
    spark_master: str | None
    #: The level of Spark's own log (``BILLING_SPARK_LOG_LEVEL``).
    spark_log_level: str
    #: Endpoint of an S3-compatible store (``BILLING_S3_ENDPOINT_URL``); None: AWS.
    s3_endpoint_url: str | None
    #: Where ``python -m billing_assets.launch`` serves the UI (``BILLING_UI_HOST``, ``BILLING_UI_PORT``).
    ui_host: str
    ui_port: int
    #: Whether the launcher starts a local Spark Connect server for the UI's runs (``BILLING_SPARK_CONNECT``).
    spark_connect: bool
    #: The port of that server (``BILLING_SPARK_CONNECT_PORT``); None: a free one.
    spark_connect_port: int | None
    #: Days after a month ends that its initial and its final statement are due
    #: (``BILLING_STATEMENT_INITIAL_DAYS``, ``BILLING_STATEMENT_FINAL_DAYS``).
    statement_initial_days: int = DEFAULT_STATEMENT_INITIAL_DAYS
    statement_final_days: int = DEFAULT_STATEMENT_FINAL_DAYS
    #: Days the inputs' Delta versions a statement read must stay readable (log and vacuum
    #: retention of its input tables) for ``--verify`` (``BILLING_STATEMENT_RETENTION_DAYS``).
    statement_retention_days: int = DEFAULT_STATEMENT_RETENTION_DAYS

    @property
    def statement_lifecycle(self) -> Lifecycle:
        """When a billing month's initial and final statements are due."""
        return Lifecycle(timedelta(days=self.statement_initial_days), timedelta(days=self.statement_final_days))

    @property
    def spark_master_or_local(self) -> str:
        """The Spark master runs use: the one given, else local mode."""
        return self.spark_master or DEFAULT_SPARK_MASTER

    def environment(self) -> dict[str, str]:
        """The ``BILLING_*`` variables that describe these settings to a child process (unset ones left out)."""
        variables = {
            "BILLING_LANDING_URI": self.landing_uri,
            "BILLING_WAREHOUSE_URI": self.warehouse_uri,
            "BILLING_SOURCE_DB": self.source_db,
            "BILLING_TIMEZONE": self.timezone,
            "BILLING_START_DATE": self.start_date.isoformat(),
            "BILLING_SENSORS": "running" if self.sensors_running else "stopped",
            "BILLING_MAX_READING_KWH": repr(self.max_reading_kwh),
            "BILLING_LANDING_PIECE_MIB": repr(self.landing_piece_bytes / MIB),
            "BILLING_SPARK_MASTER": self.spark_master,
            "BILLING_SPARK_LOG_LEVEL": self.spark_log_level,
            "BILLING_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "BILLING_UI_HOST": self.ui_host,
            "BILLING_UI_PORT": str(self.ui_port),
            "BILLING_SPARK_CONNECT": "1" if self.spark_connect else "0",
            "BILLING_SPARK_CONNECT_PORT": None if self.spark_connect_port is None else str(self.spark_connect_port),
            "BILLING_STATEMENT_INITIAL_DAYS": str(self.statement_initial_days),
            "BILLING_STATEMENT_FINAL_DAYS": str(self.statement_final_days),
            "BILLING_STATEMENT_RETENTION_DAYS": str(self.statement_retention_days),
        }
        return {name: value for name, value in variables.items() if value is not None}


def load_settings(environ: Mapping[str, str] = os.environ, *, start_date_default: str = DEFAULT_START_DATE) -> Settings:
    """The settings ``environ``'s ``BILLING_*`` variables give; a variable that is unset or blank takes its default.

    Every value is checked here, so a misspelt one fails when the code location (or a command)
    loads, not in the middle of a run (``SettingsError``). ``start_date_default`` replaces the
    start date's default (``python -m billing_assets.launch``: the first day of its sample).
    """
    initial_days, final_days, retention_days = _statement_days(environ)
    return Settings(
        landing_uri=_text(environ, "BILLING_LANDING_URI", DEFAULT_LANDING_URI),
        warehouse_uri=_text(environ, "BILLING_WAREHOUSE_URI", DEFAULT_WAREHOUSE_URI),
        source_db=_text(environ, "BILLING_SOURCE_DB", DEFAULT_SOURCE_DB),
        timezone=_timezone(_text(environ, "BILLING_TIMEZONE", DEFAULT_TIMEZONE)),
        start_date=_start_date(_text(environ, "BILLING_START_DATE", start_date_default)),
        sensors_running=_choice(environ, "BILLING_SENSORS", "running", ("running", "stopped"), "running or stopped")
        == "running",
        # Above 1e15 a sum of a few thousand readings would leave decimal(38, 9)'s exact range.
        max_reading_kwh=_number(
            environ,
            "BILLING_MAX_READING_KWH",
            str(DEFAULT_MAX_READING_KWH),
            float,
            lambda kwh: 0 < kwh <= 1e15,
            "a positive number of kWh up to 1e15",
        ),
        # Below a few KiB a piece would hold less than one reading's line; above 1 GiB one task's
        # share of memory no longer holds a piece's batches.
        landing_piece_bytes=int(
            _number(
                environ,
                "BILLING_LANDING_PIECE_MIB",
                str(DEFAULT_PIECE_MIB),
                float,
                lambda mib: 1 / 256 <= mib <= 1024,
                "a number of MiB from 1/256 to 1024",
            )
            * MIB
        ),
        spark_master=_text(environ, "BILLING_SPARK_MASTER", "") or None,
        spark_log_level=_choice(
            environ,
            "BILLING_SPARK_LOG_LEVEL",
            DEFAULT_SPARK_LOG_LEVEL,
            SPARK_LOG_LEVELS,
            f"one of {', '.join(SPARK_LOG_LEVELS)}",
            upper=True,
        ),
        s3_endpoint_url=_text(environ, "BILLING_S3_ENDPOINT_URL", "") or None,
        ui_host=_text(environ, "BILLING_UI_HOST", "127.0.0.1"),
        ui_port=_port(environ, "BILLING_UI_PORT", "3000"),
        # As scripts/run always had it: anything but 1 gives every run its own Spark.
        spark_connect=_text(environ, "BILLING_SPARK_CONNECT", "1") == "1",
        spark_connect_port=_port(environ, "BILLING_SPARK_CONNECT_PORT", None),
        statement_initial_days=initial_days,
        statement_final_days=final_days,
        statement_retention_days=retention_days,
    )


def _statement_days(environ: Mapping[str, str]) -> tuple[int, int, int]:
    """The statement lifecycle's days: initial, final and retention, each checked against the one before."""
    initial = _number(
        environ,
        "BILLING_STATEMENT_INITIAL_DAYS",
        str(DEFAULT_STATEMENT_INITIAL_DAYS),
        int,
        lambda days: 0 <= days <= 366,
        "a whole number of days from 0 to 366",
    )
    # A final run before the watermark closes would seal a month that accepted readings still change.
    least_final = max(initial + 1, -(-WATERMARK_CLOSES // timedelta(days=1)))
    final = _number(
        environ,
        "BILLING_STATEMENT_FINAL_DAYS",
        str(DEFAULT_STATEMENT_FINAL_DAYS),
        int,
        lambda days: least_final <= days <= 3660,
        f"a whole number of days from {least_final} (after the initial run and the late-data window) to 3660",
    )
    # --verify recomputes a run from the versions it read: they must outlive the month's final run.
    retention = _number(
        environ,
        "BILLING_STATEMENT_RETENTION_DAYS",
        str(max(DEFAULT_STATEMENT_RETENTION_DAYS, final + 365)),
        int,
        lambda days: final <= days <= 36600,
        f"a whole number of days from {final} (BILLING_STATEMENT_FINAL_DAYS) to 36600",
    )
    return initial, final, retention


def spark_log_environment(level: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that put a Spark JVM's log at ``level`` (a ``SPARK_CONF_DIR`` set in ``environ`` wins).

    log4j2.properties reads the level from the JVM's environment; ``level`` is a checked
    ``Settings.spark_log_level`` (log4j ignores a misspelt one).
    """
    return {
        "SPARK_CONF_DIR": environ.get("SPARK_CONF_DIR") or str(SPARK_CONF_DIR),
        "BILLING_SPARK_LOG_LEVEL": level,
    }


def _text(environ: Mapping[str, str], name: str, default: str) -> str:
    """A variable's value, or ``default`` when it is unset or blank."""
    return environ.get(name, "").strip() or default


def _number(
    environ: Mapping[str, str],
    name: str,
    default: str,
    convert: Callable[[str], T],
    accept: Callable[[T], bool],
    expected: str,
) -> T:
    """A numeric variable: ``convert`` must take it and ``accept`` the result, else ``name must be expected``."""
    raw = _text(environ, name, default)
    try:
        value = convert(raw)
    except ValueError:
        value = None
    # A NaN fails every comparison, so ``accept`` refuses it too.
    if value is None or not accept(value):
        raise SettingsError(f"{name} must be {expected}, got {raw!r}")
    return value


def _port(environ: Mapping[str, str], name: str, default: str | None) -> int | None:
    """A TCP port number; None when unset and without a default."""
    if default is None and not _text(environ, name, ""):
        return None
    return _number(environ, name, default or "", int, lambda port: 0 < port < 1 << 16, "a port number from 1 to 65535")


def _choice(
    environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...], expected: str, upper: bool = False
) -> str:
    """A variable that must be one of ``choices`` (compared in upper case when ``upper``)."""
    raw = _text(environ, name, default)
    raw = raw.upper() if upper else raw
    if raw not in choices:
        raise SettingsError(f"{name} must be {expected}, got {raw!r}")
    return raw


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)  # fail at load time on a misspelt zone, not mid-run
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"BILLING_TIMEZONE must be an IANA time zone like Europe/London, got {name!r}") from exc
    try:
        clock_phase(name)  # and on a zone whose local hours are not all an hour long
    except UnsupportedTimeZone as exc:
        raise SettingsError(str(exc)) from exc
    return name


def _start_date(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise SettingsError(f"BILLING_START_DATE must be an ISO date like 2026-01-01, got {raw!r}") from exc
