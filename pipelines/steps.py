"""The steps of a scoring run, free of Dagster: the run layer (pipelines.run) calls them.

extract → score → field write-back → tasks, and the backtest. Each step takes the portal's store,
a connector (connectors.base.CrmConnector) where it talks to the CRM, and the run's as-of
(pipelines.run.asof.AsOf, resolved once per run), and returns metadata for the run record.
The write-back and the tasks record their decisions in the store's decision log (what was
written, kept, created or not created, and why), which `heatsync history` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pandas as pd

from connectors.base import WRITABLE_FIELDS, CrmConnector, WriteReport, field_changes
from connectors.sink import spill_into
from pipelines.human_edits import (
    DEFAULT_HUMAN_EDIT_DAYS,
    KEPT_REASON,
    Protected,
    never_written,
    protect,
    to_ask,
)
from pipelines.run.asof import AsOf, local_today
from pipelines.store import DECISION_COLUMNS, LEDGER_COLUMNS, PortalStore
from scoring import ScoringConfig, plan_tasks, score_contacts

__all__ = [
    "StepResult",
    "backtest",
    "create_tasks",
    "extract",
    "kept_rows",
    "local_today",
    "score",
    "task_rows",
]

log = logging.getLogger("heatsync")


@dataclass
class StepResult:
    metadata: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def extract(connector: CrmConnector, store: PortalStore, as_of: AsOf) -> StepResult:
    """Pull what changed since the stored cursors (everything on the first run) into the store,
    up to the moment the run resolved its as-of (whatever the day: the store keeps history).

    The store is first bound to the account the credentials reach: a local name that now points
    at another account reads that account's own store (and so extracts it in full).
    """
    now = as_of.run_at
    info = connector.portal_info()
    binding = store.bind(connector.crm, info.portal_id)
    with store.lock():
        cursors = store.cursors() or None
        with store.scratch() as folder, spill_into(folder):
            # a connector that streams spills its rows into the folder; they are merged
            # chunk by chunk, so memory does not grow with the account
            result = connector.extract(cursors, until=now.to_pydatetime())
            pulled = {name: result.count(name) for name in ("contacts", "activities", "deals")}
            totals = store.merge_extract(
                result.tables["contacts"],
                result.tables["activities"],
                result.tables["deals"],
                result.removed_contact_ids,
            )
        quarantined = store.add_quarantine(result.quarantine, seen_at=now)
        adopted = store.adopt_crm_tasks(result.own_tasks)
        store.save_cursors(result.cursors)
        store.save_portal_meta(
            {
                "crm": connector.crm,
                "portal_id": info.portal_id,
                "time_zone": info.time_zone,
                "currency": info.currency,
                "last_extract_at": now.isoformat(),
            }
        )
    reasons = result.quarantine["reason"].value_counts().to_dict() if len(result.quarantine) else {}
    meta = {
        "mode": "full" if result.full else "incremental",
        "contacts_pulled": pulled["contacts"],
        "activities_pulled": pulled["activities"],
        "deals_pulled": pulled["deals"],
        "contacts_removed": len(result.removed_contact_ids),
        "rows_quarantined": quarantined,
        "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        "contacts_in_store": totals["contacts"],
        "activities_in_store": totals["activities"],
        "deals_in_store": totals["deals"],
        "time_zone": info.time_zone,
        "account": store.key,
        "tasks_found_in_crm": adopted,
        **({"binding": binding} if binding else {}),
        **{f"api_{k}": v for k, v in connector.stats.as_dict().items()},
    }
    return StepResult(meta)


def score(
    store: PortalStore,
    as_of: AsOf,
    config: ScoringConfig,
    locale: str,
    save: bool = True,
) -> tuple[pd.DataFrame, StepResult]:
    """Score every live contact of the store as of `as_of`; save them as the day's scores
    (unless `save` is False: the dry run looks and keeps nothing). The scores carry the instant
    in their `as_of` column, so the write-back and the tasks use the same one."""
    day, tz = as_of.day, as_of.tz
    previous_day, previous = store.previous_scores(day)
    contacts = store.table("contacts")
    from_crm = pd.Index([])
    last_extract = store.portal_meta().get("last_extract_at")
    if last_extract and as_of.instant >= pd.Timestamp(last_extract):
        # the CRM's values are from the last extract: never let a backfilled day see them
        # a run of this store scored the day before: the CRM's values stamped today may be
        # that run's writes, which it was killed before recording
        run_day = pd.Timestamp(as_of.run_at).tz_convert("UTC").strftime("%Y-%m-%d")
        stamped_on = (day, run_day) if store.scores_path(day).exists() else ()
        previous, from_crm = _previous_with_crm_values(
            previous,
            contacts,
            store.ledger(),
            tz,
            ours=store.written()["contact_id"],
            stamped_on=stamped_on,
        )
    scores = score_contacts(
        contacts,
        store.scoring_table("activities", as_of.instant),
        store.scoring_table("deals", as_of.instant),
        as_of=as_of.instant,
        config=config,
        previous=previous,
        locale=locale,
        tz=tz,
    )
    scores["portal"] = store.key
    # A trend against the CRM's own value could be a comparison of a score with itself (a rerun
    # on the day it was written): unknown, so the CRM keeps the trend it has.
    scores.loc[scores["contact_id"].isin(from_crm), "trend"] = None
    if save:
        store.save_scores(day, scores)
    meta: dict[str, Any] = {
        "as_of": as_of.instant.isoformat(),
        "contacts_scored": len(scores),
        "previous_partition": previous_day or "none",
        **{
            f"temperature_{t}": int((scores["temperature"] == t).sum())
            for t in ("hot", "warm", "cold")
        },
        "segments": {str(k): int(v) for k, v in scores["segment"].value_counts().items()},
        "score_mean": round(float(scores["score"].mean()), 2) if len(scores) else 0.0,
    }
    if previous is not None and len(scores):
        prev = previous.set_index("contact_id")["temperature"]
        now_t = scores.set_index("contact_id")["temperature"]
        common = now_t.index.intersection(prev.index)
        moved = now_t.loc[common] != prev.loc[common]
        meta["temperature_changed"] = int(moved.sum())
        meta["turned_hot"] = int(((now_t.loc[common] == "hot") & (prev.loc[common] != "hot")).sum())
        meta["trend"] = {str(k): int(v) for k, v in scores["trend"].value_counts().items()}
    return scores, StepResult(meta)


def _previous_with_crm_values(
    previous: pd.DataFrame | None,
    contacts: pd.DataFrame,
    ledger: pd.DataFrame,
    tz: str,
    ours: pd.Series | None = None,
    stamped_on: tuple[str, ...] = (),
) -> tuple[pd.DataFrame | None, pd.Index]:
    """Earlier scores, completed from the values heatsync last wrote to the CRM.

    A contact the store never scored (a new machine, a lost store) but whose CRM record carries
    heatsync's temperature and score is compared with those, so a contact already hot in the
    CRM has not "turned hot" again. The start of its hot, burning or at-risk episode is the
    period of the latest call_now or at_risk task heatsync made for it (the task keys in the CRM
    carry it), so the episode keeps its task key and gets no second task. Returns the completed
    frame and the ids taken from the CRM.

    Values this store itself wrote (`ours`: the contacts in its written.parquet) are not the
    CRM's memory of an earlier store but today's own work: a run stopped after the write-back
    and before the tasks would otherwise see its own hot values as "already hot" and never
    create the call. Those contacts keep the store's own history. So do contacts whose heatsync
    stamp in the CRM (`current_updated_at`) is a day of `stamped_on` (the run's local and UTC
    day, given when this store already scored the day): a run killed after the CRM took its
    write and before written.parquet recorded it left those values.
    """
    known = contacts["current_temperature"].notna() & contacts["current_score"].notna()
    if previous is not None and len(previous):
        known &= ~contacts["contact_id"].isin(previous["contact_id"])
    if ours is not None and len(ours):
        known &= ~contacts["contact_id"].astype(str).isin(ours.astype(str))
    if stamped_on and "current_updated_at" in contacts.columns:
        stamp = pd.to_datetime(contacts["current_updated_at"], errors="coerce")
        known &= ~stamp.dt.strftime("%Y-%m-%d").isin(list(stamped_on))
    crm = contacts.loc[known]
    if crm.empty:
        return previous, pd.Index([])
    from_crm = pd.DataFrame(
        {
            "contact_id": crm["contact_id"],
            "portal": crm["portal"],
            "temperature": crm["current_temperature"],
            "score": crm["current_score"],
            "segment": crm["current_segment"],
            "hot_since": _episode_start(ledger, crm, "call_now", tz),
            "segment_since": _episode_start(ledger, crm, "at_risk", tz),
        }
    )
    from_crm.loc[from_crm["temperature"] != "hot", "hot_since"] = pd.NaT
    burning = from_crm["segment"] == "burning"
    from_crm.loc[burning, "segment_since"] = _episode_start(ledger, crm, "call_now", tz)[burning]
    from_crm.loc[~from_crm["segment"].isin(["at_risk", "burning"]), "segment_since"] = pd.NaT
    frames = [f for f in (previous, from_crm) if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True), pd.Index(crm["contact_id"])


def _episode_start(ledger: pd.DataFrame, contacts: pd.DataFrame, rule: str, tz: str) -> pd.Series:
    """Per contact (aligned with `contacts`), local midnight (UTC) of the latest period of
    `rule`'s tasks in the ledger, or NaT."""
    tasks = ledger[ledger["rule"] == rule]
    days = pd.to_datetime(tasks["period"], format="%Y-%m-%d", errors="coerce")
    latest = days.groupby(tasks["contact_id"].astype(str)).max()
    local = pd.DatetimeIndex(contacts["contact_id"].astype(str).map(latest))
    starts = local.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC")
    return pd.Series(starts, index=contacts.index)


