"""`heatsync run`: today's partition (or a past `--day`) of every configured portal, or of
`--portal NAME`, through Dagster, in process and recorded in the run history; `--dry-run` runs the
same steps of the run layer on a throwaway snapshot of the store and prints what would change."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipelines.cli.common import (
    PortalSetup,
    ensure_dagster_home,
    label,
    load_env,
    selected_portals,
    setup,
    unconfigured,
)
from pipelines.cli.summary import (
    EXTRACT,
    print_changes,
    print_kept,
    print_left_out,
    print_summary,
)

if TYPE_CHECKING:
    import dagster as dg

    from connectors.base import CrmConnector
    from pipelines.config import HeatsyncConfig
    from pipelines.portals import Portal
    from pipelines.store import PortalStore


def _metadata_by_asset(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        values: dict[str, Any] = {}
        for key, entry in mat.metadata.items():
            values[key] = getattr(entry, "value", entry)
        out["/".join(mat.asset_key.path)] = values
    return out


def run(portal: str | None, dry_run: bool, day: str | None = None) -> int:
    """Today's partition (or a past `day`) of `portal`, or of every configured portal one after
    the other: one summary each; a portal that fails does not stop the others. 0 when all
    succeeded, else 1 (2 for a bad --day)."""
    load_env()
    portals = selected_portals(portal)
    runner = _Runner()
    codes = {p.name: runner.portal(p, dry_run, day) for p in portals}
    if len(codes) > 1:
        failed = [name for name, code in codes.items() if code]
        print(
            f"\nheatsync run · {len(codes) - len(failed)} of {len(codes)} portals succeeded"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    return max(codes.values())


class _Runner:
    """Runs portals one after the other in this process, sharing one Dagster instance and one
    build of the definitions (made on first use, from the environment of that moment)."""

    def __init__(self) -> None:
        self._job: dg.JobDefinition | None = None

    def job(self) -> dg.JobDefinition:
        if self._job is None:
            ensure_dagster_home()
            from pipelines.definitions import build_defs

            self._job = build_defs().resolve_job_def("daily_scoring")
        return self._job

    def portal(self, portal: Portal, dry_run: bool, day: str | None) -> int:
        from connectors.http import ConnectorError
        from pipelines.config import MissingCredentials

        try:
            done = setup(portal)
            return _run_portal(done, dry_run, day, self.job)
        except MissingCredentials as exc:
            print(f"heatsync run: {unconfigured(exc, portal)}", file=sys.stderr)
        except ConnectorError as exc:
            # already one readable line, secrets redacted: what failed and what to check
            print(f"heatsync run: {label(portal)}{exc}", file=sys.stderr)
        return 1


def _run_portal(
    done: PortalSetup, dry_run: bool, day: str | None, job: Callable[[], dg.JobDefinition]
) -> int:
    from pipelines.run.asof import local_today
    from pipelines.run.day import portal_time_zone

    portal, connector, config = done.portal.name, done.connector, done.config
    store = config.store(portal)
    tz = portal_time_zone(store, connector)
    now = pd.Timestamp.now(tz="UTC")
    today = local_today(tz, now)
    if day is not None:
        if dry_run and day != today:
            print(
                "heatsync run: a past day writes nothing; --dry-run is for today", file=sys.stderr
            )
            return 2
        from pipelines.partitions import FIRST_DAY_VARIABLE, first_day

        first = first_day()
        if not first <= day <= today:
            print(
                f"heatsync run: --day must be from {first} (the first day partition; "
                f"{FIRST_DAY_VARIABLE} moves it) to {today} (portal {portal})",
                file=sys.stderr,
            )
            return 2
    day = day or today
    if dry_run:
        return _dry_run(connector, config, store, day, now)

    import dagster as dg

    from pipelines.partitions import PORTAL_TAG, PORTALS, partition_key

    daily = job()
    instance = dg.DagsterInstance.get()
    if portal not in instance.get_dynamic_partitions(PORTALS):
        instance.add_dynamic_partitions(PORTALS, [portal])
    result = daily.execute_in_process(
        instance=instance,
        partition_key=partition_key(day, portal),
        raise_on_error=False,
        tags={"heatsync/launched_by": "cli", PORTAL_TAG: portal},
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
    failures = _step_failures(result)
    meta = _metadata_by_asset(result)
    if EXTRACT not in meta and failures:
        # nothing was read, so there is nothing to summarise: say what failed and stop
        for _step, message in failures:
            print(f"heatsync run: {label(done.portal)}{message}", file=sys.stderr)
        print(f"  (run {result.run_id} FAILED; history in DAGSTER_HOME)", file=sys.stderr)
        return 1
    print_summary(store.portal, day, meta, past=day < today)
    print(f"  run          {result.run_id} ({'success' if result.success else 'FAILED'})")
    print(f"  history      DAGSTER_HOME={os.environ['DAGSTER_HOME']}")
    for step, message in failures:
        print(f"  ! {step}: {message}", file=sys.stderr)
    return 0 if result.success else 1


def _step_failures(result: dg.ExecuteInProcessResult) -> list[tuple[str, str]]:
    """(step, one-line reason) of each failed step: a Failure's description, else the last
    line of the error message."""
    out: list[tuple[str, str]] = []
    for event in result.all_events:
        if not (event.is_step_failure and event.step_key):
            continue
        data = event.step_failure_data
        reason = ""
        if data.user_failure_data is not None and data.user_failure_data.description:
            reason = data.user_failure_data.description
        elif data.error is not None:
            reason = data.error.message.strip().splitlines()[-1]
        out.append((event.step_key, reason or str(event.message)))
    return out


DRY_RUN_ID = "dry-run"


def _dry_run(
    connector: CrmConnector,
    config: HeatsyncConfig,
    store: PortalStore,
    day: str,
    now: pd.Timestamp,
) -> int:
    """The real run's steps with dry_run on a throwaway snapshot of the store: read the CRM,
    score and plan, ask the CRM which planned tasks exist, and print every change as before →
    after. Nothing is written to the CRM and nothing is kept locally."""
    import tempfile

    from pipelines.run import day as run_day
    from pipelines.run.calibration import scoring_choice

    locale = config.locale
    with tempfile.TemporaryDirectory(prefix="heatsync-dry-run-") as scratch:
        with store.lock():
            copy = store.snapshot(Path(scratch))
        with copy.lock():
            _, extracted = run_day.extract_day(connector, copy, day, now)
            # the config the real run would score with: pinned, else the account's adopted one
            scoring = config.capped(scoring_choice(copy, config.scoring_config).config)
            scored = run_day.score_day(copy, day, now, scoring, locale, save=False)
            updates, written = run_day.write_back_day(
                connector,
                copy,
                scored.as_of,
                scored.scores,
                DRY_RUN_ID,
                locale,
                dry_run=True,
                policy=config.field_policy,
                human_edit_days=config.human_edit_days,
            )
            contacts = copy.table("contacts")
            planned = run_day.tasks_day(
                connector,
                copy,
                scored.as_of,
                scored.scores,
                scoring,
                locale,
                DRY_RUN_ID,
                dry_run=True,
            )
            tasks = planned.tasks
            existing = connector.find_tasks(
                dict(zip(tasks["task_key"], tasks["contact_id"], strict=True))
            )
    meta = extracted.metadata
    print(f"heatsync run --dry-run · portal {store.portal} · {day} · nothing is written")
    if meta.get("binding"):
        print(f"  account: {meta['binding']}")
    print(
        f"  extract: {meta.get('mode')}, {meta.get('contacts_pulled', 0)} contacts pulled "
        "(read only: nothing is saved)"
    )
    print_changes(updates, contacts)
    print_kept(written.metadata, indent="  ")
    new_tasks = tasks[~tasks["task_key"].isin(list(existing))]
    print(f"  would create {len(new_tasks)} tasks:")
    for task in new_tasks.head(20).itertuples(index=False):
        print(f"    [{task.rule}] owner {task.owner_id} · {task.subject}")
    if len(new_tasks) > 20:
        print(f"    … and {len(new_tasks) - 20} more")
    if existing:
        print(f"  {len(existing)} planned tasks already exist in the CRM: not created again")
    not_created = planned.result.metadata.get("skipped") or {}
    skipped = ", ".join(f"{k} {v}" for k, v in not_created.items() if v)
    print(f"  not created: {skipped or 'none'}")
    print_left_out(planned.result.metadata)
    return 0
