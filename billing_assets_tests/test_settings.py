"""``settings.py``: every ``BILLING_*`` variable read there only, into one checked ``Settings`` value."""

import ast
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from billing_assets.domain.settlement import Lifecycle
from billing_assets.settings import MIB, SettingsError, load_settings

PACKAGE = Path(__file__).resolve().parent.parent / "billing_assets"

CUSTOM = {
    "BILLING_LANDING_URI": "s3://landing/zone",
    "BILLING_WAREHOUSE_URI": "/lake",
    "BILLING_SOURCE_DB": "/source.db",
    "BILLING_TIMEZONE": "Asia/Kolkata",
    "BILLING_START_DATE": "2026-03-01",
    "BILLING_SENSORS": "stopped",
    "BILLING_MAX_READING_KWH": "0.5",
    "BILLING_LANDING_PIECE_MIB": "0.25",
    "BILLING_SPARK_MASTER": "sc://127.0.0.1:15002",
    "BILLING_SPARK_LOG_LEVEL": "warn",
    "BILLING_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
    "BILLING_UI_HOST": "192.0.2.1",
    "BILLING_UI_PORT": "3999",
    "BILLING_SPARK_CONNECT": "0",
    "BILLING_SPARK_CONNECT_PORT": "15002",
    "BILLING_STATEMENT_INITIAL_DAYS": "2",
    "BILLING_STATEMENT_FINAL_DAYS": "30",
    "BILLING_STATEMENT_RETENTION_DAYS": "400",
}


def test_the_defaults() -> None:
    settings = load_settings({})
    assert (settings.landing_uri, settings.warehouse_uri, settings.source_db) == (
        "data/landing",
        "data/warehouse",
        "data/source.db",
    )
    assert (settings.timezone, settings.start_date, settings.sensors_running) == (
        "Europe/London",
        date(2026, 1, 1),
        True,
    )
    assert (settings.max_reading_kwh, settings.landing_piece_bytes) == (50_000.0, 64 * MIB)
    assert (settings.spark_master, settings.spark_master_or_local, settings.spark_log_level) == (
        None,
        "local[*]",
        "ERROR",
    )
    assert (settings.s3_endpoint_url, settings.ui_host, settings.ui_port) == (None, "127.0.0.1", 3000)
    assert (settings.spark_connect, settings.spark_connect_port) == (True, None)
    assert (settings.statement_initial_days, settings.statement_final_days) == (1, 60)
    assert settings.statement_retention_days == 425
    assert settings.statement_lifecycle == Lifecycle(timedelta(days=1), timedelta(days=60))
    # Blank is unset.
    assert load_settings({name: "  " for name in CUSTOM}) == settings


def test_every_variable_is_read() -> None:
    settings = load_settings(CUSTOM)
    assert settings.landing_uri == "s3://landing/zone" and settings.source_db == "/source.db"
    assert settings.timezone == "Asia/Kolkata" and settings.start_date == date(2026, 3, 1)
    assert not settings.sensors_running and not settings.spark_connect
    assert settings.max_reading_kwh == 0.5 and settings.landing_piece_bytes == MIB // 4
    assert settings.spark_master_or_local == "sc://127.0.0.1:15002" and settings.spark_log_level == "WARN"
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert (settings.ui_host, settings.ui_port, settings.spark_connect_port) == ("192.0.2.1", 3999, 15002)
    assert (settings.statement_initial_days, settings.statement_final_days) == (2, 30)
    assert settings.statement_retention_days == 400


@pytest.mark.parametrize("environ", [{}, CUSTOM], ids=["defaults", "custom"])
def test_a_child_given_the_settings_environment_reads_the_same_settings(environ: dict[str, str]) -> None:
    settings = load_settings(environ)
    assert load_settings(settings.environment()) == settings


def test_the_start_date_default_can_be_replaced_and_an_explicit_one_wins() -> None:
    assert load_settings({}, start_date_default="2026-02-03").start_date == date(2026, 2, 3)
    explicit = {"BILLING_START_DATE": "2026-03-01"}
    assert load_settings(explicit, start_date_default="2026-02-03").start_date == date(2026, 3, 1)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "BILLING_START_DATE",
            "01/02/2026",
            "BILLING_START_DATE must be an ISO date like 2026-01-01, got '01/02/2026'",
        ),
        ("BILLING_SENSORS", "on", "BILLING_SENSORS must be running or stopped, got 'on'"),
        ("BILLING_MAX_READING_KWH", "0", "BILLING_MAX_READING_KWH must be a positive number of kWh up to 1e15"),
        ("BILLING_MAX_READING_KWH", "nan", "BILLING_MAX_READING_KWH must be a positive number of kWh up to 1e15"),
        ("BILLING_MAX_READING_KWH", "2e15", "BILLING_MAX_READING_KWH must be a positive number of kWh up to 1e15"),
        ("BILLING_LANDING_PIECE_MIB", "2048", "BILLING_LANDING_PIECE_MIB must be a number of MiB from 1/256 to 1024"),
        ("BILLING_LANDING_PIECE_MIB", "lots", "BILLING_LANDING_PIECE_MIB must be a number of MiB from 1/256 to 1024"),
        (
            "BILLING_SPARK_LOG_LEVEL",
            "loud",
            "BILLING_SPARK_LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got 'LOUD'",
        ),
        ("BILLING_UI_PORT", "70000", "BILLING_UI_PORT must be a port number from 1 to 65535, got '70000'"),
        ("BILLING_SPARK_CONNECT_PORT", "x", "BILLING_SPARK_CONNECT_PORT must be a port number from 1 to 65535"),
        ("BILLING_TIMEZONE", "Europe/Lundon", "BILLING_TIMEZONE must be an IANA time zone like Europe/London"),
        ("BILLING_TIMEZONE", "Australia/Lord_Howe", "BILLING_TIMEZONE=Australia/Lord_Howe is not supported"),
        (
            "BILLING_STATEMENT_INITIAL_DAYS",
            "-1",
            "BILLING_STATEMENT_INITIAL_DAYS must be a whole number of days from 0",
        ),
        # The final run may not seal a month before its late readings stop being accepted.
        ("BILLING_STATEMENT_FINAL_DAYS", "7", "BILLING_STATEMENT_FINAL_DAYS must be a whole number of days from 8"),
        (
            "BILLING_STATEMENT_RETENTION_DAYS",
            "59",
            "BILLING_STATEMENT_RETENTION_DAYS must be a whole number of days from 60",
        ),
    ],
)
def test_a_value_the_code_cannot_use_is_refused_naming_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({name: value})


def test_no_module_but_settings_names_a_variable() -> None:
    """A ``BILLING_*`` name as a whole string literal is how code reads (or sets) one: settings.py alone does."""
    found = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "settings.py"
        for _, name in re.findall(r"""(["'])(BILLING_[A-Z0-9_]+)\1""", path.read_text())
    }
    assert found == set()


def test_settings_imports_nothing_above_the_domain() -> None:
    tree = ast.parse((PACKAGE / "settings.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    ours = {module for module in imported if module.startswith("billing_assets")}
    assert ours and all(module.startswith("billing_assets.domain.") for module in ours), ours