def write_fields(
    connector: CrmConnector,
    store: PortalStore,
    scores: pd.DataFrame,
    as_of: AsOf,
    run_id: str,
    dry_run: bool = False,
    policy: Mapping[str, str] | None = None,
    human_edit_days: int = DEFAULT_HUMAN_EDIT_DAYS,
    between: Callable[[int, int], None] | None = None,
) -> tuple[pd.DataFrame, StepResult]:
    """Send the heatsync field values that differ from what the CRM holds. Every value written
    (old → new, with the score's reasons) and every field kept for a reason goes into the
    decision log, stamped with the as-of the scores were computed with; a dry run logs nothing.

    `policy` (field -> overwrite | respect_human_edits | never_write; pipelines.human_edits)
    says which fields are never sent and which keep a value a person set after heatsync's last
    write, for `human_edit_days` from the person's edit; those are logged as kept, with who and
    when. A write the CRM refuses is logged as kept too.

    The contacts go to the CRM `write_chunk(n)` at a time, each chunk recorded in the store when the
    CRM has taken it (while the next chunk is with the CRM); `between(done, total)` is called
    before every chunk after the first is sent and may raise to stop the step there (`heatsync
    run` stopping on SIGTERM), the chunks sent so far recorded."""
    contacts = store.table("contacts")
    policy = policy or {}
    updates = never_written(field_changes(scores, contacts), policy)
    people = _people_edits(connector, store, updates, contacts, as_of, policy, human_edit_days)
    updates = people.updates
    kept: list[pd.DataFrame] = [_kept_by_people(people.kept)]
    fields_changed = {
        name: int(updates[f"changed_{name}"].sum())
        for name in WRITABLE_FIELDS
        if f"changed_{name}" in updates.columns
    }
    meta: dict[str, Any] = {
        "contacts_to_update": len(updates),
        "fields_changed": fields_changed,
        "dry_run": dry_run,
        "kept_edited_by_a_person": len(people.kept),
        **_kept_examples(people.kept),
    }
    if dry_run:
        meta.update({"contacts_written": 0, "write_failures": 0})
        return updates, StepResult(meta)
    if updates.empty:
        meta.update({"contacts_written": 0, "write_failures": 0})
        meta.update(log_decisions(store, kept, run_id, as_of, "fields"))
        return updates, StepResult(meta)
    reasons = scores.drop_duplicates("contact_id").set_index("contact_id")["reasons"]
    written_total, failed = 0, []
    log_rows: dict[str, int] = {}
    history = None
    size = write_chunk(len(updates))
    chunks = [updates.iloc[i : i + size] for i in range(0, len(updates), size)]
    # chunk k is recorded while chunk k + 1 is with the CRM; a stop is honoured before sending
    with ThreadPoolExecutor(1, thread_name_prefix="heatsync-write-chunk") as crm:
        sending = crm.submit(connector.write_fields, chunks[0])
        done = 0
        for k, chunk in enumerate(chunks):
            report = sending.result()
            done += len(chunk)
            try:
                if k + 1 < len(chunks):
                    if between is not None:
                        between(done, len(updates))  # may raise: this chunk is recorded first
                    sending = crm.submit(connector.write_fields, chunks[k + 1])
            finally:
                decisions = _record_written(store, chunk, report, contacts, reasons, as_of)
                logged = log_decisions(
                    store, [*decisions, *(kept if not k else [])], run_id, as_of, "fields"
                )
            for kind, n in logged["log_rows"].items():
                log_rows[kind] = log_rows.get(kind, 0) + n
            history = history or logged.get("history")
            written_total += report.written
            failed += report.failed
    meta.update(
        {
            "contacts_written": written_total,
            "write_failures": len(failed),
            "failure_examples": failed[:10],
            "log_rows": log_rows,
            **({"history": history} if history else {}),
        }
    )
    problems = [f"{len(failed)} contacts could not be written"] if failed else []
    return updates, StepResult(meta, problems)


