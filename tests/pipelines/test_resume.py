"""A run stopped (or crashed) after the field write-back and before the tasks: the next run
creates every task a clean run would have, once (the run layer against the HubSpot sandbox)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from pipelines.run import day as run
from pipelines.run.asof import local_today
from pipelines.store import PortalStore
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state
from scoring import load_config


def _day(server: SandboxServer, home: Path, run_id: str, *, tasks: bool = True) -> None:
    connector = HubSpotConnector(
        HubSpotSettings(access_token=server.token, base_url=server.base_url, portal="p")
    )
    store = PortalStore(home, "p")
    now = pd.Timestamp.now(tz="UTC")
    today = local_today(server.state.account.get("timeZone", "UTC"), now)
    run.extract_day(connector, store, today, now)
    scored = run.score_day(store, today, now, load_config(None), "en")
    run.write_back_day(connector, store, scored.as_of, scored.scores, run_id, "en")
    if tasks:
        run.tasks_day(
            connector, store, scored.as_of, scored.scores, load_config(None), "en", run_id
        )


def _tasks(server: SandboxServer) -> Counter[str]:
    with server.lock:
        return Counter(
            rec.props["heatsync_task_key"].split(":")[2]
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        )


def test_tasks_left_by_a_stopped_run_are_created_by_the_next(tmp_path: Path) -> None:
    state = generate_state(150, seed=17)
    with SandboxServer(state.copy(), SandboxOptions()) as clean:
        _day(clean, tmp_path / "clean", "clean")
        expected = _tasks(clean)
    with SandboxServer(state.copy(), SandboxOptions()) as server:
        _day(server, tmp_path / "home", "stopped", tasks=False)  # stopped before the tasks
        assert not _tasks(server)
        _day(server, tmp_path / "home", "next")
        assert expected["call_now"] > 0
        assert _tasks(server) == expected
