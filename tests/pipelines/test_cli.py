"""`heatsync run` against a HubSpot-compatible server named only by environment variables."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.store import PortalStore
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
    server: SandboxServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing is written" in out
    # Every live contact is new to heatsync, so each would get its fields.
    updated = re.search(r"would update (\d+) contacts", out)
    assert updated and int(updated.group(1)) > 200
    assert re.search(r"would create [1-9]\d* tasks", out)
    assert server.stats()["writes"] == 0
    # Nor does it record scores: the first real run is still the first scored day.
    assert PortalStore(tmp_path / "home", "default").scored_days() == []


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


def test_backfilled_day_writes_nothing_and_todays_run_backtests_it(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    today = pd.Timestamp.now(tz=server.state.account["timeZone"]).date()
    past = (today - pd.Timedelta(days=30)).isoformat()
    assert main(["run", "--day", past]) == 0
    out = capsys.readouterr().out
    assert f"portal default · {past}" in out
    assert "fields       skipped (past partition" in out
    assert server.stats()["writes"] == 0

    assert main(["run"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("backtest"))
    assert f"scored {past}" in line
    assert re.search(r"AUC 0\.\d{3}", line), line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--day", "2999-01-01"], "--day must be from"),
        (["--day", "2026-01-01", "--dry-run"], "--dry-run is for today"),
    ],
)
def test_run_refuses_a_day_it_cannot_run(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["run", *args]) == 2
    assert message in capsys.readouterr().err
    assert server.stats()["requests"] <= 1  # at most the time-zone lookup; nothing scored


def test_run_day_must_be_a_date(server: SandboxServer) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--day", "yesterday"])
