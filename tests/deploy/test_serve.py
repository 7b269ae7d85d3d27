"""`make serve` for real: deploy/serve.py starts dagster-webserver and dagster-daemon on a fresh
PostgreSQL database and a free port; the daemon's queue keeps one run per portal at a time while
different portals run side by side; SIGINT stops everything it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import dagster as dg
import pytest
import requests
from dagster._core.storage.dagster_run import DagsterRunStatus, RunRecord, RunsFilter

from deploy.serve import ROOT
from tests.deploy.backfill_rig import DAEMONS, LAUNCH_RUN, descendants, until

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _overlap(a: RunRecord, b: RunRecord) -> bool:
    assert a.start_time and a.end_time and b.start_time and b.end_time
    return a.start_time < b.end_time and b.start_time < a.end_time


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_serve_runs_webserver_and_daemon_on_postgres_and_stops_on_sigint(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.deploy.naps\n"
        f"      working_directory: {ROOT}\n      location_name: naps\n"
    )
    home, port = tmp_path / "dagster", _free_port()
    environment = {
        **os.environ,
        "HEATSYNC_POSTGRES_URL": postgres_url,
        "HEATSYNC_HOME": str(tmp_path / "home"),
    }
    command = [sys.executable, "-m", "deploy.serve", "--port", str(port)]
    command += ["--dagster-home", str(home), "--workspace", str(workspace)]
    log = tmp_path / "serve.log"
    # Into a file, not a pipe: nobody reads a pipe while the test waits, and a full one blocks.
    with log.open("wb") as out:
        serve = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=out, stderr=out)
    started: set[int] = set()
    try:
        ui = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{ui}/server_info", timeout=2).ok
            except requests.RequestException:
                return False

        until("answer from the webserver", answers, 60, serve)
        monkeypatch.setenv("HEATSYNC_POSTGRES_URL", postgres_url)
        instance = dg.DagsterInstance.from_config(str(home))
        until(
            "heartbeat of every daemon",
            lambda: DAEMONS <= set(instance.get_daemon_heartbeats()),
            60,
            serve,
        )

        def launch(portal: str) -> str | None:
            params = {
                "selector": {
                    "repositoryLocationName": "naps",
                    "repositoryName": "__repository__",
                    "jobName": "nap_job",
                },
                "executionMetadata": {"tags": [{"key": "heatsync/portal", "value": portal}]},
            }
            body = {"query": LAUNCH_RUN, "variables": {"params": params}}
            answer = requests.post(f"{ui}/graphql", json=body, timeout=30).json()
            result = answer["data"]["launchRun"]
            return result["run"]["runId"] if result["__typename"] == "LaunchRunSuccess" else None

        first = until("first launch", lambda: launch("portal-a"), 60, serve)
        second, other = launch("portal-a"), launch("portal-b")
        assert second and other

        def finished() -> dict[str, RunRecord] | None:
            records = instance.get_run_records(RunsFilter(run_ids=[first, second, other]))
            if {r.dagster_run.status for r in records} == {DagsterRunStatus.SUCCESS}:
                return {r.dagster_run.run_id: r for r in records}
            return None

        runs = until("three successful runs", finished, 90, serve)
        assert not _overlap(runs[first], runs[second]), "two runs of portal-a ran together"
        assert _overlap(runs[other], runs[first]) or _overlap(runs[other], runs[second])
        instance.dispose()

        started = descendants(serve.pid)
        assert len(started) >= 2
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=30) == 0
        left = {pid for pid in started if _alive(pid)}
        assert not left, f"processes left running: {left}"
    finally:
        started |= descendants(serve.pid)
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        for pid in started:  # a failed test leaves nothing running either
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        print(log.read_text(errors="replace")[-4000:])
