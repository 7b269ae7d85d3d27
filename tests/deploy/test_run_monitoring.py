"""Run workers killed mid-run, on `make serve` (webserver and daemon on PostgreSQL with
deploy/dagster.yaml as shipped). Today's daily run of two sandbox portals is launched through the
webserver, as the UI's "Materialize" does; once the portal's CRM has received the run's first
tasks, SIGKILL lands on

- the HubSpot portal's run worker alone, its steps in processes of their own (Dagster's default
  multiprocess executor, as the schedule runs them): the step processes live on and finish the
  step they were in;
- the amoCRM portal's run worker with its steps inside it (the in-process executor, as the
  backfills run them) and anything it started: the whole run is gone, as when the out-of-memory
  killer takes a container, and its tasks step dies between creating tasks in the CRM and
  finishing, so the retry must do that step again.

For each: the run is marked failed saying its process was killed; run retries launch it again (a
child run tagged dagster/retry_number=1, same partition, same portal tag); the retry succeeds; and
the CRM holds each heatsync task once: nothing the killed run created is created again.

Who notices the dead worker: under Dagster's default run launcher a run worker is a child
process of the code server (`dagster api grpc`, started by the daemon) that took the launch.
The daemon's run monitoring does not check a started run's worker under this launcher (it does
not support worker health checks: monitoring fails runs that never start, stops runs that
overrun max_runtime_seconds and ends stuck cancellations); the code server's own watch (every
0.5 s) sees its child gone and reports the run failed with the engine event asserted below.
docs/deployment.md says what that means when the code server dies too.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import requests
from dagster._core.events import DagsterEventType
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus, RunsFilter

from connectors.amocrm.markers import MARKER
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.env import settings_from_env
from pipelines.partitions import PORTAL_TAG, PORTALS, partition_key
from pipelines.run.asof import local_today
from sandbox.amocrm.common import AmoOptions
from sandbox.amocrm.server import AmoSandboxServer
from sandbox.demo import AMOCRM_PORTAL, HUBSPOT_PORTAL
from sandbox.hubspot.server import SandboxOptions, SandboxServer
from tests.deploy.backfill_rig import (
    DAEMONS,
    LAUNCH_RUN,
    Deployment,
    answers,
    deployment,
    descendants,
    until,
)

STARTED_PROCESS = "Started process for run (pid: "
TASKS_STEP = "crm__tasks"
CONTACTS = 300
# Each amoCRM request takes this long: the tasks step spans several of them, so the kill after the
# first lands while the step is still creating tasks.
AMOCRM_LATENCY_MS = 150


def _hubspot_tasks(server: SandboxServer) -> Counter[str]:
    with server.lock:
        return Counter(
            str(rec.props["heatsync_task_key"])
            for rec in server.state.iter_live("tasks")
            if rec.props.get("heatsync_task_key")
        )


def _amocrm_tasks(server: AmoSandboxServer) -> Counter[str]:
    """heatsync's tasks in the amoCRM sandbox by their marker (a task's key there)."""
    with server.lock:
        found = (MARKER.search(str(task["text"])) for task in server.state.tasks.values())
        return Counter(match.group(1) for match in found if match)


def _hubspot_time_zone(server: SandboxServer) -> str:
    answer = requests.get(
        f"{server.base_url}/account-info/v3/details",
        headers={"Authorization": f"Bearer {server.token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["timeZone"])


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's pid, from the engine event it logs when it starts."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        if record.message.startswith(STARTED_PROCESS):
            return int(record.message[len(STARTED_PROCESS) :].rstrip(").").strip())
    return None


def _engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)]


def _succeeded_steps(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
    return {r.step_key for r in records if r.step_key}


def _retry_of(instance: dg.DagsterInstance, run_id: str) -> DagsterRun | None:
    runs = instance.get_runs(RunsFilter(tags={"dagster/parent_run_id": run_id}))
    return runs[0] if runs else None


@dataclass
class Case:
    portal: str
    today: str
    tasks: Callable[[], Counter[str]]
    in_process: bool  # steps inside the run worker; else each step a process of its own


@dataclass
class Outcome:
    run_id: str
    retry_id: str
    tasks: Counter[str]
    killed: set[int]
    steps_done_before_kill: set[str]


def _launch(deployed: Deployment, case: Case) -> str:
    """What the UI sends to materialize one day × portal partition of the daily job."""
    key = str(partition_key(case.today, case.portal))
    tags = {
        "dagster/partition": key,
        "dagster/partition/date": case.today,
        "dagster/partition/portal": case.portal,
        PORTAL_TAG: case.portal,
    }
    params: dict[str, Any] = {
        "selector": {
            "repositoryLocationName": "heatsync",
            "repositoryName": "__repository__",
            "jobName": "daily_scoring",
        },
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
    }
    if case.in_process:
        params["runConfigData"] = {"execution": {"config": {"in_process": {}}}}
    launched = deployed.graphql(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return str(launched["run"]["runId"])


def _tell_story(instance: dg.DagsterInstance, case: Case) -> None:
    """What each run of the portal did, for a failed test's output."""
    for run in instance.get_runs(RunsFilter(tags={PORTAL_TAG: case.portal})):
        for record in instance.all_logs(run.run_id):
            kind = record.dagster_event_type
            if kind is None or kind.name.startswith(("STEP_", "RUN_", "ENGINE")):
                when = time.strftime("%H:%M:%S", time.gmtime(record.timestamp))
                what = kind.name if kind else "LOG"
                print(f"{case.portal} {run.run_id[:8]} {when} {what} {record.step_key or ''}")
                print(f"    {(record.message or '')[:300]}")


