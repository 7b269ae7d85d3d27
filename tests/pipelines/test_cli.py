"""`heatsync run` against a HubSpot-compatible server named only by environment variables."""

from __future__ import annotations

import gc
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import requests

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
    # Every live contact is new to heatsync, so each would get its fields, shown before → after.
    updated = re.search(r"would update (\d+) contacts", out)
    assert updated and int(updated.group(1)) > 200
    assert re.search(r"contact \d+: temperature – → (cold|warm|hot)", out)
    planned = re.search(r"would create (\d+) tasks", out)
    assert planned and int(planned.group(1)) > 0
    assert server.stats()["writes"] == 0
    # Nothing is kept locally: no store, no binding, no scores.
    home = tmp_path / "home"
    assert not (home / "accounts").exists() and not (home / "accounts.json").exists()
    assert PortalStore(home, "default").scored_days() == []

    # The real run does what the dry run announced.
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    created = re.search(r"tasks +(\d+) created", out)
    assert created and created.group(1) == planned.group(1)


def test_dry_run_on_a_lost_store_asks_the_crm_which_tasks_exist(
    server: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["run"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "another-home"))
    server.reset_stats()
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would update 0 contacts" in out
    assert "would create 0 tasks" in out
    assert server.stats()["writes"] == 0


def test_dry_run_says_a_value_would_be_emptied(
    server: SandboxServer,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert main(["run"]) == 0
    capsys.readouterr()
    # a person typed a segment into the field of a contact heatsync gives none: it is cleared
    store = PortalStore(Path(os.environ["HEATSYNC_HOME"]), "default")
    scores = store.scores(store.scored_days()[-1])
    assert scores is not None
    contact = scores.loc[scores["segment"].isna(), "contact_id"].iloc[0]
    answer = requests.patch(
        f"{server.base_url}/crm/v3/objects/contacts/{contact}",
        json={"properties": {"heatsync_segment": "key"}},
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    # read in full (an incremental extract would wait out the search index's lag)
    monkeypatch.setenv("HEATSYNC_HOME", str(tmp_path / "another-home"))
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"contact {contact}: segment key → (emptied)" in out


def test_a_wrong_token_is_one_line_no_retry_no_summary(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-eu1-" + "0" * 8 + "-not-this-portal")
    server.reset_stats()
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no summary of a run that did not happen
    lines = captured.err.strip().splitlines()
    assert len(lines) <= 2, captured.err
    assert "HubSpot refused the access token (401" in lines[0]
    assert "check HUBSPOT_ACCESS_TOKEN" in lines[0]
    assert "Traceback" not in captured.err and "not-this-portal" not in captured.err
    assert server.stats()["requests"] == 1


def test_a_wrong_token_once_the_portal_is_known_fails_without_retries(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["run"]) == 0  # the store now knows the portal's time zone
    capsys.readouterr()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-eu1-" + "0" * 8 + "-not-this-portal")
    server.reset_stats()
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert "temperature" not in captured.out and "extract" not in captured.out
    assert "HubSpot refused the access token (401" in captured.err
    assert len(captured.err.strip().splitlines()) <= 2, captured.err
    assert server.stats()["requests"] == 1  # one attempt: neither the client nor Dagster retried


def test_an_unreachable_base_url_is_one_line(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{port}")
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"heatsync run: cannot reach http://127.0.0.1:{port}")
    assert "check HUBSPOT_BASE_URL" in captured.err and "Traceback" not in captured.err


def test_check_reports_what_the_credentials_reach(
    server: SandboxServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    portal_id = server.state.account["portalId"]
    assert str(portal_id) in out and "Europe/Riga" in out
    assert f"the first run binds 'default' to hubspot-{portal_id}" in out
    assert out.strip().endswith("ready to run")
    assert server.stats()["writes"] == 0

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-eu1-" + "0" * 8 + "-not-this-portal")
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"FAIL credentials: .*401", out)
    assert "not ready" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"heatsync \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


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
    assert re.search(rf"portal default \(hubspot-\d+\) · {past}", out), out
    assert "fields       skipped (past day" in out
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


def test_a_run_survives_a_dead_instance_left_behind_in_the_process(
    server: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Dagster 1.13 keeps the entered instance's definitions-state storage in a context variable;
    # when that instance is gone but the variable is not reset (seen in CI between two runs in
    # one process), building the definitions outside an instance fails with "Attempted to
    # resolve undefined DagsterInstance weakref". Leave exactly that state behind.
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    from pipelines.cli.common import ensure_dagster_home

    ensure_dagster_home()  # the shipped dagster.yaml, whose instance has such a storage
    gone = dg.DagsterInstance.get()
    storage = gone.defs_state_storage
    assert storage is not None
    left_behind = set_defs_state_storage(storage)
    left_behind.__enter__()
    del gone
    gc.collect()
    try:
        assert main(["run"]) == 0
        assert main(["run"]) == 0
    finally:
        left_behind.__exit__(None, None, None)
    assert re.search(r"tasks +\d+ created", capsys.readouterr().out)
