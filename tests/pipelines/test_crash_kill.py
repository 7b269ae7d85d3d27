"""`heatsync run` killed with SIGKILL at fixed moments, then run to the end: every task once, and
the CRM's fields and tasks as an uninterrupted run leaves them (real processes, loopback HTTP).

The moments are found by watching the sandbox's request counters, not by sleeping: once the run
begins writing, each request is slowed to KILL_LATENCY_MS, so a kill sent when a request arrives
lands while the sandbox is still applying it: the CRM has the write, the store never hears of
it. Per CRM: the first run dies at its first field update, the second at its first task create,
the third finishes. Before the fix in `pipelines.steps.score`, the third run took the hot values
the first run had written as an earlier day's, and those contacts never got a call-now task.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from benchmarks.crash_trials import CRMS, Crm, Fields, Server, start_run
from pipelines.cli import main
from pipelines.run.asof import local_today
from pipelines.steps import WRITE_CHUNK
from pipelines.store import PortalStore

CONTACTS = 120
SEED = 23
KILL_LATENCY_MS = 150


def _reference(
    crm: Crm, state: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Fields, set[tuple[str, str]]]:
    """The fields and tasks an uninterrupted `heatsync run` leaves (run in this process)."""
    with crm.serve(state, 0) as srv, monkeypatch.context() as m:
        m.chdir(tmp_path)
        for name in list(os.environ):
            if name.startswith(("HUBSPOT_", "AMOCRM_")) or name == "HEATSYNC_CRM":
                m.delenv(name)
        env = {
            **crm.env(srv),
            "HEATSYNC_HOME": str(tmp_path / "reference"),
            "DAGSTER_HOME": str(tmp_path / "reference-dagster"),
        }
        for name, value in env.items():
            m.setenv(name, value)
        assert main(["run"]) == 0
        tasks = crm.tasks(srv)
        assert tasks and max(tasks.values()) == 1
        return crm.fields(srv), set(tasks)


def _kill_at(crm: Crm, srv: Server, work: Path, route: str, limit_s: float = 90) -> None:
    """Start `heatsync run` and SIGKILL it when its first `route` request reaches the sandbox;
    from the run's first write on, every request takes KILL_LATENCY_MS."""
    srv.set_faults(latency_ms=0)
    srv.reset_stats()
    proc = start_run(crm, srv, work)
    deadline = time.monotonic() + limit_s
    try:
        while not srv.stats()["by_route"].get(route):
            assert proc.poll() is None, f"the run ended before {route}"
            assert time.monotonic() < deadline, f"no {route} within {limit_s} s"
            if srv.stats()["writes"]:
                srv.set_faults(latency_ms=KILL_LATENCY_MS)
            time.sleep(0.002)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    time.sleep(KILL_LATENCY_MS / 1000 + 0.3)  # the sandbox applies the request it was given


@pytest.mark.parametrize("name", ["hubspot", "amocrm"])
def test_killed_in_the_write_back_and_in_the_tasks_the_next_run_converges(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = CRMS[name]
    state = crm.generate(CONTACTS, SEED)
    fields, tasks = _reference(crm, state, tmp_path, monkeypatch)
    assert any("call_now" in key for _, key in tasks)
    work = tmp_path / "killed"
    work.mkdir()
    store = PortalStore(work / "home", "default")
    with crm.serve(state, 0) as srv:
        _kill_at(crm, srv, work, crm.update_route)
        assert any(crm.fields(srv).values())  # the first batch reached the CRM
        assert store.written().empty  # and the store never heard of it
        assert not crm.tasks(srv)

        _kill_at(crm, srv, work, crm.create_route)
        made = crm.tasks(srv)
        assert made and max(made.values()) == 1  # the first task batch reached the CRM
        ledger = store.ledger()
        assert (ledger["status"] == "pending").sum() >= len(made)  # never marked created

        srv.set_faults(latency_ms=0)
        again = start_run(crm, srv, work)
        assert again.wait(120) == 0, (work / "run.log").read_text()[-3000:]
        after = crm.tasks(srv)
        assert max(after.values()) == 1, [k for k, n in after.items() if n > 1]
        assert set(after) == tasks
        assert crm.fields(srv) == fields
        ledger = store.ledger()
        assert set(ledger["status"]) == {"created"}
        assert len(ledger) == len(tasks) and not ledger["task_key"].duplicated().any()
        day = local_today(crm.time_zone(srv), pd.Timestamp.now(tz="UTC"))
        scores = store.scores(day)
        assert scores is not None and len(scores) > 0


def test_sigterm_in_a_long_write_back_stops_between_chunks(tmp_path: Path) -> None:
    """More contacts than one chunk of the write-back: SIGTERM at the first update request stops
    the run after that chunk, recorded; the next run writes the rest and creates the tasks."""
    crm = CRMS["hubspot"]
    contacts = WRITE_CHUNK + 200
    with crm.serve(crm.generate(contacts, SEED), 0) as srv:
        proc = start_run(crm, srv, tmp_path)
        while not srv.stats()["by_route"].get(crm.update_route):
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            if srv.stats()["writes"]:
                srv.set_faults(latency_ms=KILL_LATENCY_MS)
            time.sleep(0.002)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
        took = time.monotonic() - sent
        log = (tmp_path / "run.log").read_text()
        chunk_batches = WRITE_CHUNK // 100  # HubSpot updates 100 contacts a request
        assert srv.stats()["by_route"][crm.update_route] == chunk_batches  # not one more
        said = re.search(
            rf"heatsync run: stopped by SIGTERM during the field write-back \({WRITE_CHUNK} of "
            r"(\d+) contacts written\); the rest of the fields and the tasks — the next run "
            "writes and creates them",
            log,
        )
        assert said, log[-3000:]
        total = int(said.group(1))
        assert total > WRITE_CHUNK
        assert "Traceback" not in log
        assert took < 12 + chunk_batches * KILL_LATENCY_MS / 1000
        store = PortalStore(tmp_path / "home", "default")
        assert store.written()["contact_id"].nunique() == WRITE_CHUNK  # the chunk is recorded
        assert not crm.tasks(srv)

        srv.set_faults(latency_ms=0)
        srv.reset_stats()
        again = start_run(crm, srv, tmp_path)
        assert again.wait(120) == 0, (tmp_path / "run.log").read_text()[-3000:]
        left = total - WRITE_CHUNK
        assert srv.stats()["by_route"][crm.update_route] == -(-left // 100)
        assert crm.tasks(srv) and max(crm.tasks(srv).values()) == 1
        assert sum(1 for f in crm.fields(srv).values() if f.get("heatsync_temperature")) == total
