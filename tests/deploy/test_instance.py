"""deploy/dagster.yaml: the production instance on PostgreSQL, and a `heatsync run` recorded
there that a restarted instance still sees."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from deploy.serve import DEPLOY_YAML, sqlalchemy_url
from pipelines.cli import main
from pipelines.cli.common import SHIPPED_DAGSTER_YAML
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state


def _instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home))


@pytest.fixture
def home(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml, pointed at a fresh database."""
    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(DEPLOY_YAML, home / "dagster.yaml")
    monkeypatch.setenv("HEATSYNC_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_the_production_instance_keeps_everything_in_postgres(home: Path) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    with _instance(home) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 8


def test_the_production_limits_are_the_demos() -> None:
    """Per-portal tag limits, the backfill cap, pools and run retries as in the demo's file."""
    production = yaml.safe_load(DEPLOY_YAML.read_text())
    demo = yaml.safe_load(SHIPPED_DAGSTER_YAML.read_text())
    runs: dict[str, Any] = production["concurrency"]["runs"]
    assert runs["tag_concurrency_limits"] == demo["concurrency"]["runs"]["tag_concurrency_limits"]
    assert production["concurrency"]["pools"] == demo["concurrency"]["pools"]
    assert production["run_retries"] == demo["run_retries"]
    assert production["telemetry"] == {"enabled": False}


def test_the_url_names_the_driver_dagster_postgres_brings() -> None:
    assert sqlalchemy_url("postgresql://u:p@h:5/db") == "postgresql+psycopg2://u:p@h:5/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"


@pytest.fixture
def sandbox(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with SandboxServer(generate_state(60, seed=13), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HEATSYNC_PORTALS", "HEATSYNC_CRM", "AMOCRM_BASE_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        yield


@pytest.mark.usefixtures("sandbox")
def test_a_run_is_recorded_in_postgres_and_survives_a_restart(home: Path) -> None:
    assert main(["run"]) == 0
    # ensure_dagster_home kept the production file it found.
    assert (home / "dagster.yaml").read_text() == DEPLOY_YAML.read_text()

    # A new instance object is what a restarted webserver or daemon opens.
    with _instance(home) as instance:
        runs = instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        assert len(runs) == 1
        run = runs[0].dagster_run
        assert run.tags["dagster/partition/portal"] == "default"
        materialized = instance.get_materialized_partitions(dg.AssetKey(["crm", "extract"]))
        assert any(key.endswith("|default") for key in materialized)
