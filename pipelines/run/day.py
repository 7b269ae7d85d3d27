"""One portal, one day: each step of a run with the day's as-of, under the portal's lock.

The Dagster assets resolve their partition and call these; the `heatsync` command line calls the
same ones (its dry run on a throwaway snapshot of the store). `now` is the moment the run started:
every step of one run passes the same value, so they all resolve the same as-of, and the steps
after scoring take the as-of the scores were computed with. Nothing here imports Dagster.

Every step starts inside the guard a caller may install (`guarded`): `heatsync run` uses it to
stop a run between steps when asked to (SIGTERM, Ctrl-C) and to fail a step without Dagster's
retries when retrying cannot help (a full disk).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import pandas as pd

from connectors.base import CrmConnector
from pipelines import steps
from pipelines.human_edits import DEFAULT_HUMAN_EDIT_DAYS
from pipelines.run.asof import AsOf
from pipelines.steps import StepResult
from pipelines.store import PortalStore
from scoring import ScoringConfig

Guard = Callable[[str], AbstractContextManager[None]]
# (step, done, total): called between the batches of a long step; may raise to stop it there
Checkpoint = Callable[[str, int, int], None]


def _no_guard(step: str) -> AbstractContextManager[None]:
    return nullcontext()


def _no_checkpoint(step: str, done: int, total: int) -> None:
    return None


_guard: list[Guard] = [_no_guard]
_checkpoint: list[Checkpoint] = [_no_checkpoint]


@contextmanager
def guarded(guard: Guard, checkpoint: Checkpoint | None = None) -> Iterator[None]:
    """Within the block, each step of this process runs inside `guard(step)` (step: "the
    extract", "scoring", "the field write-back", "the tasks", "the backtest"), whatever thread
    runs it: the guard may raise before the step starts, or translate what the step raises.
    `checkpoint(step, done, total)` is called between the write-back's chunks of contacts and
    may raise to end the step there."""
    before = _guard[0], _checkpoint[0]
    _guard[0] = guard
    _checkpoint[0] = checkpoint or _no_checkpoint
    try:
        yield
    finally:
        _guard[0], _checkpoint[0] = before


def portal_time_zone(store: PortalStore, connector: CrmConnector) -> str:
    """The portal's time zone: as the store last read it, else asked from the CRM."""
    return str(store.portal_meta().get("time_zone") or connector.portal_info().time_zone)


def store_covers(store: PortalStore, as_of: AsOf) -> bool:
    """A past day needs no extract when the store was last filled after that day ended."""
    last = store.portal_meta().get("last_extract_at")
    return bool(last) and not as_of.is_today and pd.Timestamp(last) >= as_of.instant


def extract_day(
    connector: CrmConnector, store: PortalStore, day: str, now: pd.Timestamp
) -> tuple[AsOf, StepResult]:
    """The extract of `day`: FutureDayError for a day after the portal's today (before anything
    is read), a skip when the store already covers a past day, else an incremental pull."""
    with _guard[0]("the extract"), store.lock():
        as_of = AsOf.resolve(day, portal_time_zone(store, connector), now)
        if store_covers(store, as_of):
            return as_of, StepResult({"mode": "skipped", "reason": f"store already covers {day}"})
        return as_of, steps.extract(connector, store, as_of)


@dataclass(frozen=True)
class ScoredDay:
    """A day's scores with the as-of they were computed with, and what the checks look at."""

    as_of: AsOf
    scores: pd.DataFrame
    result: StepResult
    contacts_expected: int  # contacts that existed at the as-of

    @property
    def contacts_scored(self) -> int:
        return int(self.scores["contact_id"].nunique())

    @property
    def in_range(self) -> bool:
        """Scores in 0–100 and every temperature one of cold, warm, hot."""
        labels = self.scores["temperature"].isin(["cold", "warm", "hot"]).all()
        return bool(self.scores["score"].between(0, 100).all() and labels)


def score_day(
    store: PortalStore,
    day: str,
    now: pd.Timestamp,
    config: ScoringConfig,
    locale: str,
    save: bool = True,
) -> ScoredDay:
    """Score the store's contacts as of `day` (saved as the day's scores unless `save` is
    False)."""
    with _guard[0]("scoring"), store.lock():
        as_of = AsOf.resolve(day, store.time_zone(), now)
        scores, result = steps.score(store, as_of, config, locale, save=save)
        contacts = store.table("contacts")
    existed = contacts["created_at"].isna() | (contacts["created_at"] <= as_of.instant)
    return ScoredDay(as_of, scores, result, int(existed.sum()))


def todays_scores(
    store: PortalStore, day: str, now: pd.Timestamp
) -> tuple[AsOf, pd.DataFrame] | None:
    """The saved scores of `day` with the as-of they were computed with, when `day` is the
    portal's today and they were scored as today's; None otherwise (a past day writes nothing)."""
    tz = store.time_zone()
    if not AsOf.resolve(day, tz, now).is_today:
        return None
    scores = store.scores(day)
    if scores is None:
        return None
    as_of = AsOf.of_scores(day, tz, scores) or AsOf.resolve(day, tz, now)
    return (as_of, scores) if as_of.is_today else None


def write_back_day(
    connector: CrmConnector,
    store: PortalStore,
    as_of: AsOf,
    scores: pd.DataFrame,
    run_id: str,
    locale: str,
    dry_run: bool = False,
    policy: Mapping[str, str] | None = None,
    human_edit_days: int = DEFAULT_HUMAN_EDIT_DAYS,
) -> tuple[pd.DataFrame, StepResult]:
    """heatsync's fields (created first where missing) with the values that changed, under the
    portal's write `policy` (a value a person set stays for `human_edit_days`); returns the
    changes (what a dry run would send) and the step's result."""
    with _guard[0]("the field write-back"), store.lock():
        created = [] if dry_run else connector.ensure_schema(locale)
        updates, result = steps.write_fields(
            connector,
            store,
            scores,
            as_of,
            run_id,
            dry_run=dry_run,
            policy=policy,
            human_edit_days=human_edit_days,
            between=lambda done, total: _checkpoint[0]("the field write-back", done, total),
        )
    result.metadata["properties_created"] = created
    return updates, result


@dataclass(frozen=True)
class TasksDone:
    """The tasks step's result and what the ledger looks like after it."""

    tasks: pd.DataFrame
    result: StepResult
    ledger_rows: int
    duplicate_keys: int


def tasks_day(
    connector: CrmConnector,
    store: PortalStore,
    as_of: AsOf,
    scores: pd.DataFrame,
    config: ScoringConfig,
    locale: str,
    run_id: str,
    dry_run: bool = False,
) -> TasksDone:
    """Plan the day's follow-up tasks as of the scores' as-of and create the new ones (heatsync's
    fields created first where missing: the tasks step may run before the write-back, and a
    HubSpot task carries heatsync's task-key property)."""
    with _guard[0]("the tasks"), store.lock():
        if not dry_run:
            connector.ensure_schema(locale)
        tasks, result = steps.create_tasks(
            connector, store, scores, as_of, config, locale, run_id, dry_run=dry_run
        )
        ledger = store.ledger()
    return TasksDone(tasks, result, len(ledger), int(ledger["task_key"].duplicated().sum()))


def backtest_day(store: PortalStore, day: str, now: pd.Timestamp, horizon_days: int) -> StepResult:
    """Did the contacts scored `horizon_days` before `day` buy by the end of `day`?"""
    with _guard[0]("the backtest"), store.lock():
        as_of = AsOf.resolve(day, store.time_zone(), now)
        return steps.backtest(store, as_of, horizon_days)
