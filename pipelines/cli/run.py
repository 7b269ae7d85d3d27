"""`heatsync run`: today's partition (or a past `--day`) of every configured portal, or of
`--portal NAME`, through Dagster, in process and recorded in the run history; `--dry-run` runs the
same steps of the run layer on a throwaway snapshot of the store and prints what would change.

Stopping and overlapping: the first SIGTERM or SIGINT (Ctrl-C) asks the run to stop before its
next step (the Dagster job runs in a worker thread, so the signal reaches this module's handler
instead of Dagster's, which would interrupt a step mid-request and retry it); the step running
finishes, the next fails without retries, the run is recorded as failed, one line says what is
left, and the exit code is 130 (SIGINT) or 143 (SIGTERM). A second signal stops the process at
once. One `heatsync run` per portal at a time: a second one waits for the first up to
HEATSYNC_RUN_WAIT seconds (default 300), then gives up with exit code 75."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

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
    FIELDS,
    SCORES,
    TASKS,
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


T = TypeVar("T")
EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}
BUSY = 75  # EX_TEMPFAIL: another run holds the portal; try again later
RUN_WAIT_VARIABLE = "HEATSYNC_RUN_WAIT"
DEFAULT_RUN_WAIT_S = 300.0


class _Stop:
    """What the signal handlers saw: the first SIGTERM/SIGINT asks for a stop at the next safe
    point, a second one ends the process at once."""

    def __init__(self) -> None:
        self.signo: int | None = None

    @property
    def asked(self) -> bool:
        return self.signo is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signo).name if self.signo is not None else ""

    @property
    def code(self) -> int:
        return EXIT_CODES.get(self.signo or signal.SIGTERM, 143)

    def handle(self, signo: int, _frame: FrameType | None) -> None:
        if self.signo is not None:
            print(
                f"heatsync run: {signal.Signals(signo).name} again: stopped at once; a task "
                "being created may be left pending, the next run settles it",
                file=sys.stderr,
                flush=True,
            )
            os._exit(EXIT_CODES.get(signo, 143))
        self.signo = signo
        print(
            f"heatsync run: {self.name} received: stopping after the current step "
            "(send it again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    @contextmanager
    def guard(self, step: str) -> Iterator[None]:
        """The run layer's guard (pipelines.run.day.guarded): stop before `step` when a stop
        was asked for, and fail a step on a full disk; neither is retried by Dagster."""
        import dagster as dg

        from pipelines.store import StoreFull

        if self.asked:
            raise dg.Failure(
                description=f"stopped by {self.name} before {step}", allow_retries=False
            )
        try:
            yield
        except StoreFull as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None

    def checkpoint(self, step: str, done: int, total: int) -> None:
        """Between the batches of a long step: stop there when a stop was asked for (what was
        written so far is recorded), not retried by Dagster."""
        if self.asked:
            import dagster as dg

            raise dg.Failure(
                description=f"stopped by {self.name} during {step} ({done} of {total} contacts "
                "written)",
                allow_retries=False,
            )

    @contextmanager
    def handlers(self) -> Iterator[None]:
        """SIGTERM and SIGINT go to `handle` within the block (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        before = {s: signal.signal(s, self.handle) for s in EXIT_CODES}
        try:
            yield
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)


