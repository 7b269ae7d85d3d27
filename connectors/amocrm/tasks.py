"""heatsync's follow-up tasks in amoCRM (`GET`/`POST /api/v4/tasks`): lookup, idempotent create.

amoCRM has no idempotency key, so each task's text ends with heatsync's marker
(`connectors.amocrm.markers`, `[hs:<rule>:<period>:<hash>]`). `create_tasks` first looks for the
markers among the contact's tasks (open and recent, `find_tasks`) and creates only what is
missing. A create whose outcome is unknown (5xx, dropped connection, timeout) is never sent again
blindly: after a pause, the contacts' tasks are read again and only the still missing ones are
created (bounded attempts).

Batches hold disjoint keys, so each runs its attempts on a thread of its own (`read_workers`
threads sharing the account's pace and session, `connectors.fanout`), as do the lookup's chunks
of contacts. Outcomes are merged in batch order: the report is the one of creating the batches
one after another. Re-exported by `connectors.amocrm.writeback`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors.amocrm.batches import chunks, send_batch
from connectors.amocrm.markers import markers_in, task_marker
from connectors.amocrm.models import TaskType
from connectors.amocrm.settings import FOLLOW_UP_TASK_TYPE_ID
from connectors.base import TaskReport
from connectors.base import is_missing as _missing
from connectors.fanout import Fanout
from connectors.http import ConnectorError, TransientError, log, redact

if TYPE_CHECKING:
    from connectors.amocrm.connector import AmoCrmConnector


def find_tasks(
    conn: AmoCrmConnector, task_keys: dict[str, str], fanout: Fanout | None = None
) -> dict[str, str]:
    """Key -> task id for heatsync tasks (open or recent) on the given contacts (the chunks of
    contacts read on `fanout`'s threads when given)."""
    if not task_keys:
        return {}
    wanted: dict[tuple[str, str], str] = {}
    for key, contact in task_keys.items():
        if not _missing(contact):
            wanted[(str(contact), task_marker(str(key)))] = str(key)
    contacts = sorted({c for c, _ in wanted if c.isdigit()}, key=int)
    since = int((datetime.now(UTC) - timedelta(days=conn.settings.task_lookback_days)).timestamp())

    def read(part: Sequence[str]) -> list[dict[str, Any]]:
        params: list[tuple[str, Any]] = [
            ("filter[entity_type]", "contacts"),
            *[("filter[entity_id][]", c) for c in part],
            ("filter[updated_at][from]", since),
        ]
        return list(conn.client.pages("/tasks", "tasks", params))

    parts = list(chunks(contacts, conn.settings.batch_size))
    lists = fanout.map(read, parts) if fanout is not None else [read(p) for p in parts]
    found: dict[str, str] = {}
    for tasks in lists:
        for task in tasks:
            contact = str(task.get("entity_id"))
            for mark in markers_in(str(task.get("text") or "")):
                hit = wanted.get((contact, mark))
                if hit is not None:
                    found.setdefault(hit, str(task["id"]))
    return found


def task_type_id(conn: AmoCrmConnector, kind: Any) -> int:
    """heatsync's task type (CALL, EMAIL, TODO, MEETING) -> the account's task type id."""
    types: list[TaskType] = conn.account().task_types
    names = conn.settings.task_types.get(str(kind or "TODO").upper(), ())
    for name in names:
        wanted = name.strip().lower()
        for t in types:
            if (t.code or "").lower() == wanted or t.name.strip().lower() == wanted:
                return t.id
    return FOLLOW_UP_TASK_TYPE_ID


def task_text(row: dict[str, Any]) -> str:
    subject = "" if _missing(row.get("subject")) else str(row["subject"]).strip()
    body = "" if _missing(row.get("body")) else str(row["body"]).strip()
    text = "\n\n".join(x for x in (subject, body) if x)
    return f"{text}\n{task_marker(str(row['task_key']))}".strip()


def task_body(conn: AmoCrmConnector, row: dict[str, Any]) -> dict[str, Any]:
    due = pd.Timestamp(row["due_at"])
    due = due.tz_localize("UTC") if due.tzinfo is None else due.tz_convert("UTC")
    contact = str(row["contact_id"])
    if not contact.isdigit():
        raise ValueError(f"not an amoCRM contact id: {contact!r}")
    body: dict[str, Any] = {
        "text": task_text(row),
        "complete_till": int(due.timestamp()),
        "entity_type": "contacts",
        "entity_id": int(contact),
        "task_type_id": task_type_id(conn, row.get("task_type")),
        "request_id": str(row["task_key"]),
    }
    if not _missing(row.get("owner_id")):
        body["responsible_user_id"] = int(str(row["owner_id"]))
    return body


def create_tasks(conn: AmoCrmConnector, tasks: pd.DataFrame) -> TaskReport:
    """Create the tasks that do not exist yet; never duplicates after an ambiguous failure."""
    report = TaskReport()
    if tasks is None or len(tasks) == 0:
        return report
    rows = {str(r["task_key"]): {str(k): v for k, v in r.items()} for r in tasks.to_dict("records")}
    contact_of = {k: str(r["contact_id"]) for k, r in rows.items()}
    with Fanout(conn.settings.read_workers, "heatsync-tasks") as fanout:
        report.already_existed.update(find_tasks(conn, contact_of, fanout))
        bodies: dict[str, dict[str, Any]] = {}
        for key, row in rows.items():
            if key in report.already_existed:
                continue
            try:
                bodies[key] = task_body(conn, row)
            except (TypeError, ValueError, KeyError) as exc:
                report.failed.append({"task_key": key, "reason": redact(f"invalid task: {exc}")})

        def create(part: Sequence[str]) -> TaskReport:
            return _create_batch(conn, part, bodies, contact_of)

        for batch in fanout.map(create, list(chunks(list(bodies), conn.settings.batch_size))):
            report.created.update(batch.created)
            report.failed.extend(batch.failed)
    return report


def _create_batch(
    conn: AmoCrmConnector,
    part: Sequence[str],
    bodies: dict[str, dict[str, Any]],
    contact_of: dict[str, str],
) -> TaskReport:
    """One batch's attempts (on a thread of the pool: its lookups run on this thread)."""
    report = TaskReport()
    attempts = conn.settings.create_attempts
    pending = list(part)
    last_reason = "not attempted"
    for _attempt in range(attempts):
        if not pending:
            break
        try:
            answers, failed = send_batch(
                conn, "POST", "/api/v4/tasks", [bodies[k] for k in pending], idempotent=False
            )
        except TransientError as exc:
            # The create may have been applied, its answer lost: look before creating again.
            last_reason = str(exc)
            log.warning("amoCRM task create ambiguous (%s); looking again", redact(exc))
            time.sleep(conn.settings.reconcile_wait_s)
            try:
                found = find_tasks(conn, {k: contact_of[k] for k in pending})
            except ConnectorError as lookup:
                last_reason = f"{last_reason}; the lookup failed too: {lookup}"
                break
            report.created.update(found)
            pending = [k for k in pending if k not in found]
            continue
        for key, why in failed.items():
            report.failed.append({"task_key": key, "reason": why})
        by_key = {
            str(a.get("request_id")): str(a["id"]) for a in answers if a.get("id") is not None
        }
        report.created.update({k: v for k, v in by_key.items() if k in pending})
        unresolved = [k for k in pending if k not in by_key and k not in failed]
        if unresolved:  # answered, but not naming them: look rather than guess
            found = find_tasks(conn, {k: contact_of[k] for k in unresolved})
            report.created.update(found)
            last_reason = "no result returned for this task"
            pending = [k for k in unresolved if k not in found]
        else:
            pending = []
    for key in pending:
        if key not in report.created:
            report.failed.append(
                {
                    "task_key": key,
                    "reason": f"gave up after {attempts} attempt(s): {last_reason}",
                }
            )
    return report
