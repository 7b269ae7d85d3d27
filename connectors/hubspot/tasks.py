"""heatsync's follow-up tasks in HubSpot: the consistent lookup and the idempotent create.

`find_tasks` is a consistent lookup (v4 associations contact→tasks + batch read of
heatsync_task_key), not search, which lags behind writes. `create_tasks` skips keys that already
exist; batch/create ≤ 100 with inline association to the contact (type 204) and
objectWriteTraceId = task key. An ambiguous failure (5xx, dropped connection, timeout) is never
retried blindly: reconcile with `find_tasks` on that batch's keys, then create only the missing
ones (bounded attempts).

Batches hold disjoint keys, so each runs its attempts on a thread of its own (`read_workers`
threads sharing the portal's rate limiter and session, `connectors.fanout`); the lookup's chunks
go out together too. Outcomes are merged in batch order: the report is the one of creating the
batches one after another. Re-exported by `connectors.hubspot.writeback`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from connectors.base import TaskReport
from connectors.base import is_missing as _missing
from connectors.fanout import Fanout
from connectors.http import ConnectorError, TransientError, log, redact
from connectors.hubspot.client import BatchOutcome, HubSpotClient, chunks
from connectors.hubspot.fields import _error_text, _row_transient
from connectors.hubspot.settings import (
    ASSOC_TASK_TO_CONTACT,
    BATCH_SIZE,
    CONTACTS,
    TASK_KEY_PROPERTY,
    TASKS,
)

# --------------------------------------------------------------------------------------------
# Tasks


def find_tasks(
    client: HubSpotClient, task_keys: dict[str, str], fanout: Fanout | None = None
) -> dict[str, str]:
    """Key -> task id for heatsync tasks that exist on the given contacts (consistent reads;
    the chunks of each read on `fanout`'s threads when given)."""
    if not task_keys:
        return {}
    contact_ids = sorted({str(c) for c in task_keys.values() if not _missing(c)})
    links = client.associations(CONTACTS, TASKS, contact_ids, fanout)
    task_ids = sorted({t for targets in links.values() for t in targets})
    if not task_ids:
        return {}
    parts = list(chunks(task_ids, BATCH_SIZE))

    def read(part: Sequence[str]) -> BatchOutcome:
        return client.batch_read(TASKS, part, [TASK_KEY_PROPERTY])

    outcomes = fanout.map(read, parts) if fanout is not None else [read(p) for p in parts]
    wanted = {str(k) for k in task_keys}
    found: dict[str, str] = {}
    for outcome in outcomes:
        for record in outcome.results:
            key = (record.get("properties") or {}).get(TASK_KEY_PROPERTY)
            if key and key in wanted and not record.get("archived"):
                found.setdefault(str(key), str(record["id"]))
    return found


def _iso_ms(value: Any) -> str:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def task_input(row: dict[str, Any]) -> dict[str, Any]:
    """One batch/create input for a TASK_COLUMNS row."""
    key = str(row["task_key"])
    props: dict[str, str] = {
        "hs_timestamp": _iso_ms(row["due_at"]),
        "hs_task_subject": "" if _missing(row.get("subject")) else str(row["subject"]),
        "hs_task_body": "" if _missing(row.get("body")) else str(row["body"]),
        "hs_task_status": "NOT_STARTED",
        "hs_task_priority": str(row.get("priority") or "MEDIUM").upper(),
        "hs_task_type": str(row.get("task_type") or "TODO").upper(),
        TASK_KEY_PROPERTY: key,
    }
    if not _missing(row.get("owner_id")):
        props["hubspot_owner_id"] = str(row["owner_id"])
    return {
        "properties": props,
        "associations": [
            {
                "to": {"id": str(row["contact_id"])},
                "types": [
                    {
                        "associationCategory": "HUBSPOT_DEFINED",
                        "associationTypeId": ASSOC_TASK_TO_CONTACT,
                    }
                ],
            }
        ],
        "objectWriteTraceId": key,
    }


def create_tasks(
    client: HubSpotClient,
    tasks: pd.DataFrame,
    *,
    attempts: int = 3,
    pause_s: float = 0.5,
    reconcile_wait_s: float = 2.0,
) -> TaskReport:
    """Create the tasks that do not exist yet; never duplicates after an ambiguous failure."""
    report = TaskReport()
    if tasks is None or len(tasks) == 0:
        return report
    rows: dict[str, dict[str, Any]] = {
        str(r["task_key"]): {str(k): v for k, v in r.items()} for r in tasks.to_dict("records")
    }
    contact_of = {k: str(r["contact_id"]) for k, r in rows.items()}
    with Fanout(client.settings.read_workers, "heatsync-tasks") as fanout:
        report.already_existed.update(find_tasks(client, contact_of, fanout))
        todo: list[str] = []
        for key, row in rows.items():
            if key in report.already_existed:
                continue
            try:
                task_input(row)
            except (TypeError, ValueError, KeyError) as exc:
                report.failed.append({"task_key": key, "reason": redact(f"invalid task: {exc}")})
                continue
            todo.append(key)

        def create(part: Sequence[str]) -> TaskReport:
            return _create_batch(
                client, part, rows, contact_of, attempts, pause_s, reconcile_wait_s
            )

        for batch in fanout.map(create, list(chunks(todo, BATCH_SIZE))):
            report.created.update(batch.created)
            report.failed.extend(batch.failed)
    return report


def _create_batch(
    client: HubSpotClient,
    part: Sequence[str],
    rows: dict[str, dict[str, Any]],
    contact_of: dict[str, str],
    attempts: int,
    pause_s: float,
    reconcile_wait_s: float,
) -> TaskReport:
    """One batch's attempts (on a thread of the pool: its lookups run on this thread)."""
    report = TaskReport()
    pending = list(part)
    last_reason = "not attempted"
    for attempt in range(attempts):
        if not pending:
            break
        if attempt:
            client.http._sleep(pause_s * (2 ** (attempt - 1)))
        try:
            outcome = client.batch_create(TASKS, [task_input(rows[k]) for k in pending])
        except TransientError as exc:
            # The request may have been applied (possibly late): wait, then look before
            # creating again.
            last_reason = str(exc)
            log.warning("task create ambiguous (%s); reconciling", redact(exc))
            client.http._sleep(reconcile_wait_s)
            try:
                found = find_tasks(client, {k: contact_of[k] for k in pending})
            except ConnectorError as lookup_exc:
                last_reason = f"{last_reason}; reconcile failed: {lookup_exc}"
                break
            report.created.update(found)
            pending = [k for k in pending if k not in found]
            continue
        except ConnectorError as exc:
            for key in pending:
                report.failed.append({"task_key": key, "reason": str(exc)})
            pending = []
            break
        by_key: dict[str, str] = {}
        for record in outcome.results:
            made = (record.get("properties") or {}).get(TASK_KEY_PROPERTY)
            if made:
                by_key[str(made)] = str(record["id"])
        retry: list[str] = []
        errored: set[str] = set()
        for error in outcome.errors:
            for key in error.trace_ids():
                if key not in pending:
                    continue
                errored.add(key)
                if _row_transient(error):
                    retry.append(key)
                    last_reason = _error_text(error)
                else:
                    report.failed.append({"task_key": key, "reason": _error_text(error)})
        report.created.update({k: v for k, v in by_key.items() if k in pending})
        unresolved = [k for k in pending if k not in by_key and k not in errored]
        if unresolved:
            # Neither a result nor an error names them: reconcile rather than guess.
            found = find_tasks(client, {k: contact_of[k] for k in unresolved})
            report.created.update(found)
            retry.extend(k for k in unresolved if k not in found)
            last_reason = "no result returned for this input"
        pending = retry
    for key in pending:
        if key not in report.created:
            report.failed.append(
                {
                    "task_key": key,
                    "reason": f"gave up after {attempts} attempt(s): {last_reason}",
                }
            )
    return report
