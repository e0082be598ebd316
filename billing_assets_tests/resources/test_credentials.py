"""S3 credentials from the environment never reach the event log, the run record or what the UI shows."""

import uuid

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from billing_assets.definitions import defs
from billing_assets.resources.landing import LandingZone
from billing_assets_tests.conftest import Pipeline, upload
from billing_assets_tests.defs.scenario import H1, land_scenario

KEY_ID = "AKIABILLINGTEST0001"


@pytest.fixture
def secret(monkeypatch, s3_landing: LandingZone, tmp_path) -> str:
    """A fresh secret in the environment, with the landing zone on the S3 server (which accepts any key)."""
    value = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", value)
    monkeypatch.setenv("BILLING_LANDING_URI", s3_landing.uri)
    monkeypatch.setenv("BILLING_S3_ENDPOINT_URL", s3_landing.endpoint_url)
    monkeypatch.setenv("BILLING_WAREHOUSE_URI", str(tmp_path / "warehouse"))
    monkeypatch.setenv("BILLING_SOURCE_DB", str(tmp_path / "source.db"))
    return value


def repository_snapshot(definitions: dg.Definitions) -> str:
    """What the UI is sent about the code location, resource config included."""
    return dg.serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))


def test_secret_is_in_no_event_run_record_or_ui_snapshot(secret, s3_landing, tmp_path, spark) -> None:
    location = defs()
    landing = location.resources["landing"]
    assert isinstance(landing.secret_access_key, dg.EnvVar)  # resolved per run, never stored
    (tmp_path / "local").mkdir()
    local = Pipeline(tmp_path / "local", spark)
    land_scenario(local)
    upload(s3_landing, local.landing)

    (tmp_path / "remote").mkdir()
    pipeline = Pipeline(tmp_path / "remote", spark, landing=landing)
    result = pipeline.materialize("raw_readings", H1)
    assert pipeline.rows("raw_readings")  # the run read the zone through the resource

    run = pipeline.instance.get_run_by_id(result.run_id)
    exposed = {
        "events": [dg.serialize_value(entry) for entry in pipeline.instance.all_logs(result.run_id)],
        "run": dg.serialize_value(run),
        "job snapshot": dg.serialize_value(pipeline.instance.get_job_snapshot(run.job_snapshot_id)),
        "execution plan": dg.serialize_value(
            pipeline.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        ),
        "repository snapshot": repository_snapshot(location),
    }
    assert len(exposed["events"]) > 10
    for where, text in exposed.items():
        assert secret not in str(text), where
    assert "AWS_SECRET_ACCESS_KEY" in exposed["repository snapshot"]  # the UI names the variable instead

    # The scan would see a secret written into the config: the same snapshot with a literal value.
    literal = dict(location.resources)
    literal["landing"] = LandingZone(
        uri=landing.uri, endpoint_url=landing.endpoint_url, access_key_id=KEY_ID, secret_access_key=secret
    )
    assert secret in repository_snapshot(dg.Definitions(assets=location.assets, resources=literal))