def _in_thread(work: Callable[[], T]) -> T:
    """`work()` in a worker thread while this (main) thread stays free to take signals."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=target, name="heatsync-run", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _run_wait() -> float:
    text = os.environ.get(RUN_WAIT_VARIABLE, "").strip()
    try:
        return max(0.0, float(text)) if text else DEFAULT_RUN_WAIT_S
    except ValueError:
        return DEFAULT_RUN_WAIT_S


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
    stop = _Stop()
    codes: dict[str, int] = {}
    with stop.handlers():
        for p in portals:
            if stop.asked:
                break
            codes[p.name] = runner.portal(p, dry_run, day, stop)
    if stop.asked:
        left = [p.name for p in portals if p.name not in codes]
        if left:
            print(
                f"heatsync run: stopped by {stop.name}; portals not run: {', '.join(left)} "
                "— the next run does them",
                file=sys.stderr,
            )
        return stop.code
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

    def portal(self, portal: Portal, dry_run: bool, day: str | None, stop: _Stop) -> int:
        from connectors.http import ConnectorError
        from pipelines.config import MissingCredentials
        from pipelines.store import StoreFull

        try:
            done = setup(portal)
            return _run_portal(done, dry_run, day, self.job, stop)
        except StoreFull as exc:
            print(f"heatsync run: {label(portal)}{exc}", file=sys.stderr)
        except MissingCredentials as exc:
            print(f"heatsync run: {unconfigured(exc, portal)}", file=sys.stderr)
        except ConnectorError as exc:
            # already one readable line, secrets redacted: what failed and what to check
            line = f"{label(portal)}{exc}{advice(type(exc).__name__)}"
            print(f"heatsync run: {line}", file=sys.stderr)
        return 1


def _run_portal(
    done: PortalSetup,
    dry_run: bool,
    day: str | None,
    job: Callable[[], dg.JobDefinition],
    stop: _Stop,
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

    # Entering the instance makes it the definitions' state storage for this run and leaves
    # none behind: Dagster 1.13 otherwise keeps a storage whose instance is gone, and the next
    # build of the definitions in this process fails on it.
    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        return _execute(done, day, today, job(), instance, stop)


def _execute(
    done: PortalSetup,
    day: str,
    today: str,
    daily: dg.JobDefinition,
    instance: dg.DagsterInstance,
    stop: _Stop,
) -> int:
    from pipelines.partitions import PORTAL_TAG, PORTALS, partition_key
    from pipelines.run.day import guarded
    from pipelines.store import StoreBusy

    portal, store = done.portal.name, done.config.store(done.portal.name)
    if portal not in instance.get_dynamic_partitions(PORTALS):
        instance.add_dynamic_partitions(PORTALS, [portal])
    wait = _run_wait()

    def waiting(holder: str) -> None:
        print(
            f"heatsync run: portal {portal}: another heatsync run is working on it "
            f"({holder or 'another process'}), waiting up to {wait:g} s",
            file=sys.stderr,
            flush=True,
        )

    try:
        with (
            store.run_lock(wait, waiting, lambda: stop.asked),
            guarded(stop.guard, stop.checkpoint),
        ):
            result = _in_thread(
                lambda: daily.execute_in_process(
                    instance=instance,
                    partition_key=partition_key(day, portal),
                    raise_on_error=False,
                    tags={"heatsync/launched_by": "cli", PORTAL_TAG: portal},
                    run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
                )
            )
    except StoreBusy as exc:
        if stop.asked:
            print(
                f"heatsync run: stopped by {stop.name} while waiting for portal {portal}; "
                "nothing done — the next run does all of it",
                file=sys.stderr,
            )
            return stop.code
        print(
            f"heatsync run: portal {portal}: another heatsync run "
            f"({exc.holder or 'another process'}) is still working on it after {wait:g} s; "
            f"not run this time ({RUN_WAIT_VARIABLE} sets the wait)",
            file=sys.stderr,
        )
        return BUSY
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
    if stop.asked:
        during = [m for _, m in failures if m.startswith(f"stopped by {stop.name} during ")]
        line = (
            f"{during[0]}; the rest of the fields and the tasks — the next run writes and "
            "creates them"
            if during
            else _stopped(stop.name, meta, day < today)
        )
        print(f"heatsync run: {line}", file=sys.stderr)
        return stop.code
    return 0 if result.success else 1


def _stopped(signame: str, meta: dict[str, dict[str, Any]], past: bool) -> str:
    """One line: where the stop came, what is done and what the next run does."""
    if TASKS in meta or (past and SCORES in meta):
        return f"{signame} came as the run finished; nothing is left for the next run"
    if FIELDS in meta:
        left = "after the field write-back; tasks not created yet — the next run creates them"
    elif SCORES in meta:
        left = (
            "after scoring; fields not written and tasks not created yet — the next run "
            "writes and creates them"
        )
    elif EXTRACT in meta:
        left = "after the extract; not scored yet — the next run scores, writes and creates tasks"
    else:
        left = "before the extract; nothing done — the next run does all of it"
    return f"stopped by {signame} {left}"


_RETRIES_EXCEEDED = re.compile(r"Exceeded max_retries of (\d+)")
_CLASS_PREFIX = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception): ")
# What to do about the transient errors the HTTP layer gave up on (connectors/errors.py); the
# others (refused tokens, a blocked account, bad settings) already say it in their own words.
_WHAT_TO_DO = {
    "RateLimitedError": "the CRM kept answering 429 (too many requests) through every retry; "
    "another app may be spending the same API budget — the next run tries again",
    "LockedError": "the CRM kept the records locked through every retry — the next run tries again",
    "ServerError": "the CRM kept failing (5xx) through every retry — the next run tries again; "
    "if it lasts, check the CRM's status page",
    "TransportError": "the CRM could not be reached through every retry — check the network "
    "and the base URL; the next run tries again",
}


def advice(error_class: str) -> str:
    """ ": what to do" after a transient CRM error's line (empty for other errors)."""
    hint = _WHAT_TO_DO.get(error_class)
    return f": {hint}" if hint else ""


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
            error = data.error
            retried = _RETRIES_EXCEEDED.match(error.message.strip())
            # after the retries Dagster says only "Exceeded max_retries of 2": the cause is the
            # error of the last attempt, which it keeps as the cause
            while error.cls_name == "RetryRequestedFromPolicy" and error.cause is not None:
                error = error.cause
            reason = _CLASS_PREFIX.sub("", error.message.strip().splitlines()[-1])
            if retried and int(retried.group(1)) > 0 and error is not data.error:
                reason += f" (the step failed {int(retried.group(1)) + 1} times)"
            reason += advice(error.cls_name or "")
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
