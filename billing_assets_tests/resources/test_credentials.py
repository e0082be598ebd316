"""S3 credentials from the environment never reach the event log, the run record or what the UI shows."""

import uuid

import dagster as dg
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap

from billing_assets.definitions import ASSETS, defs
from billing_assets.resources.landing import LandingZone
from billing_assets.resources.warehouse import WarehouseResource
from billing_assets_tests.conftest import Pipeline, upload
from billing_assets_tests.defs.scenario import H1, land_scenario

KEY_ID = "AKIABILLINGTEST0001"


@pytest.fixture
def token(monkeypatch) -> str:
    """A fresh session token in the environment (the S3 server here accepts any)."""
    value = f"token-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SESSION_TOKEN", value)
    return value


@pytest.fixture
def secret(monkeypatch, token: str, s3_landing: LandingZone, s3_warehouse: WarehouseResource, tmp_path) -> str:
    """A fresh secret in the environment, landing zone and warehouse on the S3 server (which accepts any key)."""
    value = f"secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", value)
    monkeypatch.setenv("BILLING_LANDING_URI", s3_landing.uri)
    monkeypatch.setenv("BILLING_S3_ENDPOINT_URL", s3_landing.endpoint_url)
    monkeypatch.setenv("BILLING_WAREHOUSE_URI", s3_warehouse.uri)
    monkeypatch.setenv("BILLING_SOURCE_DB", str(tmp_path / "source.db"))
    return value


def repository_snapshot(definitions: dg.Definitions) -> str:
    """What the UI is sent about the code location, resource config included."""
    return dg.serialize_value(RepositorySnap.from_def(definitions.get_repository_def()))


def test_secret_is_in_no_event_run_record_or_ui_snapshot(secret, token, s3_landing, tmp_path, spark) -> None:
    location = defs()
    landing, warehouse = location.resources["landing"], location.resources["warehouse"]
    assert isinstance(landing.secret_access_key, dg.EnvVar)  # resolved per run, never stored
    assert isinstance(warehouse.storage.secret_access_key, dg.EnvVar)
    assert isinstance(landing.session_token, dg.EnvVar)
    assert isinstance(warehouse.storage.token, dg.EnvVar)
    (tmp_path / "local").mkdir()
    local = Pipeline(tmp_path / "local", spark)
    land_scenario(local)
    upload(s3_landing, local.landing)

    (tmp_path / "remote").mkdir()
    pipeline = Pipeline(tmp_path / "remote", spark, landing=landing, warehouse=warehouse)
    result = pipeline.materialize("raw_readings", H1)
    assert pipeline.rows("raw_readings")  # the run read the zone and wrote the warehouse through the resources
    # A run that fails on the store (its bucket is gone) names the problem, not the credentials.
    gone = WarehouseResource(uri="s3://no-such-bucket/x", storage=warehouse.storage, client=warehouse.client)
    [ingestion] = [a for a in ASSETS if dg.AssetKey("raw_readings") in a.keys]
    failed = dg.materialize(
        ASSETS,
        selection=list(ingestion.keys),
        partition_key=H1,
        resources={**pipeline.resources, "warehouse": gone},
        instance=pipeline.instance,
        raise_on_error=False,
    )
    assert not failed.success

    run = pipeline.instance.get_run_by_id(result.run_id)
    failure = [dg.serialize_value(entry) for entry in pipeline.instance.all_logs(failed.run_id)]
    assert any("no-such-bucket" in text for text in failure)  # the error is there, and says where
    exposed = {
        "events": [dg.serialize_value(entry) for entry in pipeline.instance.all_logs(result.run_id)],
        "failed run's events and error": failure,
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
        assert token not in str(text), where
    # The UI names the variables instead, for the landing zone and the warehouse.
    assert exposed["repository snapshot"].count("AWS_SECRET_ACCESS_KEY") >= 2
    assert exposed["repository snapshot"].count("AWS_SESSION_TOKEN") >= 2

    # The scan would see a secret written into the config: the same snapshot with a literal value.
    literal = dict(location.resources)
    literal["landing"] = LandingZone(
        uri=landing.uri, endpoint_url=landing.endpoint_url, access_key_id=KEY_ID, secret_access_key=secret
    )
    assert secret in repository_snapshot(dg.Definitions(assets=location.assets, resources=literal))
