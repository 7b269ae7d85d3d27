"""A deployment to backfill, as ops run it: a HubSpot sandbox and an amoCRM sandbox served in
this process, a portals file naming both, and `make serve` (deploy/serve.py: dagster-webserver
and dagster-daemon on PostgreSQL) on a free port; plus the GraphQL calls the UI's backfill
button makes. Used by test_backfill.py and by screenshot_backfill.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import requests
import yaml

from deploy.serve import ROOT, prepare_home
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.render import generate_state as generate_amocrm
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.demo import AMOCRM_PORTAL, CLEARED, HUBSPOT_PORTAL, TOKEN_VARIABLES
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from sandbox.hubspot.state import generate_state as generate_hubspot

T = TypeVar("T")

PORTALS = (HUBSPOT_PORTAL, AMOCRM_PORTAL)
# What a backfill selects. Not the write-back nor the tasks: a past day never materializes them,
# and the backfill daemon counts a partition left unmaterialized as failed (COMPLETED_FAILED).
ASSETS = (("crm", "extract"), ("heatsync", "scores"), ("heatsync", "backtest"))

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""
# What `dagster-daemon run` must run: schedule, sensors, queue, run monitoring, run retries.
DAEMONS = {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR", "MONITORING", "EVENT_LOG_CONSUMER"}

LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status numPartitions }
    ... on PythonError { message }
  }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def past_days(count: int, today: date | None = None) -> list[str]:
    """`count` days ending two days before UTC today: past in every time zone."""
    today = today or datetime.now(UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count + 1, 1, -1)]


def partition_keys(days: list[str], portals: tuple[str, ...] = PORTALS) -> list[str]:
    """The day × portal keys as the UI names them: "2026-12-04|hubspot-sandbox"."""
    return [f"{day}|{portal}" for day in days for portal in portals]


def until(what: str, probe: Callable[[], T | None], timeout: float, proc: Any = None) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None:
            assert proc.poll() is None, f"serve exited ({proc.returncode}) waiting for {what}"
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


def descendants(root: int) -> set[int]:
    """Every live process below `root`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


@dataclass
class Deployment:
    hubspot: SandboxServer
    amocrm: AmoSandboxServer
    home: Path  # HEATSYNC_HOME: the portals' stores
    dagster_home: Path
    ui: str
    env: dict[str, str]
    serve: subprocess.Popen[bytes]

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        body = {"query": query, "variables": variables}
        answer = requests.post(f"{self.ui}/graphql", json=body, timeout=60).json()
        assert "errors" not in answer, answer["errors"]
        data: dict[str, Any] = answer["data"]
        return data

    def launch_backfill(
        self,
        keys: list[str],
        assets: tuple[tuple[str, ...], ...],
        run_config: dict[str, Any] | None = None,
    ) -> str:
        """What the UI's "Launch backfill" button sends for these partitions of these assets."""
        params: dict[str, Any] = {
            "partitionNames": keys,
            "assetSelection": [{"path": list(asset)} for asset in assets],
            "title": "heatsync backfill",
        }
        if run_config is not None:
            params["runConfigData"] = run_config
        result = self.graphql(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return str(result["backfillId"])

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
        assert result["__typename"] == "PartitionBackfill", result
        return str(result["status"])


def _portals_file(path: Path, hubspot: SandboxServer, amocrm: AmoSandboxServer) -> Path:
    portals = [
        {
            "name": HUBSPOT_PORTAL,
            "crm": "hubspot",
            "base_url": hubspot.base_url,
            "credentials": {"access_token": TOKEN_VARIABLES[HUBSPOT_PORTAL]},
        },
        {
            "name": AMOCRM_PORTAL,
            "crm": "amocrm",
            "base_url": amocrm.base_url,
            "credentials": {"access_token": TOKEN_VARIABLES[AMOCRM_PORTAL]},
        },
    ]
    path.write_text(yaml.safe_dump({"portals": portals}, sort_keys=False))
    return path


@contextmanager
def deployment(
    workdir: Path,
    postgres_url: str,
    first_day: str,
    contacts: int = 100,
    hubspot_options: SandboxOptions | None = None,
    amocrm_options: AmoOptions | None = None,
) -> Iterator[Deployment]:
    """Both sandboxes (with these options) and `make serve` on `postgres_url` until the block
    ends; then serve is interrupted and anything it started that outlives it is killed."""
    with ExitStack() as stack:
        hubspot = stack.enter_context(
            SandboxServer(
                generate_hubspot(contacts, seed=13),
                hubspot_options or SandboxOptions(search_lag_s=0.0),
            )
        )
        amocrm = stack.enter_context(
            AmoSandboxServer(
                generate_amocrm(contacts, seed=14), amocrm_options or AmoOptions(), port=0
            )
        )
        env = {
            **os.environ,
            **dict.fromkeys(CLEARED, ""),
            TOKEN_VARIABLES[HUBSPOT_PORTAL]: hubspot.token,
            TOKEN_VARIABLES[AMOCRM_PORTAL]: str(amocrm.long_lived_token),
            "HEATSYNC_PORTALS": str(_portals_file(workdir / "portals.yaml", hubspot, amocrm)),
            "HEATSYNC_HOME": str(workdir / "home"),
            "HEATSYNC_FIRST_DAY": first_day,
            "HEATSYNC_DRY_RUN": "false",
            "HEATSYNC_POSTGRES_URL": postgres_url,
        }
        dagster_home, port = prepare_home(workdir / "dagster"), free_port()
        command = [sys.executable, "-m", "deploy.serve", "--port", str(port)]
        command += ["--dagster-home", str(dagster_home)]
        log = workdir / "serve.log"
        # Into a file, not a pipe: nobody reads a pipe while the test waits.
        with log.open("wb") as out:
            serve = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
        env["DAGSTER_HOME"] = str(dagster_home)
        started: set[int] = set()
        try:
            yield Deployment(
                hubspot,
                amocrm,
                workdir / "home",
                dagster_home,
                f"http://127.0.0.1:{port}",
                env,
                serve,
            )
        finally:
            started = descendants(serve.pid)
            if serve.poll() is None:
                serve.send_signal(signal.SIGINT)
                try:
                    serve.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    serve.kill()
                    serve.wait()
            for pid in started:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            print(log.read_text(errors="replace")[-4000:])


def answers(ui: str) -> bool:
    try:
        return requests.get(f"{ui}/server_info", timeout=2).ok
    except requests.RequestException:
        return False
