"""Backfills as ops launch them: on `make serve` (webserver and daemon on PostgreSQL), a backfill
of three past days × two portals (a HubSpot sandbox, an amoCRM sandbox) launched through the
webserver's GraphQL API, as the UI's "Launch backfill" button does. Every partition's run
succeeds, every day's scores are in each portal's store, and neither CRM receives a write."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from pipelines.cli import main
from pipelines.store import PortalStore
from tests.deploy.backfill_rig import (
    ASSETS,
    PORTALS,
    answers,
    deployment,
    partition_keys,
    past_days,
    until,
)

# One process per run, not one per step: on a shared CI machine each step process costs seconds.
IN_PROCESS: dict[str, Any] = {"execution": {"config": {"in_process": {}}}}
DONE = {"COMPLETED", "COMPLETED_SUCCESS"}
GAVE_UP = {"FAILED", "CANCELED", "CANCELING", "COMPLETED_FAILED", "FAILING"}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
def test_a_backfill_launched_through_the_webserver_scores_past_days_and_writes_nothing(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = past_days(3)
    keys = partition_keys(days)
    first = (datetime.now(UTC).date() - timedelta(days=6)).isoformat()
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    with deployment(tmp_path, postgres_url, first) as deployed:
        for name, value in deployed.env.items():
            monkeypatch.setenv(name, value)
        # Today's run registers both portals as partitions, and writes: the CRMs can be written.
        assert main(["run"]) == 0
        assert deployed.hubspot.stats()["writes"] > 0
        assert deployed.amocrm.stats()["writes"] > 0

        until("answer from the webserver", lambda: answers(deployed.ui), 60, deployed.serve)
        deployed.hubspot.reset_stats()
        deployed.amocrm.reset_stats()
        started = time.monotonic()
        backfill = deployed.launch_backfill(keys, ASSETS, IN_PROCESS)

        def finished() -> str | None:
            status = deployed.backfill_status(backfill)
            assert status not in GAVE_UP, f"backfill {backfill}: {status}"
            return status if status in DONE else None

        until("completed backfill", finished, 240, deployed.serve)
        print(f"backfill of {len(keys)} partitions: {time.monotonic() - started:.0f} s")

        with dg.DagsterInstance.from_config(str(deployed.dagster_home)) as instance:
            runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill}))
            assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
            assert {run.tags["dagster/partition"] for run in runs} == set(keys)
            scores = instance.get_materialized_partitions(dg.AssetKey(["heatsync", "scores"]))
            assert set(keys) <= scores

        for portal in PORTALS:
            for day in days:
                assert PortalStore(deployed.home, portal).scores(day) is not None, (portal, day)
        assert deployed.hubspot.stats()["writes"] == 0
        assert deployed.amocrm.stats()["writes"] == 0
