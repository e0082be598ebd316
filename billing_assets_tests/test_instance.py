"""The project's instance configuration: ``dagster.yaml`` at the top level, copied into a new DAGSTER_HOME."""

from pathlib import Path

import dagster as dg

from billing_assets.instance import INSTANCE_CONFIG, PROJECT_ROOT, ensure_dagster_home


def test_the_instance_configuration_is_the_top_level_dagster_yaml() -> None:
    assert INSTANCE_CONFIG == PROJECT_ROOT / "dagster.yaml"
    assert INSTANCE_CONFIG.is_file()
    assert not (PROJECT_ROOT / "config").exists()


def test_a_new_dagster_home_gets_it_and_an_existing_one_keeps_its_own(tmp_path: Path, monkeypatch) -> None:
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("DAGSTER_HOME", str(fresh))
    assert ensure_dagster_home() == str(fresh)
    assert (fresh / "dagster.yaml").read_text() == INSTANCE_CONFIG.read_text()
    # The instance `process` and the UI open reads it: runs' console log at INFO, two runs at a time.
    with dg.DagsterInstance.from_config(str(fresh)) as instance:
        assert instance.get_settings("python_logs")["python_log_level"] == "INFO"
        assert instance.get_settings("concurrency")["runs"]["max_concurrent_runs"] == 2

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(existing))
    ensure_dagster_home()
    assert (existing / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
