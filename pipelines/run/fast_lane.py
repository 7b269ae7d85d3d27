"""The hot-lead fast lane: a few contacts with fresh buying signals, scored and written now.

The `hot_signals` sensor asks each portal's CRM which contacts showed hot evidence since its
cursor (a form submission, an inbound call or message, a meeting booked:
`CrmConnector.signals_since`) and launches a run of this for them. It does what the daily run
does, as of the moment the run started, under the portal's lock and with the same store and task
keys: an incremental extract, today's scores for every contact (saved as today's, so that the
next daily run sees the hot episode that began now and keeps its task key), then the field
write-back of these contacts and their call-now tasks, outside the daily cap per owner (the
daily run counts them in the owner's day; its other tasks wait for it). The daily run later
finds their values in the CRM and their tasks in the ledger, and sends nothing twice. Nothing
here imports Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from connectors.base import CrmConnector
from pipelines import steps
from pipelines.human_edits import DEFAULT_HUMAN_EDIT_DAYS
from pipelines.run.asof import AsOf
from pipelines.run.day import portal_time_zone
from pipelines.steps import StepResult
from pipelines.store import PortalStore
from scoring import ScoringConfig

FAST_RULES = ("call_now",)
UNCAPPED = 1_000_000


@dataclass(frozen=True)
class FastLaneResult:
    """What a fast-lane run did: the contacts asked for, how they scored, what was written."""

    as_of: AsOf
    scores: pd.DataFrame  # the asked-for contacts' scores (those the store knows)
    fields: StepResult
    tasks: StepResult

    @property
    def metadata(self) -> dict[str, object]:
        temperatures = self.scores["temperature"].value_counts()
        return {
            "as_of": self.as_of.instant.isoformat(),
            "contacts": len(self.scores),
            **{f"temperature_{t}": int(temperatures.get(t, 0)) for t in ("hot", "warm", "cold")},
            "contacts_written": self.fields.metadata.get("contacts_written", 0),
            "tasks_created": self.tasks.metadata.get("tasks_created", 0),
            "tasks_by_rule": self.tasks.metadata.get("tasks_by_rule", {}),
        }

    @property
    def problems(self) -> list[str]:
        return [*self.fields.problems, *self.tasks.problems]


def hot_contacts(
    connector: CrmConnector,
    store: PortalStore,
    contact_ids: Sequence[str],
    now: pd.Timestamp,
    config: ScoringConfig,
    locale: str,
    run_id: str,
    policy: Mapping[str, str] | None = None,
    human_edit_days: int = DEFAULT_HUMAN_EDIT_DAYS,
) -> FastLaneResult:
    """Score the portal as of `now` and write back the fields and call-now tasks of
    `contact_ids` (fields under the portal's write `policy`, as the daily run writes them)."""
    wanted = [str(c) for c in contact_ids]
    with store.lock():
        tz = portal_time_zone(store, connector)
        as_of = AsOf.today(tz, now)
        steps.extract(connector, store, as_of)
        as_of = AsOf.today(store.time_zone(), now)
        scores, _ = steps.score(store, as_of, config, locale)
        mine = scores[scores["contact_id"].astype(str).isin(wanted)].reset_index(drop=True)
        _, fields = steps.write_fields(
            connector, store, mine, as_of, run_id, policy=policy, human_edit_days=human_edit_days
        )
        _, tasks = steps.create_tasks(
            connector, store, mine, as_of, uncapped(config), locale, run_id, rules=FAST_RULES
        )
    return FastLaneResult(as_of, mine, fields, tasks)


def uncapped(config: ScoringConfig) -> ScoringConfig:
    """`config` without the daily cap per owner: a buyer asking now is called now, whatever the
    owner's day already holds (the fast lane creates call-now tasks only, a few a day)."""
    tasks = config.tasks.model_copy(update={"daily_cap": UNCAPPED, "cap_burning": False})
    return config.model_copy(update={"tasks": tasks})
