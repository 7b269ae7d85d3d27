"""`heatsync run` against a HubSpot-compatible server named only by environment variables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SandboxServer]:
    with SandboxServer(generate_state(250, seed=5), SandboxOptions()) as srv:
        monkeypatch.chdir(tmp_path)  # no stray .env is read
        monkeypatch.setenv("HUBSPOT_BASE_URL", srv.base_url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", srv.token)
        for name in ("HUBSPOT_CLIENT_ID", "HUBSPOT_CLIENT_SECRET", "HUBSPOT_REFRESH_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "home"))
        monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
        yield srv


def test_dry_run_prints_changes_and_writes_nothing(
    server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing is written" in out
    # Every live contact is new to heatsync, so each would get its fields.
    updated = re.search(r"would update (\d+) contacts", out)
    assert updated and int(updated.group(1)) > 200
    assert re.search(r"would create [1-9]\d* tasks", out)
    assert server.stats()["writes"] == 0


def test_run_is_recorded_in_dagster_history_and_second_run_writes_nothing(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "temperature  hot" in out
    assert server.stats()["writes"] > 0

    server.reset_stats()
    assert main(["run"]) == 0
    assert server.stats()["writes"] == 0

    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster"))
    runs = instance.get_run_records(dg.RunsFilter(job_name="daily_scoring"))
    assert len(runs) == 2
    assert all(r.dagster_run.is_success for r in runs)
    assert all(r.dagster_run.tags.get("dagster/partition/portal") == "default" for r in runs)


def test_missing_credentials_is_a_clear_error(
    server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN")
    with pytest.raises(SystemExit, match="HUBSPOT_ACCESS_TOKEN"):
        main(["run"])