# contacts per call of the connector's write-back: a stop asked for is honoured between them
# (2000: HubSpot 20 requests, about 1 s at its pace; amoCRM 40, about 6 s). Recording a chunk
# rewrites the store's contacts (about 0.8 s at 100,000), so a large write goes in at most
# WRITE_CHUNKS chunks (of at most WRITE_CHUNK_MAX) and the CRM stays busy while one is recorded
WRITE_CHUNK = 2000
WRITE_CHUNK_MAX = 5000
WRITE_CHUNKS = 25


def write_chunk(contacts: int) -> int:
    """Contacts per connector call for a write-back of `contacts`."""
    return min(WRITE_CHUNK_MAX, max(WRITE_CHUNK, -(-contacts // WRITE_CHUNKS)))


def _record_written(
    store: PortalStore,
    updates: pd.DataFrame,
    report: WriteReport,
    contacts: pd.DataFrame,
    reasons: pd.Series,
    as_of: AsOf,
) -> list[pd.DataFrame]:
    """Record in the store what the CRM took of `updates`; returns the decision rows."""
    refusals = {f["contact_id"]: f"refused by the CRM: {f['reason']}" for f in report.failed}
    written = updates[~updates["contact_id"].isin(list(refusals))]
    store.update_current_fields(written)
    gone = written["contact_id"].isin(report.skipped)
    store.remember_written(written[~gone], as_of.run_at)
    refused = updates[updates["contact_id"].isin(list(refusals))]
    return [
        field_rows(written[~gone], contacts, "field_written", reasons),
        field_rows(refused, contacts, "field_kept", pd.Series(refusals, dtype="object")),
        field_rows(
            written[gone],
            contacts,
            "field_kept",
            pd.Series(NO_LONGER_IN_CRM, index=written.loc[gone, "contact_id"], dtype="object"),
        ),
    ]


NO_LONGER_IN_CRM = "the CRM no longer has this contact (removed or merged)"
KEPT_SHOWN = 20


def _people_edits(
    connector: CrmConnector,
    store: PortalStore,
    updates: pd.DataFrame,
    contacts: pd.DataFrame,
    as_of: AsOf,
    policy: Mapping[str, str],
    days: int,
) -> Protected:
    """The updates without the protected fields a person set; asks the CRM only about the
    fields whose value there is not heatsync's own last write."""
    written = store.written()
    ask = to_ask(updates, contacts, written, policy)
    if ask.empty:
        return protect(updates, contacts, ask, written, as_of.run_at, days)
    since = (as_of.run_at - pd.Timedelta(days=days)).to_pydatetime()
    edits = connector.field_edits(
        sorted(ask["contact_id"].astype(str).unique()), sorted(ask["field"].unique()), since
    )
    edits = edits.merge(ask, on=["contact_id", "field"])
    return protect(updates, contacts, edits, written, as_of.run_at, days)


def _kept_by_people(kept: pd.DataFrame) -> pd.DataFrame:
    """Decision rows of the fields kept as a person set them: by whom, when, until when."""
    if kept.empty:
        return kept_rows([], "", "")
    frames = []
    for name, group in kept.groupby("field"):
        why = (
            KEPT_REASON
            + " ("
            + group["by"].where(group["by"] != "", "someone").radd("by ")
            + ", "
            + pd.to_datetime(group["edited_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M UTC")
            + "; kept until "
            + pd.to_datetime(group["until"], utc=True).dt.strftime("%Y-%m-%d")
            + ")"
        )
        frames.append(kept_rows(group["contact_id"], str(name), why, old=group["value"]))
    return pd.concat(frames, ignore_index=True)


def _kept_examples(kept: pd.DataFrame) -> dict[str, Any]:
    if kept.empty:
        return {}
    shown = kept.head(KEPT_SHOWN)
    return {
        "kept_edited_by_a_person_list": [
            {
                "contact_id": str(r.contact_id),
                "field": str(r.field),
                "value": str(r.value),
                "by": str(r.by),
                "edited_at": pd.Timestamp(r.edited_at).isoformat(),
                "until": pd.Timestamp(r.until).isoformat(),
            }
            for r in shown.itertuples(index=False)
        ]
    }


def field_rows(
    updates: pd.DataFrame, contacts: pd.DataFrame, kind: str, reasons: pd.Series
) -> pd.DataFrame:
    """Decision rows of `kind` for every changed field of `updates` (rows of field_changes):
    the CRM's value before, heatsync's value, and the contact's reason from `reasons` (a
    Series by contact id)."""
    current = contacts.drop_duplicates("contact_id", keep="last").set_index("contact_id")
    parts = []
    for name in WRITABLE_FIELDS:
        flag = f"changed_{name}"
        if flag not in updates.columns:
            continue
        rows = updates[updates[flag].astype(bool)]
        if rows.empty:
            continue
        ids = rows["contact_id"].astype(str)
        parts.append(
            pd.DataFrame(
                {
                    "contact_id": ids.to_numpy(),
                    "kind": kind,
                    "name": name,
                    "old": current.reindex(ids)[f"current_{name}"].to_numpy(),
                    "new": rows[name].to_numpy(),
                    "reason": ids.map(reasons).to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else _no_decisions()


def kept_rows(
    contact_ids: pd.Series | list[str],
    field: str,
    reason: str | pd.Series,
    old: pd.Series | None = None,
    new: pd.Series | None = None,
) -> pd.DataFrame:
    """Decision rows saying heatsync left `field` of these contacts alone, and why (one reason
    for all, or a Series aligned with `contact_ids`); `old` is the CRM's value, `new` the one
    heatsync would have written, when known."""
    ids = pd.Series(contact_ids, dtype="object").astype(str).reset_index(drop=True)

    def aligned(value: str | pd.Series | None) -> Any:
        return value.to_numpy() if isinstance(value, pd.Series) else value

    return pd.DataFrame(
        {
            "contact_id": ids,
            "kind": "field_kept",
            "name": field,
            "old": aligned(old),
            "new": aligned(new),
            "reason": aligned(reason),
        }
    )


def task_rows(tasks: pd.DataFrame, kind: str, reason: Any, task_ids: Any = None) -> pd.DataFrame:
    """Decision rows of `kind` (task_created | task_not_created) for tasks with contact_id, rule
    and task_key; `reason` and `task_ids` one value or aligned with `tasks`."""
    return pd.DataFrame(
        {
            "contact_id": tasks["contact_id"].astype(str).to_numpy(),
            "kind": kind,
            "name": tasks["rule"].to_numpy(),
            "new": task_ids.to_numpy() if isinstance(task_ids, pd.Series) else task_ids,
            "reason": reason.to_numpy() if isinstance(reason, pd.Series) else reason,
            "task_key": tasks["task_key"].to_numpy(),
        }
    )


def _no_decisions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in DECISION_COLUMNS})


def log_decisions(
    store: PortalStore, parts: list[pd.DataFrame], run_id: str, as_of: AsOf, step: str
) -> dict[str, Any]:
    """Stamp the decision rows with the run and its as-of and append them to the store's log;
    returns the step's metadata: rows logged by kind, and the command that reads them."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return {"log_rows": {}}
    rows = pd.concat(parts, ignore_index=True).assign(run_id=run_id, at=as_of.instant)
    store.append_decisions(rows, step)
    counts = rows["kind"].value_counts()
    example = rows["contact_id"].iloc[0]
    return {
        "log_rows": {str(k): int(v) for k, v in counts.items()},
        "history": f"heatsync history {example} --portal {store.portal}",
    }


def reconcile_ledger(connector: CrmConnector, store: PortalStore) -> int:
    """Settle tasks left `pending` by a crashed run: created in the CRM → created; else dropped."""
    ledger = store.ledger()
    pending = ledger[ledger["status"] == "pending"]
    if pending.empty:
        return 0
    found = connector.find_tasks(dict(zip(pending["task_key"], pending["contact_id"], strict=True)))
    is_found = ledger["task_key"].isin(list(found))
    ledger.loc[is_found, "status"] = "created"
    ledger.loc[is_found, "task_id"] = ledger.loc[is_found, "task_key"].map(found)
    ledger = ledger[(ledger["status"] == "created")]
    store.save_ledger(ledger)
    return int(is_found.sum())


def create_tasks(
    connector: CrmConnector,
    store: PortalStore,
    scores: pd.DataFrame,
    as_of: AsOf,
    config: ScoringConfig,
    locale: str,
    run_id: str,
    dry_run: bool = False,
    rules: tuple[str, ...] = (),
) -> tuple[pd.DataFrame, StepResult]:
    """Plan follow-up tasks and create the new ones, never twice for one contact, rule and period
    (only those of `rules` when given: the fast lane creates call-now tasks alone).

    Crash safety: each planned task is written to the ledger as `pending` *before* the CRM call
    and marked `created` after. A later run first asks the CRM (consistently, through the
    contact's task associations) which pending keys exist, so a task created just before a crash
    is recognised instead of duplicated; the connector repeats that lookup before every create.
    Tasks are planned as of the instant the scores were computed with (`as_of`).
    """
    recovered = 0 if dry_run else reconcile_ledger(connector, store)
    ledger = store.ledger()
    history = ledger[ledger["status"] == "created"]
    plan = plan_tasks(
        scores,
        store.table("contacts"),
        as_of=as_of.instant,
        config=config,
        history=history,
        locale=locale,
        tz=as_of.tz,
    )
    tasks = plan.tasks
    if rules:
        tasks = tasks[tasks["rule"].isin(rules)].reset_index(drop=True)
    meta: dict[str, Any] = {
        "tasks_planned": len(tasks),
        "tasks_by_rule": {str(k): int(v) for k, v in tasks["rule"].value_counts().items()},
        "skipped": {str(k): int(v) for k, v in plan.skipped.items()},
        "recovered_after_crash": recovered,
        "dry_run": dry_run,
        **left_out_metadata(plan.left_out),
    }
    if dry_run:
        meta.update({"tasks_created": 0, "task_failures": 0})
        return tasks, StepResult(meta)
    not_created = task_rows(plan.not_created, "task_not_created", plan.not_created["reason"])
    if tasks.empty:
        meta.update({"tasks_created": 0, "task_failures": 0})
        meta.update(log_decisions(store, [not_created], run_id, as_of, "tasks"))
        return tasks, StepResult(meta)

    pending = pd.DataFrame(
        {
            "task_key": tasks["task_key"],
            "contact_id": tasks["contact_id"],
            "rule": tasks["rule"],
            "period": tasks["period"].astype(str),
            "status": "pending",
            "task_id": None,
            "created_at": as_of.instant,
            "run_id": run_id,
        }
    ).astype({"created_at": LEDGER_COLUMNS["created_at"]})
    store.save_ledger(pd.concat([ledger, pending], ignore_index=True))

    report = connector.create_tasks(tasks)
    ids = {**report.already_existed, **report.created}
    ledger = store.ledger()
    done = ledger["task_key"].isin(list(ids))
    ledger.loc[done, "status"] = "created"
    ledger.loc[done, "task_id"] = ledger.loc[done, "task_key"].map(ids)
    failed_keys = {f["task_key"] for f in report.failed}
    ledger = ledger[~(ledger["task_key"].isin(failed_keys) & (ledger["status"] == "pending"))]
    store.save_ledger(ledger)
    reasons = scores.drop_duplicates("contact_id").set_index("contact_id")["reasons"]
    failures = {f["task_key"]: f"failed: {f['reason']}" for f in report.failed}
    created = tasks[tasks["task_key"].isin(list(report.created))]
    found = tasks[tasks["task_key"].isin(list(report.already_existed))]
    failed = tasks[tasks["task_key"].isin(list(failures))]
    decisions = [
        task_rows(
            created,
            "task_created",
            created["contact_id"].map(reasons),
            created["task_key"].map(report.created),
        ),
        task_rows(found, "task_created", FOUND_IN_CRM, found["task_key"].map(ids)),
        task_rows(failed, "task_not_created", failed["task_key"].map(failures)),
        not_created,
    ]
    meta.update(
        {
            **log_decisions(store, decisions, run_id, as_of, "tasks"),
            "tasks_created": len(report.created),
            "tasks_already_in_crm": len(report.already_existed),
            "task_failures": len(report.failed),
            "failure_examples": report.failed[:10],
        }
    )
    problems = [f"{len(report.failed)} tasks could not be created"] if report.failed else []
    return tasks, StepResult(meta, problems)


LEFT_OUT_SHOWN = 50
FOUND_IN_CRM = "already in the CRM (created by an earlier, interrupted run)"


def left_out_metadata(left_out: pd.DataFrame) -> dict[str, Any]:
    """Who the daily cap left without a task, most urgent first: a count, by rule, and the
    first LEFT_OUT_SHOWN as rows (`left_out_list`) and as a Markdown table (`left_out_md`)."""
    if left_out.empty:
        return {"left_out": 0}
    shown = left_out.head(LEFT_OUT_SHOWN)
    rows = [
        {
            "contact_id": str(r.contact_id),
            "name": "" if pd.isna(r.display_name) else str(r.display_name),
            "owner_id": "" if pd.isna(r.owner_id) else str(r.owner_id),
            "rule": str(r.rule),
            "score": None if pd.isna(r.score) else round(float(r.score)),
        }
        for r in shown.itertuples(index=False)
    ]
    lines = ["| contact | name | owner | rule | score |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['contact_id']} | {r['name']} | {r['owner_id']} | {r['rule']} | {r['score']} |"
        for r in rows
    ]
    if len(left_out) > len(shown):
        lines.append(f"| … {len(left_out) - len(shown)} more | | | | |")
    return {
        "left_out": len(left_out),
        "left_out_by_rule": {str(k): int(v) for k, v in left_out["rule"].value_counts().items()},
        "left_out_list": rows,
        "left_out_md": "\n".join(lines),
    }


def backtest(store: PortalStore, as_of: AsOf, horizon_days: int) -> StepResult:
    """Did the contacts scored `horizon_days` before `day` buy by the end of `day`?

    Uses only what the store knew as of `day` (won deals closed in between), so a backfilled
    day gives the figure it would have given then. Metadata is flat numbers, which the Dagster UI
    plots over time.
    """
    day = as_of.day
    scored_day = (date.fromisoformat(day) - timedelta(days=horizon_days)).isoformat()
    scores = store.scores(scored_day)
    base: dict[str, Any] = {"scored_day": scored_day, "horizon_days": horizon_days}
    if scores is None or scores.empty:
        return StepResult({**base, "evaluated": False, "reason": f"no scores for {scored_day}"})
    from scoring.backtest import backtest as run_backtest

    scored_as_of = as_of.earlier(scored_day).instant
    until = as_of.instant
    deals = store.table("deals")
    deals = deals[deals["closed_at"].isna() | (deals["closed_at"] <= until)]
    report = run_backtest(scores, deals, scored_as_of, horizon_days)
    rates = report.by_band.set_index("band")["rate"]
    meta: dict[str, Any] = {
        **base,
        "evaluated": True,
        "contacts": int(report.n),
        "converted": int(report.positives),
        "base_rate": _number(report.base_rate),
        "auc": _number(report.auc),
        "lift_hot_over_cold": _number(report.lift_hot_over_cold),
        **{f"conversion_{band}": _number(rates.get(band)) for band in ("hot", "warm", "cold")},
        "bands_in_order": bool(report.band_order_ok),
        "by_band": report.by_band.to_dict(orient="records"),
        "by_segment": report.by_segment.to_dict(orient="records"),
        "calibration": report.calibration.to_dict(orient="records"),
        "by_signal": report.by_signal.to_dict(orient="records"),
    }
    return StepResult(meta)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number or number in (float("inf"), float("-inf")) else round(number, 4)