def _kill_midway_and_follow(deployed: Deployment, case: Case) -> Outcome:
    instance = dg.DagsterInstance.from_config(str(deployed.dagster_home))
    try:
        run_id = _launch(deployed, case)
        worker = until(
            f"{case.portal}'s run worker", lambda: _worker_pid(instance, run_id), 60, deployed.serve
        )
        assert worker in descendants(deployed.serve.pid), "the run worker is serve's"
        # Generous: on a shared CI machine each step process may take half a minute to start.
        deadline = time.monotonic() + 420
        while not case.tasks():
            assert time.monotonic() < deadline, f"{case.portal}: no task in the CRM in 420 s"
            time.sleep(0.05)
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.STARTED, run
        victims = ({worker} | descendants(worker)) if case.in_process else {worker}
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed_at = time.monotonic()
        done_before = _succeeded_steps(instance, run_id)

        def failed() -> bool:
            run = instance.get_run_by_id(run_id)
            assert run is not None
            assert run.status != DagsterRunStatus.SUCCESS, f"{case.portal}: killed run succeeded"
            return run.status == DagsterRunStatus.FAILURE

        until(f"{case.portal}'s failed run", failed, 30, deployed.serve)
        print(f"{case.portal}: failed {time.monotonic() - killed_at:.1f} s after the kill")
        messages = _engine_messages(instance, run_id)
        said = f"Run execution process for {run_id} was terminated by signal 9 (SIGKILL)"
        assert any(said in m for m in messages), messages

        retry = until(f"{case.portal}'s retry", lambda: _retry_of(instance, run_id), 60)
        assert retry.tags["dagster/retry_number"] == "1"
        assert retry.tags["dagster/partition"] == str(partition_key(case.today, case.portal))
        assert retry.tags[PORTAL_TAG] == case.portal

        def retried() -> bool:
            run = instance.get_run_by_id(retry.run_id)
            assert run is not None
            gave_up = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
            assert run.status not in gave_up, _engine_messages(instance, retry.run_id)
            return run.status == DagsterRunStatus.SUCCESS

        until(f"{case.portal}'s successful retry", retried, 420, deployed.serve)
        print(f"{case.portal}: retry succeeded {time.monotonic() - killed_at:.1f} s after")
        if case.in_process:
            assert TASKS_STEP not in _succeeded_steps(instance, run_id), "killed too late"
            assert TASKS_STEP in _succeeded_steps(instance, retry.run_id)
        else:  # the worker's step processes outlived it and finished their step
            until(
                f"{case.portal}'s orphaned tasks step",
                lambda: TASKS_STEP in _succeeded_steps(instance, run_id),
                60,
            )
        return Outcome(run_id, retry.run_id, case.tasks(), victims, done_before)
    except BaseException:
        _tell_story(instance, case)
        raise
    finally:
        instance.dispose()


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_killed_run_worker_is_failed_retried_and_creates_no_task_twice(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = time.monotonic()
    first = (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    with deployment(
        tmp_path,
        postgres_url,
        first,
        contacts=CONTACTS,
        hubspot_options=SandboxOptions(search_lag_s=0.0),
        amocrm_options=AmoOptions(latency_ms=AMOCRM_LATENCY_MS),
    ) as deployed:
        for name, value in deployed.env.items():
            monkeypatch.setenv(name, value)
        until("answer from the webserver", lambda: answers(deployed.ui), 60, deployed.serve)
        instance = dg.DagsterInstance.from_config(str(deployed.dagster_home))
        try:
            until(
                "heartbeat of every daemon",
                lambda: DAEMONS <= set(instance.get_daemon_heartbeats()),
                60,
                deployed.serve,
            )
            # The register_portals sensor's first tick adds the portals as partitions.
            until(
                "registered portals",
                lambda: (
                    {HUBSPOT_PORTAL, AMOCRM_PORTAL} <= set(instance.get_dynamic_partitions(PORTALS))
                ),
                60,
                deployed.serve,
            )
        finally:
            instance.dispose()
        # heatsync's HubSpot properties exist, as after the portal's first day: on a first run the
        # tasks step may start before the write-back has created the tasks' heatsync_task_key
        # property, and HubSpot then refuses every task (a first-run race of the multiprocess
        # executor, outside what this test is about).
        HubSpotConnector(
            settings_from_env(
                HUBSPOT_PORTAL,
                {
                    "HUBSPOT_BASE_URL": deployed.hubspot.base_url,
                    "HUBSPOT_ACCESS_TOKEN": deployed.hubspot.token,
                },
            )
        ).ensure_schema("en")
        now = pd.Timestamp.now(tz="UTC")
        cases = [
            Case(
                HUBSPOT_PORTAL,
                local_today(_hubspot_time_zone(deployed.hubspot), now),
                lambda: _hubspot_tasks(deployed.hubspot),
                in_process=False,
            ),
            Case(
                AMOCRM_PORTAL,
                local_today(deployed.amocrm.state.timezone, now),
                lambda: _amocrm_tasks(deployed.amocrm),
                in_process=True,
            ),
        ]
        print(f"deployment up in {time.monotonic() - began:.1f} s")
        with ThreadPoolExecutor(len(cases)) as pool:
            futures = [pool.submit(_kill_midway_and_follow, deployed, case) for case in cases]
            outcomes = [future.result() for future in futures]

    for case, outcome in zip(cases, outcomes, strict=True):
        assert outcome.tasks, f"{case.portal}: the runs created tasks"
        twice = {task: n for task, n in outcome.tasks.items() if n > 1}
        assert not twice, f"{case.portal}: tasks created twice: {twice}"
        print(
            f"{case.portal}: killed {sorted(outcome.killed)} after steps "
            f"{sorted(outcome.steps_done_before_kill)}; {len(outcome.tasks)} tasks, none twice"
        )
    print(f"wall {time.monotonic() - began:.1f} s")
